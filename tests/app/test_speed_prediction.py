"""``bench speed`` records the doctor's prediction beside what it measured (issue 14)."""

from __future__ import annotations

import pytest

from gptoss_doctor.app.speed import roofline
from gptoss_doctor.bench.speed import TestResult as SpeedTestResult
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES


def _tg(mean: float) -> SpeedTestResult:
    return SpeedTestResult("tg128", "tg", 128, 0, "ok", None, (0.5,), (mean,), mean, 0.0)


def test_a_gpt_oss_run_records_the_prediction_and_measured_over_predicted() -> None:
    snap = snapshot(ReplaySources(MACHINES / "rtx4090-24gb"), current({"HOME": "/home/user"}))
    result = roofline(snap, "20b", 0, True, [_tg(150.0)])
    assert result.predicted_tokens_per_s is not None and result.predicted_basis
    assert result.tg_ratio_to_predicted["tg128"] == pytest.approx(
        150.0 / result.predicted_tokens_per_s, abs=0.001)


def test_expert_offload_and_cpu_runs_are_predicted_for_their_own_placement() -> None:
    snap = snapshot(ReplaySources(MACHINES / "rtx4090-24gb"), current({"HOME": "/home/user"}))
    on_gpu = roofline(snap, "120b", 0, True, [], n_cpu_moe=24)
    on_cpu = roofline(snap, "120b", 0, False, [], threads=8)
    assert on_gpu.predicted_basis is not None and "offloaded experts" in on_gpu.predicted_basis
    assert on_cpu.predicted_basis is not None and "host memory" in on_cpu.predicted_basis


def test_a_file_that_is_not_gpt_oss_gets_no_prediction() -> None:
    snap = snapshot(ReplaySources(MACHINES / "rtx4090-24gb"), current({"HOME": "/home/user"}))
    result = roofline(snap, None, 10**9, True, [_tg(100.0)])
    assert result.predicted_tokens_per_s is None and result.tg_ratio_to_predicted == {}
