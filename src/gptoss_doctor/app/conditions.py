"""Was the run clean? Throttling and contention judged from a power trace, with evidence.

Throttled: NVML reported a thermal or hardware slowdown (clocks-event reasons
``SwThermalSlowdown``, ``HwThermalSlowdown``, ``HwSlowdown``, ``HwPowerBrakeSlowdown``) in
any reading, or the CPU package's thermal-throttle counter rose during the run. Reaching the
software power cap is recorded but not counted: a GPU at full load running at its power
limit is working as designed.

Contended: other processes used at least ``CONTENDED_CPU_CORES`` CPU cores on average
(system-wide busy time minus this process's), or another process held a compute context on
a measured GPU. Everything is ``None`` where no source says, and ``not_measured`` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise

from gptoss_doctor.app.records import Conditions, GpuConditions
from gptoss_doctor.probe.power import GpuReading, Tick
from gptoss_doctor.probe.sampler import PowerTrace

CONTENDED_CPU_CORES = 0.5
TOP_PROCESSES = 3
# NVML clocks-event reason bits (nvml.h, nvmlClocksEventReason*).
REASONS = {0x4: "SW power cap", 0x8: "HW slowdown", 0x20: "SW thermal slowdown",
           0x40: "HW thermal slowdown", 0x80: "HW power brake slowdown"}
THROTTLING = 0x8 | 0x20 | 0x40 | 0x80
GIB = 1024**3


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def gpu_conditions(gpu: str, readings: Sequence[GpuReading]) -> GpuConditions:
    clocks = [r.sm_clock_mhz for r in readings if r.sm_clock_mhz is not None]
    temps = [r.temperature_c for r in readings if r.temperature_c is not None]
    util = [float(r.utilization_percent) for r in readings if r.utilization_percent is not None]
    tops = [r.sm_clock_max_mhz for r in readings if r.sm_clock_max_mhz]
    masks = [r.throttle_reasons for r in readings if r.throttle_reasons is not None]
    seen = tuple(f"{name} in {n} of {len(masks)} readings"
                 for bit, name in REASONS.items()
                 if (n := sum(1 for mask in masks if mask & bit)))
    return GpuConditions(gpu, min(clocks) if clocks else None,
                         _mean([float(c) for c in clocks]), max(tops) if tops else None,
                         max(temps) if temps else None, _mean(util), seen)


def _gpu_evidence(gpu: str, readings: Sequence[GpuReading]
                  ) -> tuple[list[str], list[str], bool]:
    """Throttle evidence, contention evidence, and whether reasons were readable at all."""
    masks = [r.throttle_reasons for r in readings if r.throttle_reasons is not None]
    throttled: list[str] = []
    for bit, name in REASONS.items():
        hits = [i for i, r in enumerate(readings)
                if r.throttle_reasons is not None and r.throttle_reasons & bit & THROTTLING]
        if hits:
            clocks = [c for i in hits if (c := readings[i].sm_clock_mhz) is not None]
            temps = [t for i in hits if (t := readings[i].temperature_c) is not None]
            detail = "".join([f", SM clock down to {min(clocks)} MHz" if clocks else "",
                              f", up to {max(temps):g} °C" if temps else ""])
            throttled.append(f"{gpu}: {name} in {len(hits)} of {len(masks)} readings{detail}")
    others: dict[int, int | None] = {}
    for reading in readings:
        for pid, used in reading.other_processes:
            others[pid] = max(used or 0, others.get(pid) or 0) or None
    contended = [f"{gpu}: process {pid} runs on this GPU"
                 + (f" ({used / GIB:.1f} GiB)" if used else "") for pid, used in others.items()]
    return throttled, contended, bool(masks)


def _cpu_use(ticks: Sequence[Tick]) -> tuple[float | None, float | None]:
    """Other processes' mean and peak CPU cores (busy time not spent by this process)."""
    points = [(t.t_s, t.cpu_busy_s, t.self_cpu_s) for t in ticks
              if t.cpu_busy_s is not None and t.self_cpu_s is not None]
    rates: list[float] = []
    for (t0, b0, s0), (t1, b1, s1) in pairwise(points):
        if t1 > t0 and b0 is not None and b1 is not None and s0 is not None and s1 is not None:
            rates.append(max(0.0, (b1 - b0) - (s1 - s0)) / (t1 - t0))
    if not rates:
        return None, None
    (t0, b0, s0), (t1, b1, s1) = points[0], points[-1]
    assert b0 is not None and b1 is not None and s0 is not None and s1 is not None
    return round(max(0.0, (b1 - b0) - (s1 - s0)) / (t1 - t0), 2), round(max(rates), 2)


