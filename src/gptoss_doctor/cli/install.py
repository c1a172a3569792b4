"""``gptoss-doctor install``: show the plan, ask, then install (or stop at ``--dry-run``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gptoss_doctor.app import install
from gptoss_doctor.bench import engines
from gptoss_doctor.cli import output
from gptoss_doctor.errors import UsageError
from gptoss_doctor.reports import install_view


@click.command("install")
@click.option("--model", type=click.Choice(["auto", "20b", "120b"]), default="auto",
              show_default=True)
@click.option("--engine", type=click.Choice(engines.names()), default="auto",
              show_default=True)
@click.option("--models-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where to put the weights (default: ~/.cache/gptoss-doctor/models).")
@click.option("--model-path", type=click.Path(path_type=Path, exists=True),
              help="Weights you already have (a file or a folder); verified, then reused.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and result as JSON.")
def install_command(model: str, engine: str, models_dir: Path | None, model_path: Path | None,
                    dry_run: bool, yes: bool, as_json: bool) -> None:
    """Install gpt-oss: the engine built for this machine, verified weights, a smoke test."""
    feedback = output.feedback()
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
