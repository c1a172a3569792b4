"""The preflight service: probe (or load) a snapshot, assess it, and list the checks.

``build_report`` depends on the snapshot and the user's stored calibration only
(``app.calibrate``); the CLI renders the ``DoctorReport`` as text (``reports.doctor_view``)
or as the versioned ``--json`` envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gptoss_doctor.app import calibrate
from gptoss_doctor.app.checks import Check, checks
from gptoss_doctor.install.verdict import Assessment, assess
from gptoss_doctor.probe import serialize
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.model import HardwareSnapshot


@dataclass(frozen=True, slots=True)
class DoctorReport:
    snapshot: HardwareSnapshot
    assessment: Assessment
    checks: tuple[Check, ...]
    next_command: str | None

    @property
    def exit_code(self) -> int:
        """0 when gpt-oss-20b can run here, 1 when nothing can."""
        return 0 if self.assessment.verdict("20b").can_run else 1


def _next_command(assessment: Assessment) -> str | None:
    runnable = [v for v in assessment.verdicts if v.can_run]
    if not runnable:
        return None
    fast = [v for v in runnable if v.status == "runs"]
    best = max(fast or runnable, key=lambda v: v.memory.cpu_bytes + v.memory.gpu_bytes
               if v.memory else 0)
    return best.install_command


def build_report(snap: HardwareSnapshot) -> DoctorReport:
    """The report on ``snap``, with the user's calibration for that machine applied."""
    assessment = calibrate.corrected(assess(snap), snap)
    return DoctorReport(snap, assessment, checks(snap, assessment), _next_command(assessment))


def machine(snapshot_file: Path | None) -> HardwareSnapshot:
    """A saved snapshot (``--snapshot``), else this machine probed now."""
    return serialize.load(snapshot_file) if snapshot_file else take_snapshot()


def doctor(snapshot_file: Path | None) -> DoctorReport:
    return build_report(machine(snapshot_file))
