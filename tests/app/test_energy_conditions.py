"""Joules per token and the run's conditions from replayed power traces
(``tests/fixtures/power/``): counters that wrap, reset, are missing or read 0; a throttling
trace marks the run throttled, a busy neighbour marks it contended."""

from __future__ import annotations

import jsonschema
import pytest

from gptoss_doctor.app import conditions, energy
from gptoss_doctor.app.records import EnergyReport
from gptoss_doctor.bench import results
from gptoss_doctor.bench.speed import TestResult as SpeedTestResult
from gptoss_doctor.probe.sampler import PowerTrace
from gptoss_doctor.probe.trace import TraceSources, replay
from gptoss_doctor.serde import to_json

from conftest import FIXTURES

POWER = FIXTURES / "power"
TG = SpeedTestResult("tg16", "tg", 16, 0, "ok", None, (0.4, 0.4), (40.0, 40.0), 40.0, 0.0)
PP = SpeedTestResult("pp512", "pp", 512, 0, "ok", None, (0.1,), (5120.0,), 5120.0, 0.0)
WINDOWS = [("pp512", 0.05, 0.15), ("tg16", 0.2, 0.6), ("tg16", 0.6, 1.0)]


def _trace(name: str) -> PowerTrace:
    return replay(TraceSources.load(POWER / name))


def _report(name: str) -> EnergyReport:
    return energy.report(_trace(name), (PP, TG), WINDOWS)


def test_an_energy_counter_gives_joules_per_token_over_the_timed_windows_only() -> None:
    report = _report("nvml-h100-clean.json")
    assert report.status == "measured" and report.reason is None
    assert report.sources == ("nvml:0 NVIDIA H100 80GB HBM3 (energy counter)",)
    assert report.rate_hz == pytest.approx(10.0)
    pp, tg = report.tests
    # 300 W: 120 J in each 0.4 s window, two windows of 16 tokens
    assert (tg.tokens, tg.seconds, tg.samples) == (32, pytest.approx(0.8), 10)
    assert tg.joules == pytest.approx(240.0) and tg.joules_per_token == pytest.approx(7.5)
    assert tg.average_power_w == pytest.approx(300.0) and tg.peak_power_w == pytest.approx(300.0)
    assert tg.note is None
    # a window shorter than the sampling interval is interpolated, and says so
    assert pp.joules == pytest.approx(30.0)
    assert pp.joules_per_token == pytest.approx(30 / 512, rel=1e-5)
    assert pp.note is not None and "interpolated" in pp.note


@pytest.mark.parametrize(("name", "method", "joules"), [
    pytest.param("nvml-energy-reads-zero.json", "power samples", 120.0,
                 id="a counter that reads 0 falls back to power readings, skipping a 0 W one"),
    pytest.param("nvml-energy-missing.json", "power samples", 56.0,
                 id="a counter NVML does not support falls back to power readings"),
    pytest.param("amdgpu-hwmon-power.json", "power samples", 160.0,
                 id="amdgpu hwmon power1_average is integrated"),
    pytest.param("nvml-counter-reset.json", "energy counter", 240.0,
                 id="a counter that resets uses the power readings for that interval"),
    pytest.param("rapl-package-wraps.json", "energy counter", 22.4,
                 id="a RAPL counter that wraps is unwrapped at max_energy_range_uj"),
])
def test_energy_from_every_kind_of_source(name: str, method: str, joules: float) -> None:
    report = _report(name)
    tg = report.tests[1]
    assert {s.method for s in tg.by_source} == {method}
    assert tg.joules == pytest.approx(joules)
    assert tg.joules_per_token == pytest.approx(joules / 32)


def test_wraps_and_resets_are_noted() -> None:
    assert any("wrapped 1 time" in n for n in _report("rapl-package-wraps.json").notes)
    assert any("went back 1 time" in n for n in _report("nvml-counter-reset.json").notes)


def test_rapl_adds_package_and_dram() -> None:
    tg = _report("rapl-package-wraps.json").tests[1]
    assert [(s.source, s.kind, s.joules) for s in tg.by_source] == [
        ("rapl:package-0", "cpu-package", pytest.approx(20.0)),
        ("rapl:package-0/dram", "dram", pytest.approx(2.4))]


@pytest.mark.parametrize(("name", "why"), [
    pytest.param("rapl-unreadable.json", "root only since Linux 5.10",
                 id="unreadable RAPL counters"),
    pytest.param("ci-2core-busy-neighbour.json", "no RAPL zones",
                 id="this project's CI machine, recorded"),
])
def test_no_source_is_an_explicit_not_measured(name: str, why: str) -> None:
    report = _report(name)
    assert report.status == "not measured" and report.tests == ()
    assert report.reason is not None and report.reason.startswith("not measured: ")
    assert why in report.reason and "NVML: LibraryNotFound" in report.reason


