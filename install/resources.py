"""What a snapshot offers a model: memory budgets, backend and bandwidth, with reasons.

Margins follow llama.cpp's own ``--fit`` (1 GiB kept free per device) and docs/design.md,
"Memory totals and margins" (Windows/WSL drivers need 2-3 GiB more headroom on the GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gptoss_doctor.install import bandwidth, compute
from gptoss_doctor.probe.apple import ratio_budget
from gptoss_doctor.probe.model import AppleInfo, GpuInfo, HardwareSnapshot
from gptoss_doctor.types import Backend

GIB = 1024**3
GPU_MARGIN_BYTES = 1 * GIB
GPU_MARGIN_WSL_BYTES = 5 * GIB // 2
RAM_MARGIN_BYTES = 1 * GIB
# The OS and a desktop keep about 2 GiB whatever else runs; verdicts are made against installed
# RAM less this reserve and the margin, so they do not depend on which programs happen to be
# open. What is free right now is compared separately and only warned about.
OS_RESERVE_BYTES = 2 * GIB
# macOS keeps a few GiB of unified memory for itself and the window server whatever
# "available" says at the moment of probing, so Macs are budgeted from total RAM less the
# larger of 3 GiB and a tenth of it: 20b runs on a 16 GB Mac with the working-set limit
# raised, while llama.cpp's gpt-oss guide puts 120b beyond a 64 GB one (docs/design.md,
# "Apple working set").
MACOS_RESERVE_BYTES = 3 * GIB
MACOS_RESERVE_SHARE = 10
DATACENTER_MARKERS = ("H100", "H200", "GH200", "B200", "A100", "L40S", "MI300", "MI250")


@dataclass(frozen=True, slots=True)
class Device:
    """One discrete GPU's own budget and figures, for single-card and split plans."""

    name: str
    budget_bytes: int
    bandwidth: bandwidth.Bandwidth | None
    flops: float | None


@dataclass(frozen=True, slots=True)
class Resources:
    """The memory and bandwidth a plan may use on one machine."""

    backend: Backend
    gpu_names: tuple[str, ...]
    gpu_budget_bytes: int | None  # None: no usable GPU
    ram_budget_bytes: int | None
    ram_free_now_bytes: int | None  # available RAM minus the margin, at probe time
    unified: bool  # the GPU draws on the same RAM as the CPU
    gpu_bandwidth: bandwidth.Bandwidth | None
    cpu_bandwidth: bandwidth.Bandwidth
    apple_budget_bytes: int | None  # Metal working set, for the MLX rule
    datacenter: bool
    cpu_cores: int | None
    reasons: tuple[str, ...]
    gpu_flops: float | None = None  # dense FP16 FLOPS of the device that does the work
    cpu_flops: float | None = None
    cpu_avx2: bool = True  # False only for an x86 CPU known to lack AVX2
    gtt_limited: bool = False  # an AMD APU held to the kernel's default GTT share of RAM
    devices: tuple[Device, ...] = ()  # discrete GPUs, when there are several
    gpu_vendor: str | None = None  # "nvidia" | "amd" | "intel" | "apple" (None: no GPU)


