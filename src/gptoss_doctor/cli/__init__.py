"""The ``gptoss-doctor`` command line: thin click commands over the application services.

Each command parses its flags into options, calls one service in ``gptoss_doctor.app`` and
renders the typed result (``gptoss_doctor.reports``) as text or a versioned ``--json``
envelope. Data goes to stdout, messages and progress to stderr. ``main`` maps every error
to one line and a documented exit code (``cli.errors``).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from gptoss_doctor import __version__
from gptoss_doctor.app import doctor
from gptoss_doctor.cli import errors, output
from gptoss_doctor.cli.bench import bench_group
from gptoss_doctor.cli.calibrate import calibrate_command
from gptoss_doctor.cli.install import install_command
from gptoss_doctor.cli.publish import publish_command
from gptoss_doctor.cli.report import report_command
from gptoss_doctor.cli.serve import serve_command
from gptoss_doctor.cli.share import share_command
from gptoss_doctor.cli.synth import synth_command
from gptoss_doctor.files import STDOUT
from gptoss_doctor.probe import serialize
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.reports import doctor_view
from gptoss_doctor.secrets import register_environment
from gptoss_doctor.settings import current


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (versioned).")
@click.option("--snapshot", "snapshot_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Evaluate a saved snapshot (from `probe --save`) instead of this machine.")
@click.option("--measure-bandwidth/--no-measure-bandwidth", default=None,
              help="Measure host memory bandwidth (about half a second) always / never. "
                   "Default: only when no memory module figure is readable and a plan puts "
                   "weights in host RAM.")
@click.version_option(__version__, prog_name="gptoss-doctor")
@click.pass_context
def cli(ctx: click.Context, as_json: bool, snapshot_file: Path | None,
        measure_bandwidth: bool | None) -> None:
    """Can this machine run gpt-oss-20b / gpt-oss-120b? Which engine, settings, speed.

    Without a command: probe this machine and explain the verdict. Exit code 0 when
    gpt-oss-20b can run here, 1 when no model can, 2 on usage errors.
    """
    if ctx.invoked_subcommand is not None:
        return
    report = doctor.doctor(snapshot_file, measure_bandwidth, output.feedback())
    if as_json:
        output.echo_json(doctor_view.to_json(report))
    else:
        doctor_view.render(report, output.stdout_console())
    ctx.exit(report.exit_code)


@cli.command("probe")
@click.option("--save", "save_to", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the snapshot to this file (to share or to compare machines; - for "
              "stdout).")
def probe_command(save_to: Path | None) -> None:
    """Print this machine's hardware snapshot as JSON, or save it with --save."""
    snap = take_snapshot()
    if save_to is None or save_to == STDOUT:
        output.echo(serialize.dumps(snap))
        return
    serialize.save(snap, save_to)
    output.note(f"snapshot saved to {save_to}")


cli.add_command(synth_command)
cli.add_command(bench_group)
cli.add_command(serve_command)
cli.add_command(install_command)
cli.add_command(report_command)
cli.add_command(publish_command)
cli.add_command(share_command)
cli.add_command(calibrate_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI and map every error to one line."""
    register_environment()
    try:
        code = cli.main(args=argv, prog_name="gptoss-doctor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        output.note("gptoss-doctor: interrupted")
        code = errors.EXIT_INTERRUPTED
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        message, hint, code = errors.explain(exc)
        if current().debug:
            traceback.print_exc()
        output.note(f"gptoss-doctor: error: {message}" + (f" ({hint})" if hint else ""))
    sys.exit(code if isinstance(code, int) else 0)
