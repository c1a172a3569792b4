"""``gptoss-doctor calibrate``: per-machine speed corrections from `bench speed` results."""

from __future__ import annotations

from pathlib import Path

import click

from gptoss_doctor.app import calibrate
from gptoss_doctor.cli import output
from gptoss_doctor.reports import calibration_view


@click.command("calibrate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--show", "show_only", is_flag=True, help="Print the stored corrections.")
@click.option("--reset", is_flag=True, help="Forget every stored run.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def calibrate_command(files: tuple[Path, ...], show_only: bool, reset: bool,
                      as_json: bool) -> None:
    """Correct the doctor's speed predictions with your own `bench speed` RESULTS files.

    Each run's measured / predicted (tg and pp) is kept per machine and placement in your
    configuration folder; the doctor then multiplies its predictions for that machine by
    the median and says so. Files from other machines are kept as corrections for those
    machines. Exit 2 on an unreadable or implausible file (nothing is stored then).
    """
    if sum((bool(files), show_only, reset)) != 1:
        raise click.UsageError("give results files, --show or --reset (one of them)")
    if reset:
        result = calibrate.reset()
    elif show_only:
        result = calibrate.show()
    else:
        result = calibrate.calibrate(files, output.feedback())
    for skipped in result.skipped:
        output.note(f"skipped {skipped}")
    if as_json:
        output.echo_json(calibration_view.to_json(result))
        return
    for line in calibration_view.lines(result):
        output.echo(line)
