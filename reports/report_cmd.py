"""``gptoss-doctor report RESULTS.json...``: one self-contained HTML page.

One file gives a full report, several a comparison (``--baseline`` picks the run speedups
are measured against). Input is validated before anything is written; the page is written
to a temporary name and renamed, so a failure never leaves a half-written report.
"""

from __future__ import annotations

import dataclasses
import webbrowser
from pathlib import Path
from typing import Any

import click

from gptoss_doctor.bench import results
from gptoss_doctor.errors import SnapshotError, UsageError
from gptoss_doctor.install.plan import assess
from gptoss_doctor.probe.serialize import from_dict
from gptoss_doctor.reports.html import render


def _verdicts(record: dict[str, Any]) -> list[dict[str, Any]]:
    endpoint = record.get("endpoint")
    if endpoint and endpoint["host_class"] != "local":
        return []  # the snapshot is the client's; the doctor's verdict would be about it
    try:
        snap = from_dict(record["machine"])
    except SnapshotError:
        return []  # a results file from an older probe: the page simply omits the verdict
    return [dataclasses.asdict(v) for v in assess(snap).verdicts]


@click.command("report")
@click.argument("results_files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("report.html"), show_default=True)
@click.option("--baseline", type=click.Path(path_type=Path, dir_okay=False),
              help="The results file speedups are measured against (default: the first).")
@click.option("--open", "open_page", is_flag=True, help="Open the page in a browser.")
def report_command(results_files: tuple[Path, ...], output: Path, baseline: Path | None,
                   open_page: bool) -> None:
    """Turn results files into one HTML page (a report, or a comparison of several)."""
    if not results_files:
        raise UsageError("give at least one results file", "gptoss-doctor report run.json")
    if not output.resolve().parent.is_dir():
        raise UsageError(f"folder {output.parent} does not exist")
    records = [results.load(path) for path in results_files]
    index = 0
    if baseline is not None:
        resolved = [p.resolve() for p in results_files]
        if baseline.resolve() not in resolved:
            raise UsageError(f"--baseline {baseline} is not one of the results files given")
        index = resolved.index(baseline.resolve())
    page = render(records, baseline=index, verdicts=[_verdicts(r) for r in records])
    target = output.resolve()
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    click.echo(f"report: {target}")
    if open_page:
        webbrowser.open(target.as_uri())
