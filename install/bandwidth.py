"""Peak memory bandwidth of known GPUs and chips, for the generation-speed roofline.

Values are the vendors' published peak figures in GB/s (10^9 bytes/s). Names are matched
as case-insensitive substrings, longest first, so "RTX 4060 Ti" wins over "RTX 4060"; a
laptop part ("Laptop", "Mobile", "Max-Q" in its name) matches only laptop entries, never the
desktop card of the same number (an RTX 5090 Laptop GPU has half the desktop card's bus).
Where one name covers several configurations the lower figure is used and said so. Apple
chips whose binned and full dies differ are told apart by GPU cores or memory size
(``lookup_apple``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

GB = 1000**3

GPU_BANDWIDTH_GBPS: dict[str, float] = {
    # NVIDIA datacenter
    "H200": 4800, "H100 NVL": 3900, "H100 80GB HBM3": 3350, "H100 SXM": 3350,
    "H100 PCIe": 2000, "H100": 2000, "GH200": 4000, "B200": 8000, "A100-SXM4-80GB": 2039,
    "A100 80GB PCIe": 1935, "A100-SXM4-40GB": 1555, "A100-PCIE-40GB": 1555, "A100": 1555,
    "L40S": 864, "L40": 864, "L4": 300, "A10G": 600, "A10": 600, "T4": 320, "V100": 900,
    "H20": 4000, "A40": 696, "A30": 933, "P40": 347, "P100": 732,
    "RTX 6000 Ada": 960, "RTX A6000": 768, "RTX PRO 6000": 1792, "GB10": 273,
    "RTX PRO 5000 Blackwell": 1344, "RTX PRO 4500 Blackwell": 896,
    "RTX PRO 4000 Blackwell": 672, "RTX 5000 Ada": 576, "RTX 4500 Ada": 432,
    "RTX 4000 Ada": 360, "RTX 2000 Ada": 224, "RTX A5000": 768, "RTX A4500": 640,
    "RTX A4000": 448, "RTX A2000": 288,
    "Jetson AGX Orin": 204.8, "Orin NX": 102.4, "Orin Nano": 68, "Jetson AGX Thor": 273,
    # NVIDIA GeForce desktop
    "RTX 5090": 1792, "RTX 5080": 960, "RTX 5070 Ti": 896, "RTX 5070": 672,
    "RTX 5060 Ti": 448, "RTX 5060": 448, "RTX 4090": 1008, "RTX 4080 SUPER": 736,
    "RTX 4080": 717, "RTX 4070 Ti SUPER": 672, "RTX 4070 Ti": 504, "RTX 4070 SUPER": 504,
    "RTX 4070": 504, "RTX 4060 Ti": 288, "RTX 4060": 272, "RTX 3090 Ti": 1008,
    "RTX 3090": 936, "RTX 3080 Ti": 912, "RTX 3080": 760, "RTX 3070 Ti": 608,
    "RTX 3070": 448, "RTX 3060 Ti": 448, "RTX 3060": 360, "RTX 3050": 224,
    "RTX 2080 Ti": 616, "RTX 2080 SUPER": 496, "RTX 2080": 448, "RTX 2070 SUPER": 448,
    "RTX 2070": 448, "RTX 2060 SUPER": 448, "RTX 2060": 336, "GTX 1080 Ti": 484,
    "GTX 1080": 320, "GTX 1070 Ti": 256, "GTX 1070": 256, "GTX 1660 SUPER": 336,
    "GTX 1660 Ti": 288, "GTX 1660": 192, "GTX 1650": 128,
    # NVIDIA GeForce laptop (matched only by laptop names)
    "RTX 5090 Laptop": 896, "RTX 4090 Laptop": 576, "RTX 4080 Laptop": 432,
    "RTX 4070 Laptop": 256, "RTX 4060 Laptop": 256, "RTX 4050 Laptop": 192,
    "RTX 3080 Ti Laptop": 512, "RTX 3080 Laptop": 448, "RTX 3070 Laptop": 448,
    "RTX 3060 Laptop": 336,
    # AMD discrete and datacenter
    "MI300X": 5300, "MI325X": 6000, "MI250X": 3277, "MI250": 3277, "MI210": 1638,
    "MI100": 1229, "MI60": 1024, "MI50": 1024, "Radeon VII": 1024,
    "RX 7900 XTX": 960, "RX 7900 XT": 800, "RX 7900 GRE": 576, "RX 7800 XT": 624,
    "RX 7700 XT": 432, "RX 7600 XT": 288, "RX 7600": 288, "RX 6950 XT": 576,
    "RX 6900 XT": 512, "RX 6800 XT": 512, "RX 6800": 512, "RX 6750 XT": 432,
    "RX 6700 XT": 384, "RX 6600 XT": 256, "RX 6600": 224, "RX 9070 XT": 640,
    "RX 9070": 640, "Radeon AI PRO R9700": 640, "RX 9060 XT": 320, "Navi 21": 512, "Navi 31": 800,
    "Radeon PRO W7900": 864, "Radeon PRO W7800": 576, "Radeon PRO W6800": 512,
    # AMD integrated (unified memory; the lower of the memory types each ships with)
    "Radeon 8060S": 256, "Radeon 8050S": 256, "Radeon 890M": 120, "Radeon 880M": 120,
    "Radeon 780M": 89.6, "Radeon 760M": 89.6, "Radeon 680M": 76.8,
    # Intel
    "Arc A770": 560, "Arc A750": 512, "Arc A580": 512, "Arc A380": 186, "Arc B580": 456,
    "Arc B570": 380,
    # Intel, the smaller and workstation cards: memory bus x data rate as Intel specifies them
    # (Intel's own pages are not in the searchable corpus; each figure is read from the page
    # named). 4 GB, 64-bit at 15.5 Gbps: fpsbench.com/compare/gpu/
    # intel-arc-a310-vs-intel-hd-graphics-p4600
    "Arc A310": 124,
    # 6 GB, 96-bit at 16 Gbps, both cards: cpu-gpu.alldbin.com/graphics-card-comparison/
    # Iris-Graphics-540-and-Arc-Pro-A40-comparison.html and .../
    # Iris-Xe-Graphics-MAX-and-Arc-Pro-A50-comparison.html. The kernel gives A40 and A50 one
    # PCI id (probe.gpu_sysfs: "Arc Pro A40/A50"), which matches "Arc Pro A40", not NVIDIA's A40.
    "Arc Pro A40": 192, "Arc Pro A50": 192,
    # 12 GB, 192-bit at 16 Gbps: topcpu.net/en/gpu-c/arc-pro-a60-vs-radeon-rx-560
    "Arc Pro A60": 384,
    # 16 GB, 128-bit at 14 Gbps: technical.city/en/video/Iris-Plus-Graphics-650-vs-Arc-Pro-B50
    "Arc Pro B50": 224,
    # 24 GB, 192-bit at 19 Gbps (the B580's bus and speed): technical.city/en/video/
    # Graphics-4-Core-iGPU-Arc-vs-Arc-Pro-B60-Dual (456 GB/s per GPU)
    "Arc Pro B60": 456,
    # Apple Silicon (unified memory; Max chips: see lookup_apple)
    "Apple M1 Ultra": 800, "Apple M1 Max": 400, "Apple M1 Pro": 200, "Apple M1": 68,
    "Apple M2 Ultra": 800, "Apple M2 Max": 400, "Apple M2 Pro": 200, "Apple M2": 100,
    "Apple M3 Ultra": 819, "Apple M3 Max": 300, "Apple M3 Pro": 150, "Apple M3": 100,
    "Apple M4 Max": 410, "Apple M4 Pro": 273, "Apple M4": 120, "Apple M5": 153,
    "Apple M5 Max": 614,  # the 40-core GPU configuration (Apple, March 2026)
}
# One name (and PCI id), two memory sizes at different data rates: (the smaller variant's
# largest memory size in bytes, its figure). An 8 GB Arc A770 runs its 256-bit GDDR6 at
# 16 Gbps, 512 GB/s; the 16 GB card (the table's 560) at 17.5 Gbps. ``lookup_gpu`` picks the
# smaller one only when it is given the card's memory size; without it, the table's figure.
MEMORY_VARIANTS: dict[str, tuple[int, float]] = {"Arc A770": (12 * 1024**3, 512)}
MOBILE_MARKERS = ("laptop", "mobile", "max-q")
# A key never stands for a bigger tier of the same name: "Apple M5" is not an "Apple M5 Max".
TIER_WORDS = ("pro", "max", "ultra")
# Apple chips sold as a binned and a full die: (GPU cores of the full die, memory sizes in GB
# that only the full die ships with, its bandwidth). M3 Max: 30-core 300 GB/s with 36 or
# 96 GB, 40-core 400 GB/s with 48, 64 or 128 GB; M4 Max: 32-core 410 GB/s with 36 GB,
# 40-core 546 GB/s with 48, 64 or 128 GB.
APPLE_FULL_DIE: dict[str, tuple[int, tuple[int, ...], float]] = {
    "Apple M3 Max": (40, (48, 64, 128), 400),
    "Apple M4 Max": (40, (48, 64, 128), 546),
}
# Host RAM when nothing better is known: dual-channel DDR4-3200 (2 x 25.6 GB/s).
DEFAULT_CPU_BANDWIDTH_GBPS = 51.2
DDR3_CPU_BANDWIDTH_GBPS = 25.6


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """A bandwidth figure and where it came from."""

    bytes_per_s: float
    source: str  # "table: RTX 4090" | "NVML bus width x memory clock" | "assumed ..."
    measured: bool = False  # achieved here (probe.membw), not a peak: no efficiency applies


def match(name: str, keys: Iterable[str]) -> str | None:
    """The key that is the longest case-insensitive substring of ``name``; laptop names
    match only laptop keys and desktop names only desktop keys."""
    lowered = " ".join(name.lower().replace("(r)", "").replace("(tm)", "").split())
    mobile = any(marker in lowered for marker in MOBILE_MARKERS)
    matches = [key for key in keys if key.lower() in lowered
               and ("laptop" in key.lower()) == mobile and not _bigger_tier(key, lowered)]
    return max(matches, key=len) if matches else None


def _bigger_tier(key: str, lowered: str) -> bool:
    rest = lowered.split(key.lower(), 1)[1].split()
    return bool(rest) and rest[0] in TIER_WORDS


# Parts whose GPU reads the same memory as the CPU, whatever their carve-out is set to.
INTEGRATED = ("Radeon 8060S", "Radeon 8050S", "Radeon 890M", "Radeon 880M", "Radeon 780M",
              "Radeon 760M", "Radeon 680M", "GB10", "Jetson AGX Orin", "Orin NX", "Orin Nano",
              "Jetson AGX Thor")


def integrated(name: str) -> bool:
    """Whether ``name`` is a GPU that shares system memory (an APU, GB10, Jetson)."""
    return match(name, INTEGRATED) is not None


def lookup_gpu(name: str, memory_bytes: int | None = None) -> Bandwidth | None:
    """The published figure of the table entry that ``match`` picks for ``name``; with the
    card's memory size, the figure of its smaller variant where ``MEMORY_VARIANTS`` has one."""
    key = match(name, GPU_BANDWIDTH_GBPS)
    if key is None:
        return None
    variant = MEMORY_VARIANTS.get(key)
    if variant is not None and memory_bytes and 0 < memory_bytes <= variant[0]:
        return Bandwidth(variant[1] * GB, f"published figure for {key} "
                         f"({round(memory_bytes / 1024**3)} GB card)")
    return Bandwidth(GPU_BANDWIDTH_GBPS[key] * GB, f"published figure for {key}")


