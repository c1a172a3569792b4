"""The host CPU: brand, cores and the SIMD flags llama.cpp's CPU kernels depend on.

Method 1 parses ``/proc/cpuinfo`` (Linux, instant); method 2 reads ``sysctl`` values
(macOS); method 3 asks py-cpuinfo (Windows and the rest).
"""

from __future__ import annotations

from typing import Any

from gptoss_doctor.probe.model import CpuInfo

# Flags that change llama.cpp's CPU speed materially (ggml's feature list).
INTERESTING_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni",
                     "amx_int8", "neon", "asimd", "sve", "i8mm", "dotprod")


def _keep(flags: set[str]) -> tuple[str, ...]:
    # ARM kernels call NEON "asimd" and dot-product "asimddp"; normalise to ggml's names.
    if "asimd" in flags:
        flags.add("neon")
    if "asimddp" in flags:
        flags.add("dotprod")
    return tuple(flag for flag in INTERESTING_FLAGS if flag in flags)


def parse_proc_cpuinfo(text: str) -> tuple[str | None, tuple[str, ...]]:
    """``/proc/cpuinfo`` -> (brand, interesting flags); both x86 and ARM layouts."""
    brand: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware") and brand is None and value.strip():
            brand = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return brand, _keep(flags)


def from_cpuinfo_dict(info: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """py-cpuinfo's ``get_cpu_info()`` dict -> (brand, interesting flags)."""
    brand = info.get("brand_raw") or info.get("brand")
    flags = {str(flag).lower() for flag in info.get("flags", [])}
    return (str(brand) if brand else None), _keep(flags)


def build_cpu(
    brand: str | None,
    flags: tuple[str, ...],
    arch: str | None,
    cores: tuple[int | None, int | None],
) -> CpuInfo:
    """Assemble the frozen ``CpuInfo``; Apple Silicon always has NEON."""
    if arch in ("arm64", "aarch64") and "neon" not in flags and brand and "Apple" in brand:
        flags = (*flags, "neon")
    return CpuInfo(brand=brand, arch=arch, cores_physical=cores[0], cores_logical=cores[1],
                   flags=flags)
