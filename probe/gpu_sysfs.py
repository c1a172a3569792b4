"""Non-NVIDIA GPUs on Linux from sysfs: AMD (amdgpu VRAM counters), Intel and others by name.

``/sys/class/drm/cardN/device/`` holds ``vendor`` (0x1002 AMD, 0x8086 Intel, 0x10de NVIDIA),
and for amdgpu ``mem_info_vram_total`` / ``mem_info_vram_used`` in bytes. An AMD APU shows a
small carve-out as VRAM (often 512 MiB) and draws on GTT (system RAM) for the rest.
"""

from __future__ import annotations

import re

from gptoss_doctor.probe.model import GpuInfo, Note
from gptoss_doctor.probe.sources import Sources

VENDORS = {"0x1002": "amd", "0x8086": "intel", "0x10de": "nvidia", "0x1ae0": "google"}
# An amdgpu device with no more VRAM than this is an APU's carve-out, not a discrete card.
APU_VRAM_LIMIT_BYTES = 4 * 1024**3
_CARD = re.compile(r"^card\d+$")
# PCI device ids -> names (from the PCI ID database) for cards whose driver exposes no name.
KNOWN_DEVICES = {
    "0x73bf": "Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]",
    "0x744c": "Navi 31 [Radeon RX 7900 XT/7900 XTX]",
    "0x7550": "Navi 48 [Radeon RX 9070/9070 XT]",
    "0x7590": "Navi 44 [Radeon RX 9060 XT]",
    "0x747e": "Navi 32 [Radeon RX 7700 XT / 7800 XT]",
    "0x7480": "Navi 33 [Radeon RX 7600/7600 XT]",
    "0x73df": "Navi 22 [Radeon RX 6700/6700 XT/6750 XT]",
    "0x73ff": "Navi 23 [Radeon RX 6600/6600 XT]",
    "0x66af": "Vega 20 [Radeon VII / Instinct MI50/MI60]",
    "0x738c": "Arcturus [Instinct MI100]",
    "0x740f": "Aldebaran [Instinct MI210]",
    "0x74a1": "Aqua Vanjaram [Instinct MI300X]",
    "0x164e": "Raphael (Ryzen 7000 integrated graphics)",
    "0x1586": "Strix Halo [Radeon 8060S]",
    "0x150e": "Strix [Radeon 880M / 890M]",
    "0x15bf": "Phoenix1 [Radeon 780M / 760M / 740M]",
    "0x1681": "Rembrandt [Radeon 680M]",
    "0xa7a0": "Raptor Lake-P [Iris Xe Graphics]",
    "0x46a6": "Alder Lake-P [Iris Xe Graphics]",
    "0x28a0": "AD107M [GeForce RTX 4060 Laptop GPU]",
    "0x2204": "GA102 [GeForce RTX 3090]",
    "0x1c82": "GP107 [GeForce GTX 1050 Ti]",
}


# Unknown AMD cards: the memory bus width by family, from the PCI device id. GDDR6 boards
# put one 32-bit chip of 2 GB on each channel, so the width follows the VRAM size up to the
# family's widest bus (clamshell boards, two chips per channel, are over-estimated: the
# source says "estimated"). HBM stacks are 1024 bits each. amdgpu's pp_dpm_mclk lists the
# memory clock levels: GDDR6 moves 16 bits per pin per listed MHz (RX 7900 XTX: 1249 MHz ->
# 20 Gbps), HBM2 2 (Radeon VII: 1000 MHz -> 2 Gbps). Stored the way NVML counts its memory
# clock (half the per-pin data rate), so ``install.bandwidth.from_bus`` reads both alike.
AMD_FAMILIES: tuple[tuple[re.Pattern[str], str, int, int], ...] = (
    # (device id, family, widest bus in bits (HBM: the width), NVML-style MHz per listed MHz)
    (re.compile(r"^0x73[0-9a-f]{2}$"), "Navi 1x/2x (GDDR6)", 256, 8),
    (re.compile(r"^0x74[4-8][0-9a-f]$"), "Navi 3x (GDDR6)", 384, 8),
    (re.compile(r"^0x75[0-9a-f]{2}$"), "Navi 4x (GDDR6)", 256, 8),
    (re.compile(r"^0x66a[0-9a-f]$"), "Vega 20 (HBM2)", 4096, 1),
)
_MCLK = re.compile(r"^\s*\d+:\s*(\d+)\s*Mhz", re.IGNORECASE | re.MULTILINE)