def test_a_test_without_windows_has_no_figure() -> None:
    report = energy.report(_trace("nvml-h100-clean.json"), (TG,), [])
    assert report.tests[0].joules_per_token is None
    assert report.tests[0].note == "no timed window (the test did not run)"


def test_a_clean_run_is_neither_throttled_nor_contended() -> None:
    judged = conditions.judge(_trace("nvml-h100-clean.json"))
    assert (judged.throttled, judged.contended) == (False, False)
    assert judged.throttle_evidence == judged.contention_evidence == ()
    (gpu,) = judged.gpus
    # the software power cap is recorded, not counted as throttling
    assert gpu.reasons == ("SW power cap in 2 of 11 readings",)
    assert (gpu.sm_clock_mhz_min, gpu.temperature_c_max) == (1980, 58)
    assert judged.other_processes_cpu_cores_mean == 0.0 and judged.not_measured == ()


def test_a_replayed_throttling_trace_marks_the_run_throttled() -> None:
    judged = conditions.judge(_trace("nvml-h100-thermal-throttle.json"))
    assert judged.throttled is True
    assert judged.throttle_evidence == (
        "nvml:0 NVIDIA H100 80GB HBM3: SW thermal slowdown in 4 of 11 readings, "
        "SM clock down to 1410 MHz, up to 91 °C",
        "nvml:0 NVIDIA H100 80GB HBM3: HW thermal slowdown in 4 of 11 readings, "
        "SM clock down to 1410 MHz, up to 91 °C")


def test_a_rising_cpu_throttle_counter_marks_the_run_throttled() -> None:
    judged = conditions.judge(_trace("cpu-thermal-throttle.json"))
    assert judged.throttled is True
    assert judged.throttle_evidence == ("CPU package thermal throttling: 3 event(s)",)
    assert (judged.cpu_mhz_min, judged.cpu_max_mhz) == (pytest.approx(3100), pytest.approx(5000))


def test_a_recorded_busy_neighbour_marks_the_run_contended() -> None:
    judged = conditions.judge(_trace("ci-2core-busy-neighbour.json"))
    assert judged.contended is True
    assert judged.contention_evidence[0].startswith("other processes used ")
    assert judged.other_processes_cpu_cores_mean is not None
    assert judged.other_processes_cpu_cores_mean >= conditions.CONTENDED_CPU_CORES
    assert judged.top_other_processes  # names and CPU seconds of the busiest others
    assert judged.ram_available_min_bytes is not None and judged.ram_available_min_bytes > 0
    assert judged.throttled is None and judged.not_measured[0].startswith("throttling: ")


def test_another_process_on_the_gpu_marks_the_run_contended() -> None:
    judged = conditions.judge(_trace("nvml-gpu-neighbour.json"))
    assert judged.contended is True
    assert judged.contention_evidence == (
        "nvml:0 NVIDIA H100 80GB HBM3: process 777 runs on this GPU (20.0 GiB)",)


def test_energy_and_conditions_validate_against_the_results_schema() -> None:
    loaded = results.load(FIXTURES / "results" / "synthetic-tiny-cpu.json")
    for name in ("nvml-h100-thermal-throttle.json", "rapl-unreadable.json"):
        data = {**loaded, "energy": to_json(_report(name)),
                "conditions": to_json(conditions.judge(_trace(name)))}
        jsonschema.validate(data, results.schema())
    jsonschema.validate({**loaded, "energy": None, "conditions": None}, results.schema())


def test_a_local_server_sweep_gives_joules_per_generated_token_and_no_contention() -> None:
    trace = _trace("nvml-h100-clean.json")
    spent = energy.sweep_report(trace, generated_tokens=600)
    (sweep,) = spent.tests
    # 300 W over the whole second of the trace, 600 tokens
    assert sweep.test == "sweep" and sweep.joules == pytest.approx(300.0)
    assert sweep.joules_per_token == pytest.approx(0.5)
    judged = conditions.judge(trace, neighbours=False)
    assert judged.throttled is False and judged.contended is None
    assert judged.not_measured == (conditions.SERVER_IS_OTHER,)


def test_a_remote_server_is_not_measured() -> None:
    from gptoss_doctor.app.sampling import REMOTE, endpoint_fields

    fields = endpoint_fields(None, 100)
    assert fields["conditions"] is None
    assert fields["energy"] == {"status": "not measured", "reason": REMOTE, "sources": [],
                                "interval_s": 0.1, "rate_hz": None, "tests": [], "notes": []}
