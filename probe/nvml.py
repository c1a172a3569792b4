"""NVIDIA GPUs through NVML: the only module that imports ``pynvml`` (nvidia-ml-py).

``read_nvml()`` turns live NVML calls into a plain JSON-able record (errors included);
``parse_nvml_record()`` is the pure parser the tests feed with recorded records.
Record shape::

    {"status": "ok" | "<NVML error name>", "error": str?, "driver_version": str?,
     "cuda_driver_version": int?,   # NVML's 12040 -> "12.4"
     "devices": [{"index", "name", "memory": {"total", "free", "used"} | {"error"},
                  "cuda_compute_capability": [major, minor]?, "pci_bus_id"?,
                  "memory_bus_width_bits"?, "memory_clock_max_mhz"?}]}
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from gptoss_doctor.probe.model import GpuInfo, Note


def _error_name(exc: BaseException) -> str:
    """``NVMLError_NotSupported`` -> ``NotSupported``; anything else keeps its class name."""
    name = type(exc).__name__
    return name.removeprefix("NVMLError_") if name.startswith("NVMLError_") else name


def _call(record: dict[str, Any], key: str, fn: Callable[..., Any], *args: Any) -> None:
    """One defensive NVML call: a value lands in ``record[key]``, an error in ``key_error``."""
    try:
        value = fn(*args)
    except Exception as exc:  # NVML raises a zoo of NVMLError_* classes
        record[f"{key}_error"] = _error_name(exc)
        return
    record[key] = value.decode() if isinstance(value, bytes) else value


def read_nvml() -> dict[str, Any]:
    """Query NVML on this machine. Never raises; failures are in the record."""
    try:
        import pynvml
    except ImportError:
        return {"status": "ModuleNotFound", "error": "nvidia-ml-py is not installed"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return {"status": _error_name(exc), "error": str(exc)}
    record: dict[str, Any] = {"status": "ok", "devices": []}
    try:
        _call(record, "driver_version", pynvml.nvmlSystemGetDriverVersion)
        _call(record, "cuda_driver_version", pynvml.nvmlSystemGetCudaDriverVersion)
        count = pynvml.nvmlDeviceGetCount()
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            device: dict[str, Any] = {"index": index}
            _call(device, "name", pynvml.nvmlDeviceGetName, handle)
            try:
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
                device["memory"] = {"total": mem.total, "free": mem.free, "used": mem.used}
            except Exception as exc:
                device["memory"] = {"error": _error_name(exc)}
            _call(device, "cuda_compute_capability",
                  pynvml.nvmlDeviceGetCudaComputeCapability, handle)
            if isinstance(device.get("cuda_compute_capability"), tuple):
                device["cuda_compute_capability"] = list(device["cuda_compute_capability"])
            _call(device, "pci_info", pynvml.nvmlDeviceGetPciInfo, handle)
            pci = device.pop("pci_info", None)
            if pci is not None:
                bus = pci.busId
                device["pci_bus_id"] = bus.decode() if isinstance(bus, bytes) else str(bus)
            _call(device, "memory_bus_width_bits", pynvml.nvmlDeviceGetMemoryBusWidth, handle)
            _call(device, "memory_clock_max_mhz", pynvml.nvmlDeviceGetMaxClockInfo, handle,
                  pynvml.NVML_CLOCK_MEM)
            record["devices"].append(device)
    except Exception as exc:
        record["status"] = _error_name(exc)
        record["error"] = str(exc)
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return record


_STATUS_EXPLAINED = {
    "LibraryNotFound": "NVML library not found (no NVIDIA driver installed)",
    "ModuleNotFound": "nvidia-ml-py is not installed",
    "DriverNotLoaded": "the NVIDIA driver is installed but not loaded",
    "NoPermission": "no permission to query the NVIDIA driver",
    "Uninitialized": "NVML could not be initialised",
    "LibRmVersionMismatch": "the NVIDIA kernel driver and its library differ (usually after "
    "a driver update): reboot to load the new driver",
}


def cuda_version_string(value: Any) -> str | None:
    """NVML's integer CUDA driver version (12040) as ``"12.4"``."""
    if not isinstance(value, int) or value <= 0:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def parse_nvml_record(record: dict[str, Any]) -> tuple[tuple[GpuInfo, ...], tuple[Note, ...]]:
    """Turn a record from ``read_nvml`` into GPUs and notes (pure)."""
    status = record.get("status", "error")
    if status != "ok":
        reason = _STATUS_EXPLAINED.get(status, f"NVML failed: {record.get('error', status)}")
        return (), (Note("nvml", reason),)
    driver = record.get("driver_version")
    cuda = cuda_version_string(record.get("cuda_driver_version"))
    found = [_device(device, driver, cuda) for device in record.get("devices", [])]
    return (tuple(gpu for gpu, _note in found),
            tuple(note for _gpu, note in found if note is not None))


