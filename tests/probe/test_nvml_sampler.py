"""``NvmlSampler`` against a stand-in ``pynvml`` module (this machine has no NVIDIA driver):
every call goes through the defensive wrapper, so an unsupported query is a ``_error`` key,
never an exception, and the record parses into readings."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from gptoss_doctor.probe.nvml import NvmlSampler
from gptoss_doctor.probe.power import parse_nvml_sample


class NVMLError_NotSupported(Exception):  # pynvml's own class name: the error key comes from it
    pass


def _fake_pynvml(energy_supported: bool) -> types.ModuleType:
    """Values shaped like nvidia-ml-py's answers for one H100 (mJ, mW, MHz, °C, bitmask)."""
    fake = types.ModuleType("pynvml")
    state = {"calls": 0}

    def energy(_: object) -> int:
        if not energy_supported:
            raise NVMLError_NotSupported()
        state["calls"] += 1
        return 5_000_000 + 30_000 * state["calls"]

    process = types.SimpleNamespace(pid=777, usedGpuMemory=2**30)
    values: dict[str, Any] = {
        "nvmlInit": lambda: None, "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: 1, "nvmlDeviceGetHandleByIndex": lambda i: ("gpu", i),
        "nvmlDeviceGetName": lambda h: b"NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetTotalEnergyConsumption": energy,
        "nvmlDeviceGetPowerUsage": lambda h: 312_000,
        "nvmlDeviceGetClockInfo": lambda h, kind: 1755,
        "nvmlDeviceGetMaxClockInfo": lambda h, kind: 1980,
        "nvmlDeviceGetTemperature": lambda h, kind: 71,
        "nvmlDeviceGetUtilizationRates": lambda h: types.SimpleNamespace(gpu=97, memory=80),
        "nvmlDeviceGetCurrentClocksEventReasons": lambda h: 0x4,
        "nvmlDeviceGetComputeRunningProcesses": lambda h: [process],
        "NVML_CLOCK_SM": 1, "NVML_TEMPERATURE_GPU": 0,
    }
    for name, value in values.items():
        setattr(fake, name, value)
    return fake


@pytest.mark.parametrize("supported", [
    pytest.param(True, id="a board with an energy counter"),
    pytest.param(False, id="a board whose energy counter is NotSupported"),
])
def test_a_sample_reads_every_field_defensively(monkeypatch: pytest.MonkeyPatch,
                                                supported: bool) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(supported))
    sampler = NvmlSampler()
    try:
        record = sampler.sample()
    finally:
        sampler.close()
    (device,) = record["devices"]
    assert record["status"] == "ok" and device["name"] == "NVIDIA H100 80GB HBM3"
    assert (device["power_mw"], device["sm_clock_mhz"], device["sm_clock_max_mhz"]) == (
        312_000, 1755, 1980)
    assert (device["temperature_c"], device["utilization_percent"]) == (71, 97)
    assert device["clocks_event_reasons"] == 0x4
    assert device["processes"] == [{"pid": 777, "used_bytes": 2**30}]
    if supported:
        assert device["total_energy_mj"] == 5_030_000
    else:
        assert device["total_energy_mj_error"] == "NotSupported"
        assert "total_energy_mj" not in device
    energy, gpus = parse_nvml_sample(record, self_pid=1)
    assert energy[0].power_w == pytest.approx(312.0)
    assert gpus[0].other_processes == ((777, 2**30),)


def test_no_library_is_a_status_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails like a missing package
    sampler = NvmlSampler()
    assert sampler.sample() == {"status": "ModuleNotFound"}
    sampler.close()
