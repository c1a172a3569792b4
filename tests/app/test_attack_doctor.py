"""The doctor's default host-bandwidth measurement against a stored calibration.

`bench speed` records its prediction from a snapshot whose host bandwidth was not measured
(``app.speed.run``), so a stored correction is measured / that prediction. Measuring on top
would count the same shortfall twice. The machine is the replayed
tests/fixtures/machines/cpu-only-64gb (no memory module figure: 20b and 120b on the CPU);
the results file is built as tests/app/test_calibrate.py builds its own, from the recorded
tests/fixtures/results/synthetic-20b-cpu-2threads.json.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.app import calibrate, doctor
from gptoss_doctor.app.feedback import Silent
from gptoss_doctor.app.speed import roofline
from gptoss_doctor.bench.speed import TestResult as SpeedTest
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe.dimm import HostBandwidth
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.serde import to_json
from gptoss_doctor.settings import current

from conftest import FIXTURES, MACHINES

RECORDED = FIXTURES / "results" / "synthetic-20b-cpu-2threads.json"


def _cpu_run(tmp_path: Path, snap: HardwareSnapshot, tg: float) -> Path:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    tests = [SpeedTest("tg128", "tg", 128, 0, "ok", None, (1.0,), (tg,), tg, 0.0)]
    data.update(machine=to_dict(snap), tests=to_json(tests),
                roofline=to_json(roofline(snap, "20b", 0, False, tests, threads=2)))
    data["model"]["gpt_oss"] = "20b"
    data["config"]["n_gpu_layers"] = 0
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    return path


def _measured(snap: HardwareSnapshot, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The doctor on ``snap`` as this machine; the measurement is a stand-in (20 GB/s)."""
    calls: list[int] = []

    def measure(threads: int) -> HostBandwidth:
        calls.append(threads)
        return HostBandwidth(20e9, "measured: stand-in", measured=True)

    monkeypatch.setattr(doctor, "take_snapshot", lambda: snap)
    monkeypatch.setattr(doctor.membw, "measure", measure)
    return calls


def test_a_calibrated_cpu_machine_is_not_measured_again_by_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = snapshot(ReplaySources(MACHINES / "cpu-only-64gb"), current({"HOME": "/h"}))
    assert doctor.needs_measurement(snap)  # uncalibrated: measured
    predicted = assess(snap).verdict("20b").predicted_tokens_per_s
    assert predicted is not None
    calibrate.calibrate((_cpu_run(tmp_path, snap, predicted * 0.5),), Silent(), snap)
    calls = _measured(snap, monkeypatch)
    verdict = doctor.doctor(None).assessment.verdict("20b")
    # What the user measured, corrected once; not the measured bandwidth's figure halved.
    assert verdict.predicted_tokens_per_s == pytest.approx(predicted * 0.5, abs=0.2)
    assert calls == [] and not doctor.needs_measurement(snap)


def test_an_uncalibrated_cpu_machine_is_still_measured_by_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    snap = snapshot(ReplaySources(MACHINES / "cpu-only-64gb"), current({"HOME": "/h"}))
    calls = _measured(snap, monkeypatch)
    verdict = doctor.doctor(None).assessment.verdict("20b")
    assert len(calls) == 1 and "measured: stand-in" in (verdict.speed_basis or "")


def test_an_asked_measurement_replaces_the_host_ram_correction_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = snapshot(ReplaySources(MACHINES / "cpu-only-64gb"), current({"HOME": "/h"}))
    predicted = assess(snap).verdict("20b").predicted_tokens_per_s
    assert predicted is not None
    calibrate.calibrate((_cpu_run(tmp_path, snap, predicted * 0.5),), Silent(), snap)
    calls = _measured(snap, monkeypatch)
    report = doctor.doctor(None, measure_bandwidth=True)
    verdict = report.assessment.verdict("20b")
    assert calls  # measured as asked
    measured_only = assess(doctor.with_measured_bandwidth(snap, Silent())).verdict("20b")
    # The stored ratio is against the unmeasured prediction: it is not applied on top.
    assert verdict.predicted_tokens_per_s == measured_only.predicted_tokens_per_s
    assert any("not applied" in r and "measured" in r for r in verdict.reasons)


def test_no_measurement_with_little_free_ram_or_when_memory_runs_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    snap = snapshot(ReplaySources(MACHINES / "cpu-only-64gb"), current({"HOME": "/h"}))
    tight = replace(snap, memory=replace(snap.memory, ram_available_bytes=1024**3))
    calls = _measured(tight, monkeypatch)
    assert doctor.with_measured_bandwidth(tight, Silent()) == tight and calls == []

    def out_of_memory(threads: int) -> HostBandwidth:
        raise MemoryError

    monkeypatch.setattr(doctor.membw, "measure", out_of_memory)
    assert doctor.with_measured_bandwidth(snap, Silent()) == snap
