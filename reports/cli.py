"""The ``gptoss-doctor`` command line: the preflight report and ``probe``.

Commands return result objects; rendering (human text or a ``--json`` envelope) is
separate. Data goes to stdout, messages and progress to stderr.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console

from gptoss_doctor import __version__
from gptoss_doctor.errors import UsageError
from gptoss_doctor.probe import serialize
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.reports import doctor, errors
from gptoss_doctor.reports.bench_cmd import bench_group
from gptoss_doctor.reports.install_cmd import install_command
from gptoss_doctor.reports.report_cmd import report_command
from gptoss_doctor.reports.synth_cmd import synth_command
from gptoss_doctor.reports.tools_cmd import tools_command
from gptoss_doctor.settings import current


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _machine(snapshot_file: Path | None) -> HardwareSnapshot:
    return serialize.load(snapshot_file) if snapshot_file else take_snapshot()


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (versioned).")
@click.option("--snapshot", "snapshot_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Evaluate a saved snapshot (from `probe --save`) instead of this machine.")
@click.version_option(__version__, prog_name="gptoss-doctor")
@click.pass_context
def cli(ctx: click.Context, as_json: bool, snapshot_file: Path | None) -> None:
    """Can this machine run gpt-oss-20b / gpt-oss-120b? Which engine, settings, speed.

    Without a command: probe this machine and explain the verdict. Exit code 0 when
    gpt-oss-20b can run here, 1 when no model can, 2 on usage errors.
    """
    if ctx.invoked_subcommand is not None:
        return
    report = doctor.build_report(_machine(snapshot_file))
    if as_json:
        click.echo(json.dumps(doctor.to_json(report), indent=2))
    else:
        doctor.render(report, _stdout())
    ctx.exit(report.exit_code)


@cli.command("probe")
@click.option("--save", "save_to", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the snapshot to this file (to share or to compare machines).")
def probe_command(save_to: Path | None) -> None:
    """Print this machine's hardware snapshot as JSON, or save it with --save."""
    snap = take_snapshot()
    if save_to is None:
        click.echo(serialize.dumps(snap))
        return
    if save_to.parent and not save_to.resolve().parent.is_dir():
        raise UsageError(f"folder {save_to.parent} does not exist")
    serialize.save(snap, save_to)
    click.echo(f"snapshot saved to {save_to}", err=True)


cli.add_command(synth_command)
bench_group.add_command(tools_command)
cli.add_command(bench_group)
cli.add_command(install_command)
cli.add_command(report_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI and map every error to one line."""
    try:
        code = cli.main(args=argv, prog_name="gptoss-doctor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("gptoss-doctor: interrupted", err=True)
        code = errors.EXIT_INTERRUPTED
    except (Exception, KeyboardInterrupt) as exc:
        message, hint, code = errors.explain(exc)
        if current().debug:
            traceback.print_exc()
        click.echo(f"gptoss-doctor: error: {message}" + (f" ({hint})" if hint else ""),
                   err=True)
    sys.exit(code if isinstance(code, int) else 0)