def _gib(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


def _vram(gpus: list[GpuInfo]) -> int:
    return sum(g.vram_free_bytes or g.vram_total_bytes or 0 for g in gpus)


GpuGroup = tuple[Backend, list[GpuInfo]]


def gpu_groups(snap: HardwareSnapshot) -> list[GpuGroup]:
    """The GPUs one llama.cpp build could drive, one group per vendor, the larger memory
    first (on a tie NVIDIA, then AMD, then Intel); else an AMD APU, Apple's GPU or none."""
    nvidia = [g for g in snap.gpus if g.vendor == "nvidia"]
    amd = [g for g in snap.gpus if g.vendor == "amd" and g.discrete]
    # Intel Arc cards run llama.cpp's Vulkan build (its SYCL build needs oneAPI). Mainline
    # Linux drivers publish no VRAM size: such a card cannot be planned (the probe says why).
    intel = [g for g in snap.gpus if g.vendor == "intel" and g.discrete
             and g.vram_total_bytes is not None]
    # llama.cpp's Windows builds for AMD are Vulkan ones (ROCm/HIP on Windows covers few
    # cards and needs the HIP SDK).
    amd_backend: Backend = "Vulkan" if snap.os.system == "Windows" else "ROCm"
    vendors: tuple[GpuGroup, ...] = (("CUDA", nvidia), (amd_backend, amd), ("Vulkan", intel))
    found = [(b, gpus) for b, gpus in vendors if gpus]
    # An AMD APU whose bandwidth is known (Strix Halo, 890M, 780M...) runs llama.cpp's Vulkan
    # build from GTT, i.e. system RAM; a small iGPU (Raphael's 2 CUs) is not worth planning.
    apus = [g for g in snap.gpus if g.vendor == "amd" and g.unified_memory
            and bandwidth.lookup_gpu(g.name) is not None]
    if found:
        ranked = sorted(found, key=lambda f: (-_vram(f[1]), found.index(f)))
        return ranked + ([("Vulkan", apus[:1])] if apus else [])
    if apus:
        return [("Vulkan", apus[:1])]
    if snap.apple is not None:
        return [("Metal", [g for g in snap.gpus if g.vendor == "apple"])]
    return [("CPU", [])]


def _ram_budget(snap: HardwareSnapshot) -> int | None:
    if snap.apple is not None and snap.apple.unified_memory_bytes is not None:
        unified = snap.apple.unified_memory_bytes
        return max(0, unified - max(MACOS_RESERVE_BYTES, unified // MACOS_RESERVE_SHARE))
    total = snap.memory.usable_total_bytes
    return None if total is None else max(0, total - OS_RESERVE_BYTES - RAM_MARGIN_BYTES)


def _ram_free_now(snap: HardwareSnapshot) -> int | None:
    available = snap.memory.ram_available_bytes
    if available is None or snap.apple is not None:
        return None  # macOS reports compressible memory as used; its figure misleads
    if snap.memory.cgroup_limit_bytes is not None:
        available = min(available, snap.memory.cgroup_limit_bytes)
    return max(0, available - RAM_MARGIN_BYTES)


@dataclass(frozen=True, slots=True)
class _GpuSide:
    """What the GPUs give the plan: a budget, memory kind, speed figures, devices."""

    budget: int | None = None
    unified: bool = False
    bandwidth: bandwidth.Bandwidth | None = None
    apple_budget: int | None = None
    flops: float | None = None
    gtt_limited: bool = False
    devices: tuple[Device, ...] = ()


def resources(snap: HardwareSnapshot, group: GpuGroup | None = None) -> Resources:
    """Derive budgets from the snapshot for one GPU group (default: the first of
    ``gpu_groups``); every figure carries a reason."""
    reasons: list[str] = []
    backend, gpus = group or gpu_groups(snap)[0]
    ram = _ram_budget(snap)
    if ram is not None and snap.apple is not None:
        reasons.append(f"RAM budget {_gib(ram)} (unified memory minus what macOS keeps: "
                       "3 GiB or a tenth, whichever is more)")
    elif ram is not None:
        reasons.append(f"host RAM budget {_gib(ram)} (installed RAM minus 2 GiB for the OS and "
                       "a 1 GiB margin)")
    if backend == "Metal" and snap.apple is not None:
        gpu = _apple_gpu(snap.apple, reasons)
    elif gpus:
        gpu = _discrete_or_shared(snap, gpus, ram, reasons)
    else:
        gpu = _GpuSide()
    avx2 = not (snap.cpu.arch in ("x86_64", "AMD64") and snap.cpu.flags
                and not snap.cpu.has_avx2)
    cpu_bw = _host_bandwidth(snap, avx2)
    if gpu.unified and gpu.bandwidth is not None:
        cpu_bw = gpu.bandwidth  # one memory system for both
    cores = snap.cpu.cores_physical or snap.cpu.cores_logical
    datacenter = any(marker in g.name for g in gpus for marker in DATACENTER_MARKERS)
    return Resources(backend=backend, gpu_names=tuple(g.name for g in gpus),
                     gpu_budget_bytes=gpu.budget, ram_budget_bytes=ram,
                     ram_free_now_bytes=_ram_free_now(snap), unified=gpu.unified,
                     gpu_bandwidth=gpu.bandwidth, cpu_bandwidth=cpu_bw,
                     apple_budget_bytes=gpu.apple_budget, datacenter=datacenter,
                     cpu_cores=cores, reasons=tuple(reasons), gpu_flops=gpu.flops,
                     cpu_flops=compute.cpu_flops(cores, snap.cpu.flags),
                     cpu_avx2=avx2,
                     gtt_limited=gpu.gtt_limited, devices=gpu.devices,
                     gpu_vendor=gpus[0].vendor if gpus else
                     ("apple" if backend == "Metal" else None))


def _host_bandwidth(snap: HardwareSnapshot, avx2: bool) -> bandwidth.Bandwidth:
    """The memory modules' figure or a measurement when the snapshot has one, else the
    table's figure for this CPU."""
    if snap.memory.host_bandwidth_bytes_per_s:  # the modules fitted, or measured
        return bandwidth.Bandwidth(snap.memory.host_bandwidth_bytes_per_s,
                                   snap.memory.host_bandwidth_source or "host memory",
                                   measured=snap.memory.host_bandwidth_measured)
    return bandwidth.host_for_cpu(snap.cpu.brand, avx2)


def _apple_gpu(apple: AppleInfo, reasons: list[str]) -> _GpuSide:
    """Apple silicon: the Metal working set is the budget, unified memory the bandwidth."""
    apple_budget = apple.gpu_budget_bytes
    if apple_budget is None and apple.unified_memory_bytes is not None:
        # No figure read: Apple's default share of unified memory, said as such.
        apple_budget = ratio_budget(apple.unified_memory_bytes)
        reasons.append("Metal working set not readable: Apple's default share of "
                       "unified memory assumed")
    budget = None
    if apple_budget is not None:
        budget = max(0, apple_budget - GPU_MARGIN_BYTES)
        reasons.append(f"Metal working set {_gib(apple_budget)} "
                       f"(source: {apple.gpu_budget_source}), minus 1 GiB margin")
    return _GpuSide(budget=budget, unified=True, apple_budget=apple_budget,
                    bandwidth=bandwidth.lookup_apple(apple.chip or "", apple.gpu_cores,
                                                     apple.unified_memory_bytes),
                    flops=compute.lookup_gpu_flops(apple.chip or ""))


def _discrete_or_shared(snap: HardwareSnapshot, gpus: list[GpuInfo], ram: int | None,
                        reasons: list[str]) -> _GpuSide:
    """NVIDIA/AMD/Intel GPUs: an APU's GTT share, a GB10's host RAM, or free VRAM."""
    windows_like = snap.os.is_wsl or snap.os.system == "Windows"
    margin = GPU_MARGIN_WSL_BYTES if windows_like else GPU_MARGIN_BYTES
    unified = all(g.unified_memory or bandwidth.integrated(g.name) for g in gpus)
    gtt_limited = False
    per_gpu: list[int | None] = []
    if unified and gpus[0].vendor == "amd" and gpus[0].vram_total_bytes is None:
        # amdgpu maps at most the kernel's TTM limit of GTT (half of RAM by default).
        total = snap.memory.usable_total_bytes
        budget = None if ram is None or total is None else min(ram, total // 2)
        gtt_limited = budget is not None and ram is not None and budget < ram
        reasons.append(f"{gpus[0].name} is an APU: it allocates from RAM through GTT, "
                       "by default at most half of RAM"
                       + (f" ({_gib(budget)})" if budget is not None else ""))
    elif unified:
        # GB10/Jetson: the GPU allocates from host RAM; RAM is the budget.
        budget = ram
        reasons.append(f"{gpus[0].name} shares host RAM: GPU budget = RAM budget")
    else:
        per_gpu = [g.vram_free_bytes if g.vram_free_bytes is not None
                   else g.vram_total_bytes for g in gpus]
        budget = _vram_budget(gpus, per_gpu, margin, windows_like, reasons)
    figures = [bandwidth.lookup_gpu(g.name, g.vram_total_bytes)
               or bandwidth.from_bus(g.memory_bus_width_bits, g.memory_clock_max_mhz,
                                     *((bandwidth.AMDGPU_BUS,) if g.source == "sysfs"
                                       else ()))
               for g in gpus]
    known = [f for f in figures if f is not None]
    flops = [compute.lookup_gpu_flops(g.name) for g in gpus]
    devices: tuple[Device, ...] = ()
    if len(gpus) > 1 and not unified:
        devices = tuple(
            Device(g.name, max(0, free - margin), bw, fl)
            for g, free, bw, fl in zip(gpus, per_gpu, figures, flops, strict=True)
            if free is not None)
    return _GpuSide(budget=budget, unified=unified, gtt_limited=gtt_limited, devices=devices,
                    bandwidth=min(known, key=lambda f: f.bytes_per_s) if known else None,
                    flops=min((f for f in flops if f), default=None))


def _vram_budget(gpus: list[GpuInfo], per_gpu: list[int | None], margin: int,
                 windows_like: bool, reasons: list[str]) -> int | None:
    """Free VRAM minus a margin per device, summed; None when no card reports memory."""
    unknown = [g.name for g, free in zip(gpus, per_gpu, strict=True) if free is None]
    if unknown:
        reasons.append(f"VRAM of {', '.join(unknown)} not readable: no GPU plan can be "
                       "checked for it (the driver reports no memory figures)")
    known_free = [free for free in per_gpu if free is not None]
    if not known_free:
        return None
    budget = sum(max(0, free - margin) for free in known_free)
    split = f" across {len(gpus)} GPUs (llama.cpp splits layers)" if len(gpus) > 1 else ""
    reasons.append(f"GPU budget {_gib(budget)}: free VRAM minus {_gib(margin)} per device"
                   f"{split}" + (" (WSL/Windows drivers need extra headroom)" if windows_like
                                 else ""))
    return budget


def fastest_first(devices: tuple[Device, ...]) -> list[Device]:
    """Devices by memory bandwidth, fastest first (unknown last)."""
    return sorted(devices, key=lambda d: d.bandwidth.bytes_per_s if d.bandwidth else 0.0,
                  reverse=True)


def split(res: Resources) -> Resources:
    """Several GPUs sharing the layers in proportion to their free memory: a token passes
    through each in turn, so the effective bandwidth is 1 / sum(share / bandwidth)."""
    total = sum(d.budget_bytes for d in res.devices)
    if total <= 0 or any(d.bandwidth is None for d in res.devices):
        return res
    seconds_per_byte = sum(d.budget_bytes / total / d.bandwidth.bytes_per_s
                           for d in res.devices if d.bandwidth is not None)
    names = " + ".join(d.name for d in res.devices)
    return replace(res, gpu_bandwidth=bandwidth.Bandwidth(
        1 / seconds_per_byte, f"{names}, layers split in proportion to free memory"))
