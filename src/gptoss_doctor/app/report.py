"""The ``report`` service: load results files, add the doctor's verdict for each machine
and, for tool-use runs of one model at several reasoning efforts, the effort comparison
(``bench.effort``), and hand the records to the HTML renderer.

Input is validated before anything is written; the page is written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor.bench import effort, results
from gptoss_doctor.errors import SnapshotError, UsageError
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe.serialize import from_dict
from gptoss_doctor.serde import to_json


@dataclass(frozen=True, slots=True)
class ReportInput:
    records: tuple[dict[str, Any], ...]
    baseline: int
    verdicts: tuple[list[dict[str, Any]], ...]
    effort: tuple[dict[str, Any], ...] = ()  # bench.effort groups of two efforts or more


def verdicts_for(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The doctor's verdicts for the machine a run was measured on (none for a remote
    endpoint: the snapshot is the client's)."""
    endpoint = record.get("endpoint")
    if endpoint and endpoint["host_class"] != "local":
        return []
    try:
        snap = from_dict(record["machine"])
    except SnapshotError:
        return []  # a results file from an older probe: the page simply omits the verdict
    converted: list[dict[str, Any]] = to_json(assess(snap).verdicts)
    return converted


def load(files: tuple[Path, ...], baseline: Path | None) -> ReportInput:
    """Every results file loaded (or one clear line), and which one is the baseline."""
    if not files:
        raise UsageError("give at least one results file", "gptoss-doctor report run.json")
    records = tuple(results.load(path) for path in files)
    index = 0
    if baseline is not None:
        resolved = [p.resolve() for p in files]
        if baseline.resolve() not in resolved:
            raise UsageError(f"--baseline {baseline} is not one of the results files given")
        index = resolved.index(baseline.resolve())
    tools = [r for r in records if r["suite"] == "tools"]
    compared = tuple(g for g in effort.compare(tools) if len(g["efforts"]) > 1)
    return ReportInput(records, index, tuple(verdicts_for(r) for r in records), compared)
