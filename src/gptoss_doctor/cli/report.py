"""``gptoss-doctor report RESULTS.json...``: one self-contained HTML page."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from gptoss_doctor.app import report
from gptoss_doctor.cli import output
from gptoss_doctor.files import STDOUT, check_target, write_text
from gptoss_doctor.reports.html import render


@click.command("report")
@click.argument("results_files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", "destination", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("report.html"), show_default=True, help="The page (- for stdout).")
@click.option("--baseline", type=click.Path(path_type=Path, dir_okay=False),
              help="The results file speedups are measured against (default: the first).")
@click.option("--open", "open_page", is_flag=True, help="Open the page in a browser.")
def report_command(results_files: tuple[Path, ...], destination: Path, baseline: Path | None,
                   open_page: bool) -> None:
    """Turn results files into one HTML page (a report, or a comparison of several)."""
    if destination != STDOUT:
        check_target(destination)
    loaded = report.load(results_files, baseline)
    page = render(list(loaded.records), baseline=loaded.baseline,
                  verdicts=list(loaded.verdicts), effort=list(loaded.effort))
    if destination == STDOUT:
        click.echo(page)
        return
    target = write_text(destination, page)
    output.echo(f"report: {target}")
    if open_page:
        webbrowser.open(target.as_uri())
