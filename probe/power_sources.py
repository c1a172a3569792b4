"""The live machine behind ``probe.power.PowerSources``: sysfs, NVML and psutil.

A thin fetch: files through ``LiveSources``, GPUs through one ``NvmlSampler`` kept open for
the whole run (initialising NVML per tick would cost more than the tick), CPU seconds and
processes through psutil. Nothing here raises.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from gptoss_doctor.probe.nvml import NvmlSampler
from gptoss_doctor.probe.sources import LiveSources


class LivePowerSources:
    """Reads this machine; ``close()`` releases NVML."""

    def __init__(self) -> None:
        self._files = LiveSources()
        self._nvml = NvmlSampler()

    @property
    def nvml_status(self) -> str:
        return self._nvml.status

    def read_text(self, path: str) -> str | None:
        return self._files.read_text(path)

    def list_dir(self, path: str) -> tuple[str, ...] | None:
        return self._files.list_dir(path)

    def nvml_sample(self) -> dict[str, Any]:
        return self._nvml.sample()

    def cpu_times(self) -> dict[str, float] | None:
        try:
            import psutil

            system = psutil.cpu_times()
            own = psutil.Process().cpu_times()
        except Exception:
            return None
        idle = system.idle + getattr(system, "iowait", 0.0)
        return {"busy_s": sum(system) - idle - getattr(system, "guest", 0.0)
                - getattr(system, "guest_nice", 0.0),
                "self_s": own.user + own.system, "n_cpus": float(os.cpu_count() or 0)}

    def processes(self) -> dict[int, tuple[str, float]] | None:
        try:
            import psutil

            found: dict[int, tuple[str, float]] = {}
            for proc in psutil.process_iter(["name", "cpu_times"]):
                times = proc.info.get("cpu_times")
                if times is not None:
                    found[proc.pid] = (str(proc.info.get("name") or "?"),
                                       times.user + times.system)
        except Exception:
            return None
        return found

    def ram_available_bytes(self) -> int | None:
        try:
            import psutil

            return int(psutil.virtual_memory().available)
        except Exception:
            return None

    def system(self) -> str:
        return platform.system()

    def close(self) -> None:
        self._nvml.close()
