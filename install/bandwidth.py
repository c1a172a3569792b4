"""Peak memory bandwidth of known GPUs and chips, for the generation-speed roofline.

Values are the vendors' published peak figures in GB/s (10^9 bytes/s). Names are matched
as case-insensitive substrings, longest first, so "RTX 4060 Ti" wins over "RTX 4060".
Where one name covers several configurations the lower figure is used and said so.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1000**3

GPU_BANDWIDTH_GBPS: dict[str, float] = {
    # NVIDIA datacenter
    "H200": 4800, "H100 NVL": 3900, "H100 80GB HBM3": 3350, "H100 SXM": 3350,
    "H100 PCIe": 2000, "H100": 2000, "GH200": 4000, "B200": 8000, "A100-SXM4-80GB": 2039,
    "A100 80GB PCIe": 1935, "A100-SXM4-40GB": 1555, "A100-PCIE-40GB": 1555, "A100": 1555,
    "L40S": 864, "L40": 864, "L4": 300, "A10G": 600, "A10": 600, "T4": 320, "V100": 900,
    "RTX 6000 Ada": 960, "RTX A6000": 768, "RTX PRO 6000": 1792, "GB10": 273,
    # NVIDIA GeForce (desktop unless "Laptop")
    "RTX 5090": 1792, "RTX 5080": 960, "RTX 5070 Ti": 896, "RTX 5070": 672,
    "RTX 5060 Ti": 448, "RTX 4090": 1008, "RTX 4080 SUPER": 736, "RTX 4080": 717,
    "RTX 4070 Ti SUPER": 672, "RTX 4070 Ti": 504, "RTX 4070 SUPER": 504, "RTX 4070": 504,
    "RTX 4060 Ti": 288, "RTX 4060": 272, "RTX 3090 Ti": 1008, "RTX 3090": 936,
    "RTX 3080 Ti": 912, "RTX 3080": 760, "RTX 3070 Ti": 608, "RTX 3070": 448,
    "RTX 3060 Ti": 448, "RTX 3060": 360, "RTX 2080 Ti": 616,
    "RTX 4090 Laptop": 576, "RTX 4080 Laptop": 432, "RTX 4070 Laptop": 256,
    "RTX 4060 Laptop": 256, "RTX 4050 Laptop": 192, "RTX 3080 Laptop": 448,
    "RTX 3070 Laptop": 448, "RTX 3060 Laptop": 336,
    # AMD
    "MI300X": 5300, "MI250X": 3277, "RX 7900 XTX": 960, "RX 7900 XT": 800,
    "RX 7900 GRE": 576, "RX 7800 XT": 624, "RX 6900 XT": 512, "RX 6800 XT": 512,
    "RX 9070 XT": 640, "Navi 21": 512, "Navi 31": 800, "Radeon PRO W7900": 864,
    # Apple Silicon (unified memory; binned Max/Pro parts have the lower figure)
    "Apple M1 Ultra": 800, "Apple M1 Max": 400, "Apple M1 Pro": 200, "Apple M1": 68,
    "Apple M2 Ultra": 800, "Apple M2 Max": 400, "Apple M2 Pro": 200, "Apple M2": 100,
    "Apple M3 Ultra": 819, "Apple M3 Max": 300, "Apple M3 Pro": 150, "Apple M3": 100,
    "Apple M4 Max": 410, "Apple M4 Pro": 273, "Apple M4": 120,
}
# Host RAM when nothing better is known: dual-channel DDR4-3200 (2 x 25.6 GB/s).
DEFAULT_CPU_BANDWIDTH_GBPS = 51.2


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """A bandwidth figure and where it came from."""

    bytes_per_s: float
    source: str  # "table: RTX 4090" | "NVML bus width x memory clock" | "assumed ..."


def lookup_gpu(name: str) -> Bandwidth | None:
    """The table entry whose key is the longest substring of ``name``."""
    lowered = name.lower()
    matches = [key for key in GPU_BANDWIDTH_GBPS if key.lower() in lowered]
    if not matches:
        return None
    key = max(matches, key=len)
    return Bandwidth(GPU_BANDWIDTH_GBPS[key] * GB, f"published figure for {key}")


def from_bus(bus_width_bits: int | None, memory_clock_mhz: int | None) -> Bandwidth | None:
    """NVML's memory bus width and max memory clock: width/8 x clock x 2 (double data rate).

    A lower bound for GDDR6X/GDDR7, whose signalling moves more than two bits per clock.
    """
    if not bus_width_bits or not memory_clock_mhz:
        return None
    return Bandwidth(bus_width_bits / 8 * memory_clock_mhz * 1e6 * 2,
                     "estimated from NVML's bus width and memory clock")


def cpu_default() -> Bandwidth:
    return Bandwidth(DEFAULT_CPU_BANDWIDTH_GBPS * GB,
                     "assumed dual-channel DDR4-3200 (the real figure is not readable)")