def lookup_apple(chip: str, gpu_cores: int | None, memory_bytes: int | None
                 ) -> Bandwidth | None:
    """An Apple chip's figure, telling binned from full Max dies by GPU cores or memory."""
    key = match(chip, GPU_BANDWIDTH_GBPS)
    if key is None:
        return None
    full = APPLE_FULL_DIE.get(key)
    if full is not None:
        cores, sizes, gbps = full
        memory_gb = round(memory_bytes / 1024**3) if memory_bytes else None
        if gpu_cores == cores or (gpu_cores is None and memory_gb in sizes):
            how = f"{gpu_cores}-core GPU" if gpu_cores else f"{memory_gb} GB, full die only"
            return Bandwidth(gbps * GB, f"published figure for {key} ({how})")
        if gpu_cores is None and memory_gb is None:
            return Bandwidth(GPU_BANDWIDTH_GBPS[key] * GB,
                             f"published figure for {key} (binned die assumed: GPU cores "
                             "and memory size unknown)")
    return Bandwidth(GPU_BANDWIDTH_GBPS[key] * GB, f"published figure for {key}")


def from_bus(bus_width_bits: int | None, memory_clock_mhz: int | None,
             how: str = "NVML's bus width and memory clock") -> Bandwidth | None:
    """NVML's memory bus width and max memory clock: width/8 x clock x 2 (double data rate).

    A lower bound for GDDR6X/GDDR7, whose signalling moves more than two bits per clock.
    amdgpu's figures are stored in the same convention (``probe.gpu_sysfs``).
    """
    if not bus_width_bits or not memory_clock_mhz:
        return None
    return Bandwidth(bus_width_bits / 8 * memory_clock_mhz * 1e6 * 2, f"estimated from {how}")