def _top_processes(trace: PowerTrace) -> tuple[str, ...]:
    before, after = trace.processes_before, trace.processes_after
    if before is None or after is None:
        return ()
    used = sorted(((cpu - before.get(pid, (name, 0.0))[1], pid, name)
                   for pid, (name, cpu) in after.items() if pid != trace.self_pid),
                  reverse=True)
    return tuple(f"{name} (pid {pid}): {seconds:.1f} CPU s" for seconds, pid, name
                 in used[:TOP_PROCESSES] if seconds >= 0.1)


SERVER_IS_OTHER = ("contention: the server is another process on this machine, so other "
                   "processes' CPU and GPU use is not a neighbour's")


def judge(trace: PowerTrace, *, neighbours: bool = True) -> Conditions:
    """The results' ``conditions`` block for one run. ``neighbours=False`` (a local server
    measured over HTTP) judges throttling only: the server is one of the other processes."""
    judged = _judge(trace)
    if neighbours:
        return judged
    return replace(judged, contended=None, contention_evidence=(),
                   other_processes_cpu_cores_mean=None, other_processes_cpu_cores_peak=None,
                   top_other_processes=(), not_measured=(
                       *(n for n in judged.not_measured if not n.startswith("contention")),
                       SERVER_IS_OTHER))


def _judge(trace: PowerTrace) -> Conditions:
    ticks = trace.ticks
    names = list(dict.fromkeys(g.gpu for tick in ticks for g in tick.gpus))
    by_gpu = {n: [g for tick in ticks for g in tick.gpus if g.gpu == n] for n in names}
    throttle: list[str] = []
    contention: list[str] = []
    reasons_readable = False
    for name, readings in by_gpu.items():
        hot, busy, readable = _gpu_evidence(name, readings)
        throttle += hot
        contention += busy
        reasons_readable |= readable
    counts = [t.cpu_throttle_count for t in ticks if t.cpu_throttle_count is not None]
    if len(counts) > 1 and counts[-1] > counts[0]:
        throttle.append(f"CPU package thermal throttling: {counts[-1] - counts[0]} event(s)")
    mean, peak = _cpu_use(ticks)
    if mean is not None and mean >= CONTENDED_CPU_CORES:
        n_cpus = next((t.n_cpus for t in ticks if t.n_cpus), None)
        contention.insert(0, f"other processes used {mean:g} CPU cores on average (peak "
                          f"{peak:g}){f' of {n_cpus}' if n_cpus else ''}")
    missing = []
    if not reasons_readable and len(counts) < 2:
        missing.append("throttling: no GPU throttle reasons (NVML) and no CPU thermal-throttle "
                       "counter readable here")
    if mean is None:
        missing.append("contention: other processes' CPU time is not readable here")
    freqs = [t.cpu_mhz for t in ticks if t.cpu_mhz is not None]
    temps = [t.cpu_temp_c for t in ticks if t.cpu_temp_c is not None]
    duration = ticks[-1].t_s - ticks[0].t_s if len(ticks) > 1 else 0.0
    return Conditions(
        len(ticks), round(duration, 3),
        bool(throttle) if throttle or reasons_readable or len(counts) > 1 else None,
        tuple(throttle), bool(contention) if contention or mean is not None else None,
        tuple(contention), tuple(gpu_conditions(n, r) for n, r in by_gpu.items()),
        _mean(freqs), min(freqs) if freqs else None,
        next((t.cpu_max_mhz for t in ticks if t.cpu_max_mhz), None),
        max(temps) if temps else None, mean, peak, _top_processes(trace), tuple(missing),
        min(ram) if (ram := [t.ram_available_bytes for t in ticks
                             if t.ram_available_bytes is not None]) else None)
