"""``gptoss-doctor install``: show the plan, ask, then install (or stop at ``--dry-run``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gptoss_doctor.app import install, lmstudio
from gptoss_doctor.bench import engines
from gptoss_doctor.cli import output
from gptoss_doctor.errors import UsageError
from gptoss_doctor.reports import install_view, lmstudio_view


@click.command("install")
@click.option("--model", type=click.Choice(["auto", "20b", "120b"]), default="auto",
              show_default=True)
@click.option("--engine", type=click.Choice((*engines.names(), lmstudio.ENGINE)),
              default="auto", show_default=True,
              help="lmstudio: download, load and serve through LM Studio's `lms`.")
@click.option("--prefer-lmstudio", is_flag=True,
              help="With --engine auto: install through LM Studio when `lms` is installed.")
@click.option("--port", type=click.IntRange(1, 65535), default=1234, show_default=True,
              help="With LM Studio: the port its server is started on.")
@click.option("--ctx", "n_ctx", type=click.IntRange(min=512), default=None,
              help="With LM Studio: the context length to load (default: the doctor's plan).")
@click.option("--models-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where to put the weights (default: ~/.cache/gptoss-doctor/models).")
@click.option("--model-path", type=click.Path(path_type=Path, exists=True),
              help="Weights you already have (a file or a folder); verified, then reused.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and result as JSON.")
def install_command(model: str, engine: str, prefer_lmstudio: bool, port: int,
                    n_ctx: int | None, models_dir: Path | None, model_path: Path | None,
                    dry_run: bool, yes: bool, as_json: bool) -> None:
    """Install gpt-oss: the engine built for this machine, verified weights, a smoke test."""
    feedback = output.feedback()
    if lmstudio.chosen(engine, prefer_lmstudio):
        _lmstudio(lmstudio.LmsOptions(model, port, n_ctx), (models_dir, model_path), dry_run,
                  yes, as_json)
        return
    prepared = install.prepare(install.InstallOptions(model, engine, models_dir, model_path),
                               feedback)
    plan = prepared.plan
    if not as_json or not plan.ready:
        for line in install_view.plan_lines(plan):
            output.note(line)
    if not plan.ready or dry_run:
        if as_json:
            output.echo_json(install_view.envelope(plan))
        if not plan.ready:
            sys.exit(1)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to confirm on", "add --yes to install without asking")
        click.confirm("Proceed?", default=True, abort=True, err=True)
    installed = install.execute_plan(prepared, feedback)
    if as_json:
        output.echo_json(install_view.envelope(plan, installed))
        return
    for line in install_view.installed_lines(plan, installed):
        output.echo(line)


def _lmstudio(options: lmstudio.LmsOptions, paths: tuple[Path | None, Path | None],
              dry_run: bool, yes: bool, as_json: bool) -> None:
    """The install through LM Studio: it downloads and places the weights itself."""
    if paths != (None, None) or dry_run:
        raise UsageError("--models-dir, --model-path and --dry-run are for the doctor's own "
                         "install; LM Studio keeps its models in its own folder")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to confirm on", "add --yes to install without asking")
        click.confirm(f"Download, load and serve gpt-oss through LM Studio on port "
                      f"{options.port}?", default=True, abort=True, err=True)
    installed = lmstudio.install(options, output.feedback())
    if as_json:
        output.echo_json(lmstudio_view.envelope(installed))
        return
    for line in lmstudio_view.installed_lines(installed):
        output.echo(line)