def _device(device: dict[str, Any], driver: str | None, cuda: str | None
            ) -> tuple[GpuInfo, Note | None]:
    """One NVML device, and a note where it has no dedicated memory."""
    name = str(device.get("name") or "NVIDIA GPU")
    memory = device.get("memory") or {}
    total = memory.get("total")
    free = memory.get("free")
    # GB10 (DGX Spark) and Jetson answer NotSupported or a zero total: their GPU shares host
    # RAM (NVIDIA DGX Spark known issues: "nvidia-smi reports memory usage Not Supported").
    unified = "error" in memory or not total
    note = Note("nvml", f"{name}: NVML reports no dedicated memory "
                f"({memory.get('error', 'total 0')}); treating it as unified memory sized "
                "from host RAM") if unified else None
    capability = device.get("cuda_compute_capability")
    gpu = GpuInfo(
        vendor="nvidia", name=name, source="nvml", index=device.get("index"),
        vram_total_bytes=None if unified or total is None else int(total),
        vram_free_bytes=None if unified or free is None else int(free),
        unified_memory=unified, discrete=not unified, driver_version=driver,
        cuda_driver_version=cuda,
        compute_capability=(f"{capability[0]}.{capability[1]}"
                            if isinstance(capability, list) and len(capability) == 2 else None),
        pci_bus_id=device.get("pci_bus_id"),
        memory_bus_width_bits=device.get("memory_bus_width_bits"),
        memory_clock_max_mhz=device.get("memory_clock_max_mhz"))
    return gpu, note


class NvmlSampler:
    """Power and conditions of every NVIDIA GPU, read many times between one init and close.

    ``sample()`` record shape (each missing or failing value is a ``<key>_error`` instead)::

        {"status": "ok" | "<NVML error name>", "devices": [{"index", "name",
         "total_energy_mj", "power_mw", "sm_clock_mhz", "sm_clock_max_mhz",
         "temperature_c", "utilization_percent", "clocks_event_reasons",
         "processes": [{"pid", "used_bytes"}]}]}
    """

    def __init__(self) -> None:
        self.status = "ok"
        self._nvml: Any = None
        self._handles: list[tuple[int, Any, str | None]] = []
        try:
            import pynvml

            pynvml.nvmlInit()
        except ImportError:
            self.status = "ModuleNotFound"
            return
        except Exception as exc:
            self.status = _error_name(exc)
            return
        self._nvml = pynvml
        try:
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                named: dict[str, Any] = {}
                _call(named, "name", pynvml.nvmlDeviceGetName, handle)
                self._handles.append((index, handle, named.get("name")))
        except Exception as exc:
            self.status = _error_name(exc)

    def sample(self) -> dict[str, Any]:
        """One reading of every GPU. Never raises."""
        nvml = self._nvml
        if nvml is None or self.status != "ok":
            return {"status": self.status}
        # nvidia-ml-py 12.535+ renamed "throttle reasons" to "clocks event reasons".
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons",
                          getattr(nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None))
        devices = []
        for index, handle, name in self._handles:
            device: dict[str, Any] = {"index": index, "name": name}
            _call(device, "total_energy_mj", nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
            _call(device, "power_mw", nvml.nvmlDeviceGetPowerUsage, handle)
            _call(device, "sm_clock_mhz", nvml.nvmlDeviceGetClockInfo, handle,
                  nvml.NVML_CLOCK_SM)
            _call(device, "sm_clock_max_mhz", nvml.nvmlDeviceGetMaxClockInfo, handle,
                  nvml.NVML_CLOCK_SM)
            _call(device, "temperature_c", nvml.nvmlDeviceGetTemperature, handle,
                  nvml.NVML_TEMPERATURE_GPU)
            _call(device, "utilization", nvml.nvmlDeviceGetUtilizationRates, handle)
            rates = device.pop("utilization", None)
            if rates is not None:
                device["utilization_percent"] = rates.gpu
            if reasons is not None:
                _call(device, "clocks_event_reasons", reasons, handle)
            _call(device, "compute", nvml.nvmlDeviceGetComputeRunningProcesses, handle)
            device["processes"] = [{"pid": p.pid, "used_bytes": p.usedGpuMemory}
                                   for p in device.pop("compute", None) or ()]
            devices.append(device)
        return {"status": "ok", "devices": devices}

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None
