"""`gptoss-doctor calibrate`: the stored corrections as text lines and the ``--json``
envelope (``CALIBRATION_SCHEMA_VERSION``; the keys are listed in docs/calibration.md)."""

from __future__ import annotations

from typing import Any

from gptoss_doctor import __version__, serde
from gptoss_doctor.app.calibrate import Calibration
from gptoss_doctor.install.corrections import Correction, describe
from gptoss_doctor.reports.terminal_text import plain

CALIBRATION_SCHEMA_VERSION = 1
ENVELOPE_KIND = "gptoss-doctor/calibration-report"


def to_json(result: Calibration) -> dict[str, Any]:
    """The versioned ``--json`` envelope: each correction, marked when it is this machine's."""
    return {
        "kind": ENVELOPE_KIND,
        "schema_version": CALIBRATION_SCHEMA_VERSION,
        "tool_version": __version__,
        "store": str(result.store),
        "this_machine": result.this_machine,
        "runs": len(result.runs),
        "added": result.added,
        "skipped": list(result.skipped),
        "corrections": [{**serde.to_json(c), "this_machine": c.machine == result.this_machine}
                        for c in result.corrections],
    }


def _line(c: Correction, this_machine: str) -> str:
    said = [describe(f, what) for f, what in ((c.tg, "tg"), (c.pp, "pp")) if f is not None]
    whose = "this machine" if c.machine == this_machine else f"another machine ({c.machine})"
    return f"{whose}, {c.placement}: {'; '.join(said)} — {c.label}"


def lines(result: Calibration) -> list[str]:
    """What the text output prints, terminal-safe (labels come from results files)."""
    if not result.corrections:
        return [plain(f"no calibration stored ({result.store})")]
    head = f"{len(result.runs)} runs in {result.store}"
    if result.added:
        head += f" ({result.added} new)"
    return [plain(head), *(plain("  " + _line(c, result.this_machine))
                           for c in result.corrections)]
