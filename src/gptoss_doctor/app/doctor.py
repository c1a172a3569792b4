"""The preflight service: probe (or load) a snapshot, assess it, and list the checks.

``build_report`` depends on the snapshot and the user's stored calibration only
(``app.calibrate``); the CLI renders the ``DoctorReport`` as text (``reports.doctor_view``)
or as the versioned ``--json`` envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from gptoss_doctor.app import calibrate
from gptoss_doctor.app.checks import Check, checks
from gptoss_doctor.app.feedback import Feedback, Silent
from gptoss_doctor.errors import UsageError
from gptoss_doctor.install.corrections import HOST_RAM_PLACEMENTS, calibration_reason
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.install.verdict_records import Assessment
from gptoss_doctor.probe import membw, serialize
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


# The measurement's two buffers take 512 MiB; below this much free RAM it is not run.
MEASURE_MIN_AVAILABLE_BYTES = 2 * 1024**3


def with_measured_bandwidth(snap: HardwareSnapshot, feedback: Feedback) -> HardwareSnapshot:
    """``snap`` with its host memory bandwidth measured now (about half a second)."""
    threads = snap.cpu.cores_physical or snap.cpu.cores_logical or 1
    available = snap.memory.ram_available_bytes
    if available is not None and available < MEASURE_MIN_AVAILABLE_BYTES:
        feedback.note("host memory bandwidth not measured: less than 2 GiB of RAM is free")
        return snap
    feedback.note(f"measuring host memory bandwidth ({threads} threads, about half a second; "
                  "--no-measure-bandwidth skips it)")
    try:
        found = membw.measure(threads)
    except MemoryError:
        found = None
    if found is None:
        return snap
    return replace(snap, memory=replace(snap.memory, host_bandwidth_bytes_per_s=found.bytes_per_s,
                                        host_bandwidth_source=found.source,
                                        host_bandwidth_measured=True))


def doctor(snapshot_file: Path | None, measure_bandwidth: bool | None = None,
           feedback: Feedback | None = None) -> DoctorReport:
    """The report on this machine (or a saved snapshot). Host memory bandwidth is measured
    when asked (True), never (False), or by default (None) on this machine when no memory
    module figure was read and a plan puts weights in host RAM (``needs_measurement``)."""
    if measure_bandwidth and snapshot_file is not None:
        raise UsageError("--measure-bandwidth measures this machine; it cannot be combined "
                         "with --snapshot")
    snap = machine(snapshot_file)
    if measure_bandwidth is None:
        measure_bandwidth = snapshot_file is None and needs_measurement(snap)
    if measure_bandwidth:
        snap = with_measured_bandwidth(snap, feedback or Silent())
    return build_report(snap)


def needs_measurement(snap: HardwareSnapshot) -> bool:
    """Whether a verdict's speed depends on a host bandwidth that nothing has read: no
    memory module figure, and a plan with weights in host RAM (CPU or expert offload) that
    the user's calibration does not correct (its runs were predicted without a measurement:
    measuring too would count their shortfall twice)."""
    if snap.memory.host_bandwidth_bytes_per_s:
        return False
    return any(v.can_run and v.placement in HOST_RAM_PLACEMENTS
               and calibration_reason(v) is None
               for v in calibrate.corrected(assess(snap), snap).verdicts)
