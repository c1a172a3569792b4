"""Apple Silicon: chip, unified memory and the GPU's working-set budget.

Metal lets the GPU wire at most ``recommendedMaxWorkingSetSize`` of unified memory — about
2/3 of RAM up to 36 GB and about 3/4 above on the macOS releases we know of — unless the
user raised it with ``sudo sysctl iogpu.wired_limit_mb=N``. The budget, not total RAM,
decides whether a model fits on the GPU.
"""

from __future__ import annotations

from typing import Any

from gptoss_doctor.probe.model import AppleInfo, Note
from gptoss_doctor.probe.sources import Sources

SYSCTL_KEYS = ("hw.memsize", "machdep.cpu.brand_string", "hw.model", "hw.ncpu",
               "hw.physicalcpu", "iogpu.wired_limit_mb")
GIB = 1024**3
# Apple's default split, as llama.cpp's Metal backend logs recommendedMaxWorkingSetSize:
# 16 GiB -> 10922.67 MiB and 32 GiB -> 21845.34 MiB (2/3); 64 GiB -> 49152 MiB and
# 96 GiB -> 73728 MiB (3/4). Recent macOS gives more on large Macs (107.52 GiB of 128,
# antirez/ds4#893), which only the Metal figure itself (method 1) captures.
SMALL_MAC_LIMIT_BYTES = 36 * GIB
SMALL_MAC_RATIO = 2 / 3
LARGE_MAC_RATIO = 3 / 4


def parse_sysctl(text: str) -> dict[str, str]:
    """``sysctl a b c`` output (``key: value`` lines) -> dict; unknown keys are skipped."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith("sysctl"):
            values[key.strip()] = value.strip()
    return values


def ratio_budget(unified_bytes: int) -> int:
    """The documented default working set for a Mac with ``unified_bytes`` of RAM."""
    ratio = SMALL_MAC_RATIO if unified_bytes <= SMALL_MAC_LIMIT_BYTES else LARGE_MAC_RATIO
    return int(unified_bytes * ratio)


def gpu_budget(
    unified_bytes: int | None, sysctl: dict[str, str], mlx_info: dict[str, Any] | None
) -> tuple[int | None, str | None]:
    """Pick the working-set budget and say where it came from."""
    # Method 1: Metal's own figure, read through mlx in a child process.
    device = (mlx_info or {}).get("device_info") or {}
    metal = device.get("max_recommended_working_set_size")
    if isinstance(metal, int) and metal > 0:
        return metal, "metal"
    # Method 2: a wired limit the user set (0 means "default").
    wired_mb = sysctl.get("iogpu.wired_limit_mb", "")
    if wired_mb.isdigit() and int(wired_mb) > 0:
        return int(wired_mb) * 1024 * 1024, "iogpu.wired_limit_mb"
    # Method 3: Apple's default ratio.
    if unified_bytes is None:
        return None, None
    return ratio_budget(unified_bytes), "ratio"


def read_apple(
    sources: Sources, mlx_info: dict[str, Any] | None
) -> tuple[AppleInfo | None, tuple[Note, ...]]:
    """Apple Silicon facts (``None`` on Intel Macs and everywhere else)."""
    result = sources.run(["sysctl", *SYSCTL_KEYS])
    if result is None:
        return None, (Note("sysctl", "sysctl did not run; Apple facts unknown", "warning"),)
    # sysctl exits non-zero when one key is unknown (iogpu.* before macOS 14) but still
    # prints the others, so the output is parsed whatever the exit code.
    values = parse_sysctl(result.stdout)
    chip = values.get("machdep.cpu.brand_string")
    if not chip or not chip.startswith("Apple"):
        return None, ()
    memsize = values.get("hw.memsize", "")
    unified = int(memsize) if memsize.isdigit() else None
    budget, source = gpu_budget(unified, values, mlx_info)
    notes: list[Note] = []
    if source == "ratio":
        notes.append(Note("apple", "GPU working set estimated from Apple's default ratio "
                          "(install mlx to read Metal's exact figure)"))
    version = sources.run(["sw_vers", "-productVersion"])
    macos = version.stdout.strip() if version and version.returncode == 0 else None
    return (
        AppleInfo(chip=chip, unified_memory_bytes=unified, gpu_budget_bytes=budget,
                  gpu_budget_source=source, macos_version=macos or None,
                  model_identifier=values.get("hw.model")),
        tuple(notes),
    )
