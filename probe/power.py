"""Power, energy and running conditions, read once per tick while a benchmark runs
(docs/design.md, "Energy and conditions").

Readers are pure parsers of what a ``PowerSources`` object returns (sysfs text, an NVML
sample record, CPU times); ``gptoss_doctor.probe.power_sources.LivePowerSources`` fetches
them on this machine and ``gptoss_doctor.probe.trace.TraceSources`` replays a recorded or
transcribed trace. One ``read_tick`` gives a frozen ``Tick``; the sampler
(``probe.sampler``) collects ticks and ``app.energy`` turns them into results.

Sources, in the order the tick lists them:

- NVIDIA: NVML's total energy counter (mJ since the driver loaded, Volta and newer) and
  power usage (mW), clocks, temperature, utilisation, clocks-event (throttle) reasons and the
  compute processes on each GPU (``probe.nvml.NvmlSampler``).
- AMD: amdgpu's hwmon ``energy1_input`` (uJ) or ``power1_average``/``power1_input`` (uW),
  ``temp1_input`` (m°C) and ``freq1_input`` (Hz) (the kernel's amdgpu hwmon interface).
- CPU package and DRAM: Linux powercap/RAPL ``energy_uj``, which wraps at
  ``max_energy_range_uj`` and has been readable by root only since Linux 5.10
  (CVE-2020-8694).
- CPU: ``scaling_cur_freq`` (kHz), the package thermal-throttle counter, coretemp/k10temp
  temperatures, and system-wide against this process's CPU seconds (the rest is other
  processes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

HWMON = "/sys/class/hwmon"
POWERCAP = "/sys/class/powercap"
CPUS = "/sys/devices/system/cpu"
MAX_CPUS_READ = 64  # scaling_cur_freq of this many CPUs is plenty for a mean
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")
_SUB_ZONE = re.compile(r"^intel-rapl:\d+:\d+$")
_CPU = re.compile(r"^cpu\d+$")
CPU_TEMP_SENSORS = ("coretemp", "k10temp", "zenpower")
APPLE_REASON = ("Apple exposes power only through powermetrics, which needs root "
                "(sudo powermetrics --samplers cpu_power,gpu_power)")


class PowerSources(Protocol):
    """What the power sampler reads. Implementations never raise."""

    def read_text(self, path: str) -> str | None: ...

    def list_dir(self, path: str) -> tuple[str, ...] | None: ...

    def nvml_sample(self) -> dict[str, Any]: ...

    def cpu_times(self) -> dict[str, float] | None: ...

    def processes(self) -> dict[int, tuple[str, float]] | None: ...

    def ram_available_bytes(self) -> int | None: ...

    def system(self) -> str: ...


@dataclass(frozen=True, slots=True)
class EnergyReading:
    """One source's counter and/or power at one tick; ``None`` where it gave nothing."""

    source: str  # "nvml:0 NVIDIA H100", "hwmon:amdgpu", "rapl:package-0", "rapl:package-0/dram"
    kind: str  # "gpu" | "cpu-package" | "dram"
    energy_j: float | None = None  # raw cumulative counter; it may wrap or reset
    power_w: float | None = None
    range_j: float | None = None  # the counter wraps back to 0 at this value


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU's clocks, temperature and load at one tick."""

    gpu: str
    sm_clock_mhz: int | None = None
    sm_clock_max_mhz: int | None = None
    temperature_c: float | None = None
    utilization_percent: int | None = None
    throttle_reasons: int | None = None  # NVML clocks-event reasons bitmask
    other_processes: tuple[tuple[int, int | None], ...] = ()  # (pid, GPU bytes) not ours


