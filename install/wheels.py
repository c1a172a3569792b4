"""Which prebuilt llama.cpp wheel fits this machine: xllamacpp, llama.cpp's own server (pure).

llama-cpp-python compiles llama.cpp on install (minutes; CUDA needs the toolkit's ``nvcc``).
xllamacpp ships it built: the CPU and macOS (Metal) wheels on PyPI, CUDA 12.8 / 13.2, ROCm
and Vulkan wheels on its own package index (docs/design.md, "llama.cpp's own server").
A CUDA wheel runs where the driver supports at least its toolkit version (a newer driver runs
an older toolkit's code), and on the GPU architectures it was built for: the 13.2 wheel starts
at compute capability 7.5, the 12.8 wheel carries PTX from 5.0 up; datacenter GPUs without a
native build (A100, H100) JIT-compile that PTX once on first launch.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptoss_doctor.probe.model import GpuInfo, HardwareSnapshot

PACKAGE = "xllamacpp==2026.10.11549"
INDEX = "https://xorbitsai.github.io/xllamacpp/whl"
# (wheel, CUDA toolkit it was built with, lowest compute capability it runs on)
CUDA_WHEELS = (("cu132", (13, 2), (7, 5)), ("cu128", (12, 8), (5, 0)))
NATIVE_SASS = ((7, 5), (8, 6), (8, 9), (12, 0), (12, 1))  # built natively in the CUDA wheels
ROCM_WHEEL = "rocm-7.2.4"  # a superset of the 6.4.1 wheel's GPUs; runs on any ROCm 7.x


@dataclass(frozen=True, slots=True)
class PrebuiltWheel:
    """The pip install that brings llama.cpp without compiling, and why this one."""

    backend: str
    index_url: str | None  # None: PyPI
    reasons: tuple[str, ...]

    @property
    def pip_args(self) -> tuple[str, ...]:
        index = ("--index-url", self.index_url) if self.index_url else ()
        return (PACKAGE, *index)


def _version(text: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in (text or "").split(".")[:2]) or None
    except ValueError:
        return None


def _cuda(gpus: list[GpuInfo]) -> PrebuiltWheel | None:
    driver = min((v for v in (_version(g.cuda_driver_version) for g in gpus) if v), default=None)
    capability = min((v for v in (_version(g.compute_capability) for g in gpus) if v),
                     default=None)
    if driver is None:
        return None
    for name, toolkit, lowest in CUDA_WHEELS:
        if driver < toolkit or (capability is not None and capability < lowest):
            continue
        shown = ".".join(map(str, toolkit))
        reasons = [f"prebuilt CUDA {shown} wheel: the driver supports CUDA "
                   f"{'.'.join(map(str, driver))}, no CUDA toolkit (nvcc) needed"]
        if capability is not None and capability not in NATIVE_SASS:
            reasons.append(f"compute capability {'.'.join(map(str, capability))} has no "
                           "native build in the wheel: its kernels are JIT-compiled once on "
                           "first launch")
        return PrebuiltWheel("CUDA", f"{INDEX}/{name}", tuple(reasons))
    return None


def prebuilt(snap: HardwareSnapshot, backend: str) -> PrebuiltWheel | None:
    """The xllamacpp wheel for ``backend`` on this machine, or None when none fits."""
    if backend == "CUDA":
        return _cuda([g for g in snap.gpus if g.vendor == "nvidia"])
    if backend == "ROCm":
        return PrebuiltWheel("ROCm", f"{INDEX}/{ROCM_WHEEL}", (
            "prebuilt ROCm 7.2.4 wheel (RDNA2 to RDNA4, MI350): needs a ROCm 7.x runtime",))
    if backend == "Vulkan":
        return PrebuiltWheel("Vulkan", f"{INDEX}/vulkan", (
            "prebuilt Vulkan wheel: needs the GPU's Vulkan driver",))
    if backend in ("CPU", "Metal"):
        why = ("the macOS wheel on PyPI is built for this CPU and Metal" if backend == "Metal"
               else "the CPU wheel on PyPI (built without -march=native: a native "
               "llama-cpp-python build can be faster on CPUs with AVX-512)")
        return PrebuiltWheel(backend, None, (why,))
    return None