def parse_pp_dpm_mclk(text: str | None) -> int | None:
    """The highest memory clock level (MHz) of amdgpu's ``pp_dpm_mclk``."""
    levels = [int(v) for v in _MCLK.findall(text or "")]
    return max(levels) if levels and 0 < max(levels) < 100_000 else None


def amd_memory_bus(device_id: str, vram_total_bytes: int | None, mclk_mhz: int | None
                   ) -> tuple[int, int, str] | None:
    """(bus width bits, NVML-style memory clock MHz, family) for an AMD card, or None."""
    if mclk_mhz is None:
        return None
    for pattern, family, widest, per_mhz in AMD_FAMILIES:
        if pattern.match(device_id.lower()):
            if per_mhz == 1:  # HBM: fixed width
                return widest, mclk_mhz * per_mhz, family
            if not vram_total_bytes:
                return None
            channels = max(1, round(vram_total_bytes / 1024**3 / 2))
            return min(widest, 32 * channels), mclk_mhz * per_mhz, family
    return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else None


def _name(sources: Sources, device: str, vendor: str) -> str:
    # amdgpu exposes a marketing name on recent kernels; otherwise fall back to PCI ids.
    for leaf in ("product_name", "label"):
        text = sources.read_text(f"{device}/{leaf}")
        if text and text.strip():
            return text.strip()
    device_id = (sources.read_text(f"{device}/device") or "").strip()
    return KNOWN_DEVICES.get(device_id, f"{vendor.upper()} GPU {device_id}".strip())


def read_drm_gpus(sources: Sources, nvidia_found: bool = True
                  ) -> tuple[tuple[GpuInfo, ...], tuple[Note, ...]]:
    """Every non-NVIDIA display device under ``/sys/class/drm`` (NVIDIA comes from NVML).

    With ``nvidia_found=False`` an NVIDIA card seen here means its driver is missing or
    broken (NVML and nvidia-smi both failed): that becomes a warning with the fix.
    """
    cards = sources.list_dir("/sys/class/drm")
    if cards is None:
        return (), ()
    gpus: list[GpuInfo] = []
    notes: list[Note] = []
    for card in cards:
        if not _CARD.match(card):
            continue  # connectors such as card0-DP-1 and render nodes
        device = f"/sys/class/drm/{card}/device"
        vendor = VENDORS.get((sources.read_text(f"{device}/vendor") or "").strip(), "other")
        if vendor == "nvidia":
            if not nvidia_found:
                notes.append(Note("sysfs", f"an NVIDIA GPU ({_name(sources, device, vendor)}) "
                                  "is installed but its driver cannot be used: install or "
                                  "repair the NVIDIA driver to run models on it", "warning"))
            continue
        name = _name(sources, device, vendor)
        total = _int(sources.read_text(f"{device}/mem_info_vram_total"))
        used = _int(sources.read_text(f"{device}/mem_info_vram_used"))
        if vendor == "amd" and total is not None:
            apu = total <= APU_VRAM_LIMIT_BYTES
            bus = None if apu else amd_memory_bus(
                (sources.read_text(f"{device}/device") or "").strip(), total,
                parse_pp_dpm_mclk(sources.read_text(f"{device}/pp_dpm_mclk")))
            gpus.append(
                GpuInfo(
                    vendor="amd",
                    name=name,
                    source="sysfs",
                    index=int(card.removeprefix("card")),
                    vram_total_bytes=None if apu else total,
                    vram_free_bytes=None if apu or used is None else total - used,
                    unified_memory=apu,
                    discrete=not apu,
                    memory_bus_width_bits=bus[0] if bus else None,
                    memory_clock_max_mhz=bus[1] if bus else None,
                )
            )
            if apu:
                notes.append(Note("sysfs", f"{name}: APU with a {total / 1024**2:.0f} MiB "
                                  "carve-out; it shares system RAM"))
            continue
        gpus.append(GpuInfo(vendor=vendor, name=name, source="sysfs",
                            index=int(card.removeprefix("card")), discrete=None))
        notes.append(Note("sysfs", f"{name}: {vendor} GPU found; gptoss-doctor does not plan "
                          "for it (llama.cpp's Vulkan build may still use it)"))
    return tuple(gpus), tuple(notes)