AMDGPU_BUS = ("amdgpu's memory clock (pp_dpm_mclk) and a bus width assumed from the card's "
              "family and VRAM size")


# Host RAM by CPU platform, when the DIMM configuration cannot be read (it needs root): the
# platform's channels x top rated transfer rate x 8 bytes, as the vendors specify them. Fewer
# DIMMs than channels give less; the source string says it is the platform's figure.
PLATFORMS: tuple[tuple[str, float, str], ...] = (
    (r"EPYC 9\w\w5\b", 576.0, "12-channel DDR5-6000 (EPYC 9005)"),
    (r"EPYC 9\w\w4\b", 460.8, "12-channel DDR5-4800 (EPYC 9004)"),
    (r"EPYC 8\w\w4\b", 230.4, "6-channel DDR5-4800 (EPYC 8004)"),
    (r"EPYC 7\w\w[23]\b", 204.8, "8-channel DDR4-3200 (EPYC 7002/7003)"),
    (r"Threadripper PRO 7\d\d\dWX|Threadripper PRO 9\d\d\dWX", 332.8,
     "8-channel DDR5-5200 (Threadripper PRO 7000/9000)"),
    (r"Threadripper (7|9)\d\d\dX", 166.4, "4-channel DDR5-5200 (Threadripper 7000/9000)"),
    (r"Threadripper PRO [35]\d\d\dWX", 204.8, "8-channel DDR4-3200 (Threadripper PRO)"),
    (r"Xeon\(R\) w[79]-3\d", 307.2, "8-channel DDR5-4800 (Xeon W-3400)"),
    (r"Ryzen AI MAX", 256.0, "256-bit LPDDR5X-8000 (Ryzen AI Max)"),
    (r"Ryzen \d [79]\d\d0(X3D|X|F)?\b", 83.2,
     "dual-channel DDR5-5200 (Ryzen 7000/9000 desktop)"),
    (r"Core\(TM\) Ultra [579] 2\d\dV", 136.5, "LPDDR5X-8533 (Core Ultra 200V)"),
    (r"Core\(TM\) Ultra [579] 2\d\d(K|KF|F)?\b", 102.4,
     "dual-channel DDR5-6400 (Core Ultra 200S)"),
)


def host_for_cpu(brand: str | None, avx2: bool = True) -> Bandwidth:
    """The host RAM figure of ``brand``'s platform, else the generic assumption."""
    for pattern, gbps, what in PLATFORMS:
        if brand and re.search(pattern, brand, re.IGNORECASE):
            return Bandwidth(gbps * GB, f"platform figure: {what}; the DIMMs actually fitted "
                             "are not readable without root")
    return cpu_default(avx2)


def cpu_default(avx2: bool = True) -> Bandwidth:
    """Host RAM when nothing better is known. x86 CPUs without AVX2 predate DDR4 platforms
    (Intel before Haswell, AMD before Excavator): dual-channel DDR3-1600 is assumed there."""
    if not avx2:
        return Bandwidth(DDR3_CPU_BANDWIDTH_GBPS * GB,
                         "assumed dual-channel DDR3-1600 for a CPU without AVX2 (the real "
                         "figure is not readable)")
    return Bandwidth(DEFAULT_CPU_BANDWIDTH_GBPS * GB,
                     "assumed dual-channel DDR4-3200 (the real figure is not readable)")
