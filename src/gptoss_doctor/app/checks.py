"""The doctor's check lines (like ``flutter doctor``): pure over snapshot and assessment.

Each ``Check`` is one line with a status — ``ok`` (✓), ``warn`` (!), ``fail`` (✗) or
``info`` (•) — a summary and optional detail lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptoss_doctor.catalog import CATALOG
from gptoss_doctor.install.verdict import CMAKE_ARGS
from gptoss_doctor.install.verdict_records import Assessment
from gptoss_doctor.install.wheels import prebuilt
from gptoss_doctor.probe.model import GpuInfo, HardwareSnapshot
from gptoss_doctor.types import Backend, CheckStatus

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: CheckStatus
    summary: str
    details: tuple[str, ...] = ()


def _gib(value: int | None) -> str:
    return "unknown" if value is None else f"{value / GIB:.1f} GiB"


def _notes(snap: HardwareSnapshot, *sources: str) -> tuple[str, ...]:
    return tuple(n.message for n in snap.notes if n.source in sources)


def _os_check(snap: HardwareSnapshot) -> Check:
    os_info = snap.os
    parts = [os_info.version or os_info.system]
    if os_info.release:
        parts.append(f"kernel {os_info.release}" if os_info.system == "Linux"
                     else os_info.release)
    if os_info.machine:
        parts.append(os_info.machine)
    details = []
    if os_info.is_wsl:
        details.append("WSL: GPUs need 2-3 GiB more headroom than on native Linux")
    if os_info.container:
        details.append(f"running in a {os_info.container} container")
    details.append(f"Python {os_info.python_version}")
    return Check("os", "ok", ", ".join(parts), tuple(details))


def _cpu_check(snap: HardwareSnapshot) -> Check:
    cpu = snap.cpu
    cores = f"{cpu.cores_physical or '?'} cores / {cpu.cores_logical or '?'} threads"
    # The widest SIMD level that matters to llama.cpp's kernels; an AVX-only CPU is "avx".
    shown = [f for f in cpu.flags if f in ("avx2", "avx512f", "neon")] or \
        [f for f in cpu.flags if f in ("avx", "sse4_2")][:1]
    if not shown and cpu.flags:
        flags = "no SIMD flags"
    elif not shown:
        flags = "SIMD flags not readable"
    else:
        flags = ", ".join(shown)
    x86 = cpu.arch in ("x86_64", "AMD64")
    status: CheckStatus = "warn" if x86 and cpu.flags and not cpu.has_avx2 else "ok"
    details = ("no AVX2: llama.cpp's CPU kernels will be slow",) if status == "warn" else ()
    return Check("cpu", status, f"{cpu.brand or 'unknown CPU'} ({cores}; {flags})", details)


def _ram_check(snap: HardwareSnapshot) -> Check:
    mem = snap.memory
    summary = f"{_gib(mem.ram_total_bytes)} total, {_gib(mem.ram_available_bytes)} available"
    details = _notes(snap, "memory", "cgroup")
    status: CheckStatus = "warn" if mem.ram_total_bytes is None else "ok"
    return Check("ram", status, summary, details)


def _gpu_line(gpu: GpuInfo) -> str:
    if gpu.unified_memory:
        memory = "unified memory"
    else:
        memory = f"{_gib(gpu.vram_total_bytes)} VRAM, {_gib(gpu.vram_free_bytes)} free"
    extras = []
    if gpu.compute_capability:
        extras.append(f"compute {gpu.compute_capability}")
    if gpu.driver_version:
        extras.append(f"driver {gpu.driver_version}")
    if gpu.cuda_driver_version:
        extras.append(f"CUDA {gpu.cuda_driver_version}")
    tail = f" ({', '.join(extras)})" if extras else ""
    return f"{gpu.name}: {memory}{tail}"


def _gpu_check(snap: HardwareSnapshot) -> Check:
    notes = _notes(snap, "nvml", "nvidia-smi", "sysfs", "apple")
    usable = [g for g in snap.gpus if g.vendor in ("nvidia", "apple")
              or (g.vendor == "amd" and g.discrete)]
    if not snap.gpus:
        return Check("gpu", "warn", "no GPU found: models run on the CPU", notes)
    lines = tuple(_gpu_line(g) for g in snap.gpus)
    status: CheckStatus = "ok" if usable else "warn"
    summary = lines[0] if len(lines) == 1 else f"{len(lines)} GPUs"
    details = (lines if len(lines) > 1 else ()) + notes
    if snap.apple is not None:
        details += (f"Metal working set {_gib(snap.apple.gpu_budget_bytes)} "
                    f"(source: {snap.apple.gpu_budget_source})",)
    return Check("gpu", status, summary, details)


def _disk_check(snap: HardwareSnapshot) -> Check:
    if snap.disk is None or snap.disk.free_bytes is None:
        return Check("disk", "warn", "free space unknown", _notes(snap, "disk"))
    free = snap.disk.free_bytes
    small, large = (entry.shape.weights_bytes for entry in CATALOG)
    summary = f"{_gib(free)} free at {snap.disk.path}"
    if free < small * 1.05:
        return Check("disk", "fail", summary, (f"gpt-oss-20b needs {_gib(small)}",))
    if free < large * 1.05:
        return Check("disk", "warn", summary, (f"enough for gpt-oss-20b, not for gpt-oss-120b "
                                               f"({_gib(large)})",))
    return Check("disk", "ok", summary)


def _llama_check(snap: HardwareSnapshot, assessment: Assessment) -> Check:
    build = snap.software.llama_cpp
    notes = _notes(snap, "llama-cpp-python")
    wanted = {v.backend for v in assessment.verdicts if v.engine == "llama.cpp"}
    gpu_wanted = wanted - {"CPU", None}
    if build is None:
        return Check("llama-cpp-python", "warn" if notes else "info",
                     "not installed (`gptoss-doctor install` builds it for this machine)",
                     notes)
    backends = ", ".join(build.backends) or "unknown backends"
    summary = f"{build.version} ({backends})"
    if gpu_wanted and build.gpu_offload is False:
        need = "/".join(sorted(str(b) for b in gpu_wanted))
        return Check("llama-cpp-python", "fail", summary + ": CPU-only build on a GPU machine",
                     (f"it cannot use the {need} GPU; rebuild with "
                      f"`gptoss-doctor install` (CMAKE_ARGS=\"{_flags(gpu_wanted)}\")",))
    return Check("llama-cpp-python", "ok", summary)


def _flags(backends: set[Backend | None]) -> str:
    return " ".join(CMAKE_ARGS[b] for b in sorted(str(b) for b in backends) if b in CMAKE_ARGS)


def _cuda_toolkit_check(snap: HardwareSnapshot, assessment: Assessment) -> Check | None:
    if not any(v.backend == "CUDA" for v in assessment.verdicts):
        return None
    nvcc = snap.software.nvcc_version
    if nvcc:
        return Check("cuda-toolkit", "ok", f"nvcc {nvcc}")
    build = snap.software.llama_cpp
    if build is not None and "CUDA" in build.backends:
        return Check("cuda-toolkit", "info", "nvcc not found (not needed: the installed "
                     "llama-cpp-python already has CUDA)")
    wheel = prebuilt(snap, "CUDA")
    if wheel is not None:
        return Check("cuda-toolkit", "info", "nvcc not found (not needed: `gptoss-doctor "
                     "install` takes llama.cpp's own server as a prebuilt CUDA wheel)",
                     (*wheel.reasons, f"pip install {' '.join(wheel.pip_args)}"))
    return Check("cuda-toolkit", "warn", "nvcc not found: needed to build llama-cpp-python "
                 "with CUDA", ("install the CUDA toolkit (e.g. `sudo apt install "
                               "nvidia-cuda-toolkit` or NVIDIA's cuda-toolkit package)",))


def _mlx_check(snap: HardwareSnapshot) -> Check | None:
    if snap.apple is None:
        return None
    soft = snap.software
    if soft.mlx_lm_version:
        return Check("mlx", "ok", f"mlx {soft.mlx_version or '?'}, mlx-lm {soft.mlx_lm_version}")
    return Check("mlx", "info", "mlx-lm not installed (`gptoss-doctor install --engine mlx`)")


def _lmstudio_check(snap: HardwareSnapshot) -> Check:
    soft = snap.software
    if soft.lmstudio_server_models is not None:
        models = ", ".join(soft.lmstudio_server_models) or "no models loaded"
        return Check("lm-studio", "ok", f"server answering on :1234 ({models})",
                     ("`gptoss-doctor bench speed --endpoint http://127.0.0.1:1234/v1` "
                      "(and `bench tools --endpoint ...`) can measure it",))
    if soft.lmstudio_installed:
        cli = f"; lms at {soft.lmstudio_cli}" if soft.lmstudio_cli else ""
        return Check("lm-studio", "info", f"installed, server not running{cli}")
    return Check("lm-studio", "info", "not installed")


def _weights_check(snap: HardwareSnapshot) -> Check:
    found = snap.software.weights
    if not found:
        return Check("weights", "info", "no gpt-oss weights on disk yet")
    lines = tuple(f"{w.model} ({w.format}, {_gib(w.size_bytes)}, {w.location}"
                  f"{'' if w.complete else ', incomplete'}): {w.path}" for w in found)
    return Check("weights", "ok", f"{len(found)} set(s) found; `install` will reuse them", lines)


def checks(snap: HardwareSnapshot, assessment: Assessment) -> tuple[Check, ...]:
    """Every check line, in display order."""
    optional = (_cuda_toolkit_check(snap, assessment), _mlx_check(snap))
    return (_os_check(snap), _cpu_check(snap), _ram_check(snap), _gpu_check(snap),
            _disk_check(snap), _llama_check(snap, assessment),
            *(c for c in optional if c is not None), _lmstudio_check(snap),
            _weights_check(snap))
