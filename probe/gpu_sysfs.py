"""Non-NVIDIA GPUs on Linux from sysfs: AMD (amdgpu VRAM counters), Intel Arc cards (VRAM
where the driver publishes it), Intel integrated graphics and others by name.

``/sys/class/drm/cardN/device/`` holds ``vendor`` (0x1002 AMD, 0x8086 Intel, 0x10de NVIDIA),
and for amdgpu ``mem_info_vram_total`` / ``mem_info_vram_used`` in bytes. An AMD APU shows a
small carve-out as VRAM (often 512 MiB) and draws on GTT (system RAM) for the rest. Intel's
discrete cards are told from its integrated graphics by PCI device id (``INTEL_DISCRETE``);
the files their drivers may hold the VRAM size in are described at ``read_intel_vram``.
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
    "0xa780": "Raptor Lake-S GT1 [UHD Graphics 770]",
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
    """A plain decimal count as sysfs prints one; anything else (a sign, hex, non-ASCII
    digits, more than 20 digits) is None."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


def _name(sources: Sources, device: str, vendor: str) -> str:
    # amdgpu exposes a marketing name on recent kernels; otherwise fall back to PCI ids.
    for leaf in ("product_name", "label"):
        text = sources.read_text(f"{device}/{leaf}")
        if text and text.strip():
            return text.strip()
    device_id = (sources.read_text(f"{device}/device") or "").strip()
    return KNOWN_DEVICES.get(device_id, f"{vendor.upper()} GPU {device_id}".strip())


# Intel discrete GPUs by PCI device id: the ids are the kernel's DG2, ATS-M and BMG lists
# (torvalds/linux include/drm/intel/pciids.h, INTEL_DG2_IDS / INTEL_ATS_M_IDS /
# INTEL_BMG_IDS), the names the PCI ID database's (pciutils/pciids pci.ids, 2026-08). A name
# ending in "M" is a laptop part and is named "... Laptop GPU" so the bandwidth table's
# desktop figures are not matched (``install.bandwidth.match``). None: an id the kernel lists
# that has no marketing name.
INTEL_DISCRETE: dict[str, str | None] = {
    # DG2 (Alchemist) desktop, embedded ("E") and workstation
    "0x56a0": "Arc A770", "0x56a1": "Arc A750", "0x56a2": "Arc A580", "0x56a5": "Arc A380",
    "0x56a6": "Arc A310", "0x56a3": None, "0x56a4": None,
    "0x56b0": "Arc Pro A30M", "0x56b1": "Arc Pro A40/A50", "0x56b2": "Arc Pro A60M",
    "0x56b3": "Arc Pro A60", "0x56ba": "Arc A380E", "0x56bb": "Arc A310E",
    "0x56bc": "Arc A370E", "0x56bd": "Arc A350E", "0x56be": "Arc A750E", "0x56bf": "Arc A580E",
    # DG2 laptop parts
    "0x5690": "Arc A770M", "0x5691": "Arc A730M", "0x5692": "Arc A550M", "0x5693": "Arc A370M",
    "0x5694": "Arc A350M", "0x5695": "Iris Xe MAX A200M", "0x5696": "Arc A570M",
    "0x5697": "Arc A530M",
    # ATS-M: DG2 silicon as data-centre cards
    "0x56c0": "Data Center GPU Flex 170", "0x56c1": "Data Center GPU Flex 140",
    "0x56c2": "Data Center GPU Flex 170V",
    # BMG (Battlemage) G21 and G31
    "0xe20b": "Arc B580", "0xe20c": "Arc B570", "0xe211": "Arc Pro B60", "0xe212": "Arc Pro B50",
    "0xe222": "Arc Pro B65", "0xe223": "Arc Pro B70", "0xe202": None, "0xe209": None,
    "0xe20d": None, "0xe210": None, "0xe216": None, "0xe220": None, "0xe221": None,
}
# Intel's integrated graphics always sit at this PCI address (bus 0, device 2, function 0).
INTEL_IGPU_SLOT = "0000:00:02.0"
# Bounds on a VRAM figure read from sysfs; outside them the file is garbage, not a size.
INTEL_VRAM_MIN_BYTES = 1 * 1024**3
INTEL_VRAM_MAX_BYTES = 256 * 1024**3
_TILE = re.compile(r"^tile\d{1,2}$")
_INTEL_TILES_MAX = 8