@dataclass(frozen=True, slots=True)
class Tick:
    """Everything read at time ``t_s`` (the sampler's clock)."""

    t_s: float
    energy: tuple[EnergyReading, ...] = ()
    gpus: tuple[GpuReading, ...] = ()
    cpu_mhz: float | None = None
    cpu_max_mhz: float | None = None
    cpu_temp_c: float | None = None
    cpu_throttle_count: int | None = None
    cpu_busy_s: float | None = None  # all processes, cumulative
    self_cpu_s: float | None = None  # this process, cumulative
    n_cpus: int | None = None
    ram_available_bytes: int | None = None


def number(text: str | None) -> float | None:
    """A sysfs number, or ``None`` for missing or garbled text."""
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def parse_nvml_sample(record: dict[str, Any], self_pid: int
                      ) -> tuple[tuple[EnergyReading, ...], tuple[GpuReading, ...]]:
    """An ``NvmlSampler.sample()`` record as readings (pure). Errors read as ``None``."""
    if record.get("status") != "ok":
        return (), ()
    energy: list[EnergyReading] = []
    gpus: list[GpuReading] = []
    for device in record.get("devices", []):
        label = f"nvml:{device.get('index')} {device.get('name') or 'NVIDIA GPU'}"
        total_mj, power_mw = device.get("total_energy_mj"), device.get("power_mw")
        energy.append(EnergyReading(
            label, "gpu",
            energy_j=total_mj / 1000 if isinstance(total_mj, int | float) else None,
            power_w=power_mw / 1000 if isinstance(power_mw, int | float) else None))
        others = tuple((int(p["pid"]), p.get("used_bytes")) for p in device.get("processes", [])
                       if isinstance(p, dict) and p.get("pid") not in (None, self_pid))
        gpus.append(GpuReading(
            label, device.get("sm_clock_mhz"), device.get("sm_clock_max_mhz"),
            device.get("temperature_c"), device.get("utilization_percent"),
            device.get("clocks_event_reasons"), others))
    return tuple(energy), tuple(gpus)


def read_hwmon(sources: PowerSources) -> tuple[tuple[EnergyReading, ...],
                                                tuple[GpuReading, ...], float | None]:
    """amdgpu energy/power, clocks and temperature; the hottest CPU sensor's temperature."""
    energy: list[EnergyReading] = []
    gpus: list[GpuReading] = []
    cpu_temps: list[float] = []
    for entry in sources.list_dir(HWMON) or ():
        base = f"{HWMON}/{entry}"
        name = (sources.read_text(f"{base}/name") or "").strip()
        temp = number(sources.read_text(f"{base}/temp1_input"))
        if name in CPU_TEMP_SENSORS and temp is not None:
            cpu_temps.append(temp / 1000)
        if name != "amdgpu":
            continue
        micro_j = number(sources.read_text(f"{base}/energy1_input"))
        micro_w = number(sources.read_text(f"{base}/power1_average"))
        if micro_w is None:
            micro_w = number(sources.read_text(f"{base}/power1_input"))
        label = f"hwmon:amdgpu ({entry})"
        energy.append(EnergyReading(
            label, "gpu", energy_j=micro_j / 1e6 if micro_j is not None else None,
            power_w=micro_w / 1e6 if micro_w is not None else None))
        hertz = number(sources.read_text(f"{base}/freq1_input"))
        gpus.append(GpuReading(label, sm_clock_mhz=int(hertz / 1e6) if hertz else None,
                               temperature_c=temp / 1000 if temp is not None else None))
    return tuple(energy), tuple(gpus), max(cpu_temps) if cpu_temps else None


