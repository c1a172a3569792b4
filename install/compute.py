"""Dense FP16 matrix throughput of known GPUs and chips, for the prompt-speed model.

Values are vendors' published dense (not sparse) FP16 tensor/matrix TFLOPS where the part has
matrix units that llama.cpp uses, else its FP16/FP32 vector figure (Apple GPUs, Pascal,
RDNA2, Intel through Vulkan). Prompt speed is fitted as a per-backend fraction of these
figures (install/predict.py), so a consistent choice matters more than the exact peak.
Names are matched like the bandwidth table (``bandwidth.match``: longest substring, laptop
parts only to laptop entries).
"""

from __future__ import annotations

from gptoss_doctor.install.bandwidth import match

GPU_TFLOPS: dict[str, float] = {
    # NVIDIA datacenter and workstation
    "H200": 989, "H100 NVL": 835, "H100 80GB HBM3": 989, "H100 SXM": 989, "H100 PCIe": 756,
    "H100": 756, "GH200": 989, "B200": 2250, "A100": 312, "L40S": 362, "L40": 181,
    "L4": 121, "A10G": 70, "A10": 125, "T4": 65, "V100": 125, "H20": 148, "A40": 150,
    "A30": 165, "P40": 12, "P100": 19, "RTX 6000 Ada": 364, "RTX A6000": 155,
    "RTX PRO 6000": 500, "GB10": 125, "RTX 5000 Ada": 261, "RTX 4000 Ada": 107,
    "RTX A5000": 111, "RTX A4000": 77,
    # Datasheets' tensor figures: Ampere and Ada workstation cards list sparse TFLOPS (halved
    # here; Ada's are FP8, quartered); Blackwell lists sparse FP4 "AI TOPS" (divided by 8, as
    # for the RTX PRO 6000: 4000 -> 500). RTX PRO 5000: the 72 GB card's 2064, below the
    # 48 GB card's; both have the same bandwidth.
    "RTX PRO 5000 Blackwell": 258, "RTX PRO 4500 Blackwell": 211,
    "RTX PRO 4000 Blackwell": 156, "RTX 4500 Ada": 159, "RTX 2000 Ada": 48,
    "RTX A4500": 95, "RTX A2000": 32,
    # Jetson: Orin's GPU has A100-class tensor cores (170 sparse INT8 TOPS from 16 SMs at
    # 1.3 GHz: 2048 dense FP16 FLOP per SM per clock), so SMs x clock x 2048. The configuration
    # whose bandwidth install/bandwidth.py has, the lower one where two share it: AGX Orin 32 GB
    # (14 SMs, 930 MHz), Orin NX 8 GB (8 SMs, 765 MHz), Orin Nano 8 GB at 68 GB/s (8 SMs,
    # 625 MHz, before the "Super" clocks). AGX Thor: 2070 sparse FP4 TFLOPS / 8.
    "Jetson AGX Orin": 26.7, "Orin NX": 12.5, "Orin Nano": 10.2, "Jetson AGX Thor": 259,
    # NVIDIA GeForce desktop
    "RTX 5090": 419, "RTX 5080": 225, "RTX 5070 Ti": 176, "RTX 5070": 124,
    "RTX 5060 Ti": 94, "RTX 5060": 77, "RTX 4090": 330, "RTX 4080 SUPER": 209,
    "RTX 4080": 195, "RTX 4070 Ti SUPER": 177, "RTX 4070 Ti": 160, "RTX 4070 SUPER": 142,
    "RTX 4070": 117, "RTX 4060 Ti": 88, "RTX 4060": 60, "RTX 3090 Ti": 160, "RTX 3090": 142,
    "RTX 3080 Ti": 136, "RTX 3080": 119, "RTX 3070 Ti": 87, "RTX 3070": 81,
    "RTX 3060 Ti": 65, "RTX 3060": 51, "RTX 2080 Ti": 108, "RTX 2080 SUPER": 89,
    "RTX 2080": 80, "RTX 2070": 60, "RTX 2060": 52, "RTX 3050": 36,
    "RTX 2070 SUPER": 72, "RTX 2060 SUPER": 57,  # SMs x 1024 x boost, as above
    # Without matrix units: Pascal at its FP32 rate (FP16 runs at 1/64), Turing GTX 16 at its
    # FP16 rate (twice FP32), both shaders x 2 x reference boost clock; the GTX 1650 is the
    # GDDR5 card whose 128 GB/s install/bandwidth.py has
    "GTX 1080 Ti": 11.3, "GTX 1080": 8.9, "GTX 1070 Ti": 8.2, "GTX 1070": 6.5,
    "GTX 1660 SUPER": 10.1, "GTX 1660 Ti": 10.9, "GTX 1660": 10.1, "GTX 1650": 6.0,
    # NVIDIA GeForce laptop (matched only by laptop names): SMs x 1024 dense FP16 FLOP per clock
    # (the desktop cards' rate) x the lowest boost clock NVIDIA lists for the part's TGP range
    # (the laptop maker picks the TGP): 5090 1597 MHz, 4090 1455, 4080 1350, 4070 1230,
    # 4060 1470, 4050 1605, 3080 Ti 1125, 3080 1245, 3070 1290, 3060 1283
    "RTX 5090 Laptop": 134, "RTX 4090 Laptop": 113, "RTX 4080 Laptop": 80,
    "RTX 4070 Laptop": 45, "RTX 4060 Laptop": 36, "RTX 4050 Laptop": 33,
    "RTX 3080 Ti Laptop": 67, "RTX 3080 Laptop": 61, "RTX 3070 Laptop": 53,
    "RTX 3060 Laptop": 39,
    # AMD
    "MI300X": 1307, "MI250X": 383, "RX 7900 XTX": 123, "RX 7900 XT": 103,
    "RX 7900 GRE": 92, "RX 7800 XT": 75, "RX 9070 XT": 195, "RX 9070": 145,
    "RX 6900 XT": 46, "RX 6800 XT": 41, "RX 6800": 32, "Navi 21": 41, "Navi 31": 103,
    "Radeon PRO W7900": 122, "Radeon 8060S": 59.4, "Radeon 890M": 23.8, "Radeon 780M": 16.6,
    # AMD datasheets: CDNA matrix FP16; Vega 20 (no matrix units) packed FP16 vector; RDNA3
    # FP16 WMMA (CUs x 512 x boost clock), RDNA4 (CUs x 1024 x boost clock); RDNA2 FP16
    # vector, twice FP32
    "MI325X": 1307, "MI250": 362, "MI210": 181, "MI100": 185, "MI60": 29.5, "MI50": 26.5,
    "Radeon VII": 27.7, "RX 7700 XT": 70.3, "RX 7600 XT": 45.1, "RX 7600": 43.5,
    "Radeon PRO W7800": 90, "RX 6950 XT": 47.3, "RX 6750 XT": 26.6, "RX 6700 XT": 26.4,
    "RX 6600 XT": 21.2, "RX 6600": 17.9, "Radeon PRO W6800": 35.7, "RX 9060 XT": 103,
    "Radeon AI PRO R9700": 191,
    # AMD integrated, at the lowest top GPU clock among the chips that carry each: 8050S 32 CUs
    # at 2.8 GHz, 880M 12 at 2.9, 760M 8 at 2.6 (RDNA3 rate as above); 680M 12 RDNA2 CUs at
    # 2.2 GHz, FP16 vector
    "Radeon 8050S": 45.9, "Radeon 880M": 17.8, "Radeon 760M": 10.6, "Radeon 680M": 6.8,
    # Intel (vector FP16: Xe cores x 128 FP32 lanes x 2 x boost clock, twice for FP16; the
    # A770's 32 cores at 2.4 GHz give 39, the B580's 20 at 2.67 GHz 27): A750 28 cores at
    # 2.05 GHz, A580 24 at 1.7, A380 8 at 2.0, B570 18 at 2.5 (Intel's specifications).
    "Arc A770": 39, "Arc B580": 27, "Arc A750": 29.4, "Arc A580": 20.9, "Arc A380": 8.2,
    "Arc B570": 23.0,
    # Intel, twice the FP32 vector rate (shaders x 2 x boost clock) of the page named beside
    # the card in install/bandwidth.py: A310 1750 MHz (FP16 5.38 listed), Pro A40 1024 shaders
    # at 1700 MHz, Pro A50 at 2350 MHz, Pro A60 2048 at 2050 MHz (FP16 16.79 listed), Pro B50
    # FP16 21.3 (hmc-tech.com/gpu/intel-arc-pro-b50-vs-nvidia-rtx-pro-4000-blackwell), Pro B60
    # FP32 12.29 (chipversus.com/hardware/gpu/intel-arc-pro-b60). One PCI id names the A40 and
    # A50 "Arc Pro A40/A50": the A40's lower figure is used for it.
    "Arc A310": 5.4, "Arc Pro A40": 7.0, "Arc Pro A50": 9.6, "Arc Pro A60": 16.8,
    "Arc Pro B50": 21.3, "Arc Pro B60": 24.6,
    # Apple GPUs (FP32 = FP16 rate)
    "Apple M1 Ultra": 21, "Apple M1 Max": 10.4, "Apple M1 Pro": 5.2, "Apple M1": 2.6,
    "Apple M2 Ultra": 27.2, "Apple M2 Max": 13.6, "Apple M2 Pro": 6.8, "Apple M2": 3.6,
    "Apple M3 Ultra": 28.2, "Apple M3 Max": 16.4, "Apple M3 Pro": 7.4, "Apple M3": 4.1,
    "Apple M4 Max": 18.4, "Apple M4 Pro": 9.2, "Apple M4": 4.6,
    # Apple M5 GPUs carry a matrix unit (Neural Accelerator) in every core, which MLX and
    # llama.cpp's Metal backend (its tensor API path) use: Apple's "over 4x the M4's peak GPU
    # compute for AI" (4 x 4.6), and four times that for the M5 Max's 40 cores (the M5's 10)
    "Apple M5": 18.4, "Apple M5 Max": 73.6,
}
CPU_GHZ = 3.0  # sustained all-core clock assumed when the real one is not known


def lookup_gpu_flops(name: str) -> float | None:
    """FLOPS (not TFLOPS) of the table entry ``match`` picks for ``name``."""
    key = match(name, GPU_TFLOPS)
    return GPU_TFLOPS[key] * 1e12 if key is not None else None


def cpu_flops(cores: int | None, flags: tuple[str, ...]) -> float | None:
    """Integer-dot throughput of llama.cpp's quantized CPU kernels: cores x clock x 64 ops per
    cycle with AVX2, AVX-512 or NEON dot products (AVX-512 gains little over AVX2 in
    llama.cpp's prompt processing: Zen 4 runs it double-pumped), else 32."""
    if not cores:
        return None
    wide = any(f in flags for f in ("avx2", "avx512f", "asimddp", "dotprod"))
    return cores * CPU_GHZ * 1e9 * (64 if wide else 32)