def intel_discrete_name(device_id: str) -> str | None:
    """The name of an Intel discrete GPU by PCI device id ("Intel Arc B580",
    "Intel Arc A770M Laptop GPU"), or None for an id not on the discrete lists."""
    device_id = device_id.strip().lower()
    if device_id not in INTEL_DISCRETE:
        return None
    model = INTEL_DISCRETE[device_id]
    if model is None:
        family = "Battlemage" if device_id.startswith("0xe2") else "DG2"
        return f"Intel Arc GPU ({family}, device {device_id})"
    return f"Intel {model} Laptop GPU" if model.endswith("M") else f"Intel {model}"


def _vram_bytes(text: str | None) -> int | None:
    value = _int(text)
    return value if value is not None and INTEL_VRAM_MIN_BYTES <= value <= INTEL_VRAM_MAX_BYTES \
        else None


def read_intel_vram(sources: Sources, card_dir: str, device: str
                    ) -> tuple[int | None, int | None, str | None]:
    """(total bytes, free bytes, problem) of an Intel card's VRAM from sysfs.

    Neither driver in mainline Linux publishes the VRAM size in sysfs (userspace asks the
    driver's query ioctl): intel/mainline-tracking's drivers/gpu/drm/i915/i915_sysfs.c (at
    9281424f) has no such file, nor has torvalds/linux's xe (below). Two builds do:

    - Intel's out-of-tree i915 (intel-gpu/intel-gpu-i915-backports,
      drivers/gpu/drm/i915/i915_sysfs.c at 0d387fbd) adds ``lmem_total_bytes`` and
      ``lmem_avail_bytes`` to the DRM minor, ``/sys/class/drm/cardN/``, summed over the
      card's local-memory regions;
    - the xe driver as developed in the drm-xe tree (rodrigovivi/linux,
      drivers/gpu/drm/xe/xe_tile_sysfs.c at 839a9277; igt's tests/intel/xe_sysfs_tile.c reads
      it) adds ``device/tileN/physical_vram_size_bytes`` on discrete parts: the physical size
      of the tile's VRAM, a little over what can be allocated; there is no free figure.
      torvalds/linux's xe_tile_sysfs.c (at f057b572) creates the tile folders without it.

    ``problem`` says why a file that exists gave no size (a value out of bounds or not a
    number); a missing file is no problem, just no figure.
    """
    total_text = sources.read_text(f"{card_dir}/lmem_total_bytes")
    if total_text is not None:
        total = _vram_bytes(total_text)
        if total is None:
            return None, None, "lmem_total_bytes holds no plausible byte count"
        avail = _int(sources.read_text(f"{card_dir}/lmem_avail_bytes"))
        return total, avail if avail is not None and avail <= total else None, None
    tiles = sorted(t for t in sources.list_dir(device) or () if _TILE.match(t))
    sizes = [sources.read_text(f"{device}/{t}/physical_vram_size_bytes")
             for t in tiles[:_INTEL_TILES_MAX]]
    present = [text for text in sizes if text is not None]
    if not present:
        return None, None, None
    values = [_vram_bytes(text) for text in present]
    if any(v is None for v in values) or sum(v or 0 for v in values) > INTEL_VRAM_MAX_BYTES:
        return None, None, "tileN/physical_vram_size_bytes holds no plausible byte count"
    return sum(v or 0 for v in values), None, None


def _uevent(sources: Sources, device: str) -> dict[str, str]:
    """``device/uevent``'s KEY=value lines (DRIVER, PCI_SLOT_NAME, ...)."""
    pairs = (line.partition("=") for line in (sources.read_text(f"{device}/uevent") or "")
             .splitlines()[:64])
    return {key.strip(): value.strip()[:64] for key, sep, value in pairs if sep}