def read_powercap(sources: PowerSources) -> tuple[EnergyReading, ...]:
    """RAPL package and DRAM counters (joules), each with its wrap range."""
    readings: list[EnergyReading] = []
    zones = sources.list_dir(POWERCAP) or ()
    names = {zone: (sources.read_text(f"{POWERCAP}/{zone}/name") or "").strip()
             for zone in zones if _PACKAGE_ZONE.match(zone) or _SUB_ZONE.match(zone)}
    for zone, name in names.items():
        if _SUB_ZONE.match(zone) and name != "dram":
            continue  # core/uncore are inside the package figure
        micro_j = number(sources.read_text(f"{POWERCAP}/{zone}/energy_uj"))
        span = number(sources.read_text(f"{POWERCAP}/{zone}/max_energy_range_uj"))
        package = names.get(zone.rsplit(":", 1)[0], "package") if name == "dram" else name
        label = f"rapl:{package}/dram" if name == "dram" else f"rapl:{name or zone}"
        readings.append(EnergyReading(
            label, "dram" if name == "dram" else "cpu-package",
            energy_j=micro_j / 1e6 if micro_j is not None else None,
            range_j=span / 1e6 if span else None))
    return tuple(readings)


def powercap_problem(sources: PowerSources) -> str | None:
    """Why RAPL gives nothing here, or ``None`` when some zone is readable."""
    zones = [z for z in sources.list_dir(POWERCAP) or () if _PACKAGE_ZONE.match(z)]
    if not zones:
        return f"no RAPL zones ({POWERCAP} is absent or empty)"
    if all(sources.read_text(f"{POWERCAP}/{z}/energy_uj") is None for z in zones):
        return (f"{POWERCAP}/*/energy_uj is not readable (root only since Linux 5.10, "
                "CVE-2020-8694)")
    return None


def read_cpu(sources: PowerSources) -> dict[str, float | None]:
    """Mean current frequency and the maximum (MHz), and the package throttle count."""
    cpus = [c for c in sources.list_dir(CPUS) or () if _CPU.match(c)]
    cpus.sort(key=lambda c: int(c[3:]))
    freqs = [number(sources.read_text(f"{CPUS}/{c}/cpufreq/scaling_cur_freq"))
             for c in cpus[:MAX_CPUS_READ]]
    known = [f for f in freqs if f]
    top = number(sources.read_text(f"{CPUS}/cpu0/cpufreq/cpuinfo_max_freq"))
    return {"mhz": sum(known) / len(known) / 1000 if known else None,
            "max_mhz": top / 1000 if top else None,
            "throttle": number(sources.read_text(
                f"{CPUS}/cpu0/thermal_throttle/package_throttle_count"))}


def read_tick(sources: PowerSources, t_s: float, self_pid: int) -> Tick:
    """One reading of every source (a thin fetch around the parsers above)."""
    nvml_energy, nvml_gpus = parse_nvml_sample(sources.nvml_sample(), self_pid)
    hw_energy, hw_gpus, cpu_temp = read_hwmon(sources)
    cpu = read_cpu(sources)
    times = sources.cpu_times() or {}
    throttle = cpu["throttle"]
    return Tick(t_s, nvml_energy + hw_energy + read_powercap(sources), nvml_gpus + hw_gpus,
                cpu["mhz"], cpu["max_mhz"], cpu_temp,
                int(throttle) if throttle is not None else None,
                times.get("busy_s"), times.get("self_s"),
                int(times["n_cpus"]) if times.get("n_cpus") else None,
                sources.ram_available_bytes())


def unavailable(sources: PowerSources) -> tuple[str, ...]:
    """Why each family of power sources may give nothing here (kept in the results)."""
    if sources.system() == "Darwin":
        return (APPLE_REASON,)
    nvml = sources.nvml_sample()
    reasons = []
    if nvml.get("status") != "ok" or not nvml.get("devices"):
        reasons.append(f"no NVIDIA GPU power reading (NVML: {nvml.get('status', 'no GPU')})")
    hwmon = sources.list_dir(HWMON)
    names = [(sources.read_text(f"{HWMON}/{e}/name") or "").strip() for e in hwmon or ()]
    if "amdgpu" not in names:
        reasons.append(f"no amdgpu power sensor in {HWMON}")
    problem = powercap_problem(sources)
    if problem:
        reasons.append(problem)
    return tuple(reasons)
