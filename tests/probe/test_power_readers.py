"""Power and conditions readers over replayed traces (``tests/fixtures/power/``, each naming
its source), the live sources on this machine, and the recorder that writes traces."""

from __future__ import annotations

import os

import pytest

from gptoss_doctor.probe import power
from gptoss_doctor.probe.power_sources import LivePowerSources
from gptoss_doctor.probe.sampler import Sampler
from gptoss_doctor.probe.trace import TraceSources, record, replay

from conftest import FIXTURES

POWER = FIXTURES / "power"


def _trace(name: str) -> TraceSources:
    return TraceSources.load(POWER / name)


@pytest.mark.parametrize("path", sorted(POWER.glob("*.json")), ids=lambda p: p.stem)
def test_every_trace_names_its_source(path: os.PathLike[str]) -> None:
    assert TraceSources.load(POWER / os.fspath(path)).trace["source"].strip()


def test_nvml_readings_take_the_counter_in_joules_and_power_in_watts() -> None:
    tick = replay(_trace("nvml-h100-clean.json")).ticks[2]
    (reading,) = tick.energy
    assert reading.source == "nvml:0 NVIDIA H100 80GB HBM3" and reading.kind == "gpu"
    assert reading.energy_j == pytest.approx(5060.0) and reading.power_w == pytest.approx(300.0)
    (gpu,) = tick.gpus
    assert (gpu.sm_clock_mhz, gpu.sm_clock_max_mhz, gpu.throttle_reasons) == (1980, 1980, 0)
    assert gpu.other_processes == ()  # our own process is not a neighbour


def test_a_counter_nvml_does_not_support_reads_as_none_not_zero() -> None:
    (reading,) = replay(_trace("nvml-energy-missing.json")).ticks[0].energy
    assert reading.energy_j is None and reading.power_w == pytest.approx(70.0)


def test_rapl_reads_package_and_dram_with_their_wrap_range_and_skips_core() -> None:
    tick = replay(_trace("rapl-package-wraps.json")).ticks[0]
    assert [(r.source, r.kind) for r in tick.energy] == [
        ("rapl:package-0", "cpu-package"), ("rapl:package-0/dram", "dram")]
    assert tick.energy[0].range_j == pytest.approx(262143.32885)


def test_amdgpu_hwmon_power_clock_and_temperatures() -> None:
    tick = replay(_trace("amdgpu-hwmon-power.json")).ticks[0]
    (reading,) = tick.energy
    assert reading.source == "hwmon:amdgpu (hwmon1)" and reading.power_w == pytest.approx(200.0)
    (gpu,) = tick.gpus
    assert gpu.sm_clock_mhz == 2400 and gpu.temperature_c == pytest.approx(70.0)
    assert tick.cpu_temp_c == pytest.approx(65.0)


def test_cpu_frequency_and_throttle_counter() -> None:
    ticks = replay(_trace("cpu-thermal-throttle.json")).ticks
    assert ticks[0].cpu_mhz == pytest.approx(4700) and ticks[-1].cpu_mhz == pytest.approx(3100)
    assert ticks[0].cpu_max_mhz == pytest.approx(5000)
    assert (ticks[0].cpu_throttle_count, ticks[-1].cpu_throttle_count) == (12, 15)


@pytest.mark.parametrize(("name", "expected"), [
    pytest.param("rapl-unreadable.json", "not readable (root only since Linux 5.10",
                 id="RAPL zones that only root may read are said to be unreadable"),
    pytest.param("cpu-thermal-throttle.json", "no RAPL zones",
                 id="a machine without powercap says so"),
])
def test_why_power_sources_give_nothing(name: str, expected: str) -> None:
    reasons = power.unavailable(_trace(name))
    assert any(expected in reason for reason in reasons), reasons
    assert any("NVML: LibraryNotFound" in reason for reason in reasons)


def test_a_mac_says_powermetrics_needs_root() -> None:
    sources = _trace("cpu-thermal-throttle.json")
    sources.trace["system"] = "Darwin"
    assert power.unavailable(sources) == (power.APPLE_REASON,)


def test_garbled_sysfs_numbers_read_as_none() -> None:
    assert power.number("12\n") == 12.0
    assert power.number("N/A") is None and power.number(None) is None


def test_the_sampler_thread_collects_readings_until_stopped() -> None:
    sources = _trace("nvml-h100-clean.json")
    sampler = Sampler(sources, interval_s=0.001, self_pid=sources.self_pid)
    sampler.start()
    trace = sampler.stop()
    assert len(trace.ticks) >= 2 and trace.interval_s == 0.001


def test_live_sources_on_this_machine_never_raise() -> None:
    sources = LivePowerSources()
    try:
        tick = power.read_tick(sources, 0.0, os.getpid())
        reasons = power.unavailable(sources)
    finally:
        sources.close()
    assert tick.t_s == 0.0
    assert all(isinstance(reason, str) and reason for reason in reasons)


def test_a_recorded_trace_replays_what_was_read() -> None:
    source = _trace("rapl-package-wraps.json")
    ticks = iter(range(3))

    def step(_: float) -> None:
        next(ticks)
        source.advance()

    recorded = record(source, 3, 0.1, self_pid=source.self_pid, sleep=step)
    again = TraceSources(recorded)
    replayed = replay(again).ticks
    assert [t.energy for t in replayed] == [
        power.read_tick(_at(i), 0.0, 0).energy for i in range(3)]


def _at(index: int) -> TraceSources:
    sources = _trace("rapl-package-wraps.json")
    for _ in range(index):
        sources.advance()
    return sources