def _intel_gpu(sources: Sources, card: str, device: str) -> tuple[GpuInfo, Note | None]:
    """An Intel GPU: a discrete card (by id, or by a VRAM file only discrete cards have),
    integrated graphics (at the iGPU's PCI address, or a known iGPU id), or unknown."""
    device_id = (sources.read_text(f"{device}/device") or "").strip().lower()[:16]
    total, free, problem = read_intel_vram(sources, f"/sys/class/drm/{card}", device)
    uevent = _uevent(sources, device)
    driver = uevent.get("DRIVER") or "its"
    name = intel_discrete_name(device_id)
    index = int(card.removeprefix("card"))
    if name is not None or total is not None:
        name = name or f"Intel GPU {device_id}".strip()
        gpu = GpuInfo(vendor="intel", name=name, source="sysfs", index=index,
                      vram_total_bytes=total, vram_free_bytes=free, discrete=True,
                      pci_bus_id=uevent.get("PCI_SLOT_NAME"))
        if total is not None:
            return gpu, None
        why = problem or (f"the {driver} driver publishes no VRAM size in sysfs, as "
                          "mainline i915 and xe do not")
        return gpu, Note("sysfs", f"{name}: discrete card of unknown VRAM ({why}); "
                         "gptoss-doctor cannot plan for it", "warning")
    name = _name(sources, device, "intel")
    if uevent.get("PCI_SLOT_NAME") == INTEL_IGPU_SLOT or device_id in KNOWN_DEVICES:
        return (GpuInfo(vendor="intel", name=name, source="sysfs", index=index,
                        unified_memory=True, discrete=False),
                Note("sysfs", f"{name}: integrated graphics sharing system RAM; "
                     "gptoss-doctor does not plan for it (llama.cpp's Vulkan build may "
                     "still use it)"))
    return (GpuInfo(vendor="intel", name=name, source="sysfs", index=index, discrete=None),
            Note("sysfs", f"{name}: an Intel GPU gptoss-doctor does not know (neither on its "
                 "discrete list nor at the integrated graphics' address); not planned"))


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
        gpu, note = _card(sources, card, nvidia_found)
        gpus.extend((gpu,) if gpu else ())
        notes.extend((note,) if note else ())
    return tuple(gpus), tuple(notes)


def _card(sources: Sources, card: str, nvidia_found: bool
          ) -> tuple[GpuInfo | None, Note | None]:
    """One ``cardN``: the GPU it is (None for NVIDIA, which NVML reports) and a note."""
    device = f"/sys/class/drm/{card}/device"
    vendor = VENDORS.get((sources.read_text(f"{device}/vendor") or "").strip(), "other")
    if vendor == "nvidia":
        if nvidia_found:
            return None, None
        return None, Note("sysfs", f"an NVIDIA GPU ({_name(sources, device, vendor)}) is "
                          "installed but its driver cannot be used: install or repair the "
                          "NVIDIA driver to run models on it", "warning")
    if vendor == "intel":
        return _intel_gpu(sources, card, device)
    name = _name(sources, device, vendor)
    total = _int(sources.read_text(f"{device}/mem_info_vram_total"))
    if vendor == "amd" and total is not None:
        return _amd_gpu(sources, card, device, name, total)
    return (GpuInfo(vendor=vendor, name=name, source="sysfs",
                    index=int(card.removeprefix("card")), discrete=None),
            Note("sysfs", f"{name}: {vendor} GPU found; gptoss-doctor does not plan for it "
                 "(llama.cpp's Vulkan build may still use it)"))


def _amd_gpu(sources: Sources, card: str, device: str, name: str, total: int
             ) -> tuple[GpuInfo, Note | None]:
    """An amdgpu device: a discrete card with its VRAM and memory bus, or an APU whose small
    carve-out is not its memory."""
    used = _int(sources.read_text(f"{device}/mem_info_vram_used"))
    apu = total <= APU_VRAM_LIMIT_BYTES
    bus = None if apu else amd_memory_bus(
        (sources.read_text(f"{device}/device") or "").strip(), total,
        parse_pp_dpm_mclk(sources.read_text(f"{device}/pp_dpm_mclk")))
    gpu = GpuInfo(vendor="amd", name=name, source="sysfs", index=int(card.removeprefix("card")),
                  vram_total_bytes=None if apu else total,
                  vram_free_bytes=None if apu or used is None else total - used,
                  unified_memory=apu, discrete=not apu,
                  memory_bus_width_bits=bus[0] if bus else None,
                  memory_clock_max_mhz=bus[1] if bus else None)
    note = Note("sysfs", f"{name}: APU with a {total / 1024**2:.0f} MiB carve-out; it shares "
                "system RAM") if apu else None
    return gpu, note
