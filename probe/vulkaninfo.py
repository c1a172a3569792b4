"""GPU memory from ``vulkaninfo`` where the driver's sysfs publishes none.

Mainline Linux's i915 and xe drivers give an Intel Arc card's VRAM size to userspace only
through their query ioctl (``probe.gpu_sysfs.read_intel_vram``), so the sysfs reader finds
the card but not its memory. Owners of these cards run llama.cpp's Vulkan build, so they have
the Vulkan loader and usually ``vulkaninfo`` (package vulkan-tools), which prints what Mesa's
driver learnt from that ioctl: each physical device's memory heaps.

Which output form: the plain text one, the default of every release. ``--summary`` prints no
heaps; ``--json`` writes one GPU at a time, to stdout in the DevSim schema in old releases and
to a ``VP_VULKANINFO_*.json`` file in the Vulkan Profiles schema in current ones. The text
lines read here have kept their shape across releases (public outputs from Vulkan-Tools
1.2 to 1.4)::

    GPU0:
    VkPhysicalDeviceProperties:
        vendorID          = 0x8086
        deviceID          = 0x56a0
        deviceType        = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
        deviceName        = Intel(R) Arc(tm) A770 Graphics (DG2)
    ...
    memoryHeaps[0]:
        size   = 17079205888 (0x3fa000000) (15.91 GiB)
        budget = 15371075584 (0x394300000) (14.32 GiB)
        flags: count = 1
            MEMORY_HEAP_DEVICE_LOCAL_BIT

The decimal count is read, never the rounded figure in brackets (a 32-bit vulkaninfo has
printed "(3.91 GiB)" beside the right 17079205888). ``budget`` is there where the driver has
VK_EXT_memory_budget; a budget above the heap's size breaks the specification (it has been
seen on Windows iGPUs) and is dropped. With Resizable BAR off a card shows a second, 256 MiB
device-local heap (the CPU-visible window): the largest device-local heap is the card's memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from gptoss_doctor.probe.model import GpuInfo, Note
from gptoss_doctor.probe.sources import Sources

TIMEOUT_S = 10.0  # a full listing takes seconds on some drivers
MAX_TEXT_CHARS = 4 * 1024 * 1024  # what is read of the output; the rest is ignored
HEAP_MIN_BYTES = 1 * 1024**3
HEAP_MAX_BYTES = 256 * 1024**3
_MAX_DEVICES = 16
_MAX_HEAPS = 16  # VK_MAX_MEMORY_HEAPS
_GPU = re.compile(r"^GPU([0-9]{1,2}):?[ \t\r]*$", re.MULTILINE)
_FIELD = re.compile(r"^[ \t]*(vendorID|deviceID|deviceType|deviceName|pciDomain|pciBus|pciDevice"
                    r"|pciFunction)[ \t]*=(.*)$", re.MULTILINE)
_HEAP = re.compile(r"^\s*memoryHeaps\[([0-9]{1,2})\]\s*:?(.*)$")
_HEAP_COUNT = re.compile(r"^[ \t]*(?:memoryHeaps:[ \t]*count|memoryHeapCount)[ \t]*=[ \t]*"
                         r"([0-9]{1,3})\b",
                         re.MULTILINE)
_COUNT = re.compile(r"^\s*(size|budget)\s*=\s*(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})\b")
_ID = re.compile(r"^(0x[0-9a-fA-F]{1,8}|[0-9]{1,10})$")
_SECTION_END = re.compile(r"^\s*(memoryType|VkPhysicalDevice|VkQueueFamily)")


@dataclass(frozen=True, slots=True)
class Heap:
    """One memory heap: size and budget in bytes (budget None where not printed)."""

    size: int
    budget: int | None
    device_local: bool


@dataclass(frozen=True, slots=True)
class VulkanDevice:
    """One physical device of the listing; ids are None where missing or unreadable."""

    name: str | None
    vendor_id: int | None
    device_id: int | None
    discrete: bool
    pci_bus_id: str | None  # "0000:03:00.0", where VK_EXT_pci_bus_info is printed
    heaps: tuple[Heap, ...]


def _int(digits: str) -> int:
    """A count matched as "0x..." hex or ASCII decimal (a leading zero is decimal still)."""
    return int(digits, 16) if digits[:2].lower() == "0x" else int(digits, 10)


def _number(text: str) -> int | None:
    """An id printed as hex or decimal (its first word: "22176 (0x56a0)" reads 22176)."""
    words = text.split()
    return _int(words[0]) if words and _ID.match(words[0]) else None


def _fields(block: str) -> dict[str, str]:
    """The device's property lines, first occurrence of each (VkPhysicalDeviceProperties
    comes first; later structures, such as Vulkan 1.4's layered-API list, may repeat a key
    about another implementation)."""
    found: dict[str, str] = {}
    for key, value in _FIELD.findall(block):
        found.setdefault(key, value.strip()[:200])
    return found


def _bus_id(fields: dict[str, str]) -> str | None:
    parts = [_number(fields.get(k, "")) for k in ("pciDomain", "pciBus", "pciDevice",
                                                    "pciFunction")]
    if any(p is None for p in parts):
        return None
    domain, bus, device, function = (p or 0 for p in parts)
    if domain > 0xFFFF or bus > 0xFF or device > 0x1F or function > 7:
        return None
    return f"{domain:04x}:{bus:02x}:{device:02x}.{function:x}"


def _heaps(block: str) -> tuple[Heap, ...] | None:
    """The heaps of one device in index order; None when the list is cut off (no section
    after it, or fewer heaps than its stated count), a heap lacks its size, or the heaps are
    not numbered 0, 1, 2... once each."""
    heaps: dict[int, dict[str, int]] = {}
    current: dict[str, int] | None = None
    closed = False
    for line in block.splitlines():
        head = _HEAP.match(line)
        if head:
            index = int(head.group(1))
            if index in heaps or len(heaps) >= _MAX_HEAPS or closed:
                return None
            current = heaps[index] = {"local": 0}
            line = head.group(2)  # whatever follows "memoryHeaps[i]:" on its line
        elif current is not None and _SECTION_END.match(line):
            current, closed = None, True
        if current is None:
            continue
        count = _COUNT.match(line)
        if count and count.group(1) not in current:
            current[count.group(1)] = _int(count.group(2))
        elif "MEMORY_HEAP_DEVICE_LOCAL_BIT" in line:
            current["local"] = 1
    stated = _HEAP_COUNT.search(block)
    if not closed or (stated and int(stated.group(1)) != len(heaps)) \
            or sorted(heaps) != list(range(len(heaps))) \
            or any("size" not in h for h in heaps.values()):
        return None
    return tuple(Heap(size=h["size"], budget=h.get("budget"), device_local=bool(h["local"]))
                 for _, h in sorted(heaps.items()))


def parse_vulkaninfo(text: str) -> tuple[VulkanDevice, ...]:
    """Every physical device of ``vulkaninfo``'s text output (its first ``MAX_TEXT_CHARS``)
    whose properties and heaps are complete; a device cut off or garbled is left out."""
    text = text[:MAX_TEXT_CHARS]
    starts = [m.start() for m in _GPU.finditer(text)]
    blocks = list(zip(starts, [*starts[1:], len(text)], strict=False))[:_MAX_DEVICES]
    devices: list[VulkanDevice] = []
    for start, end in blocks:
        block = text[start:end]
        fields = _fields(block)
        heaps = _heaps(block)
        if not heaps or "deviceType" not in fields:
            continue
        devices.append(VulkanDevice(
            name=fields.get("deviceName") or None,
            vendor_id=_number(fields.get("vendorID", "")),
            device_id=_number(fields.get("deviceID", "")),
            discrete=fields["deviceType"] == "PHYSICAL_DEVICE_TYPE_DISCRETE_GPU",
            pci_bus_id=_bus_id(fields), heaps=heaps))
    return tuple(devices)


def device_memory(device: VulkanDevice) -> tuple[int | None, int | None, str | None]:
    """(total, free, problem): the largest device-local heap and its budget, or why not."""
    local = [h for h in device.heaps if h.device_local]
    if not local:
        return None, None, "no device-local memory heap"
    largest = max(local, key=lambda h: h.size)
    if not HEAP_MIN_BYTES <= largest.size <= HEAP_MAX_BYTES:
        return None, None, f"an implausible device-local heap of {largest.size} bytes"
    budget = largest.budget if largest.budget and largest.budget <= largest.size else None
    return largest.size, budget, None


def read_devices(sources: Sources) -> tuple[tuple[VulkanDevice, ...], str | None]:
    """Run ``vulkaninfo`` (bounded by ``TIMEOUT_S``) and parse it: (devices, why none)."""
    binary = sources.which("vulkaninfo")
    if binary is None:
        return (), ("vulkaninfo is not installed; install vulkan-tools so gptoss-doctor can "
                    "read the card's memory through Vulkan")
    result = sources.run([binary], timeout_s=TIMEOUT_S)
    if result is None:
        return (), f"vulkaninfo did not answer within {TIMEOUT_S:.0f} s"
    devices = parse_vulkaninfo(result.stdout or "")
    if devices:
        return devices, None
    lines = (result.stderr or "").strip().splitlines()
    reason = lines[-1][:160] if lines else f"exit code {result.returncode}"
    return (), f"vulkaninfo listed no device with its memory heaps ({reason})"


def needs_vram(gpu: GpuInfo) -> bool:
    """A discrete card found in sysfs without a memory size (Intel Arc on mainline Linux);
    NVIDIA has NVML, amdgpu its own counters, and a GPU of unknown kind is not planned."""
    return (gpu.source == "sysfs" and gpu.vendor != "nvidia" and gpu.discrete is True
            and gpu.vram_total_bytes is None)


def _pci_ids(sources: Sources, gpu: GpuInfo) -> tuple[int | None, int | None]:
    device = f"/sys/class/drm/card{gpu.index}/device"
    return (_number((sources.read_text(f"{device}/vendor") or "")[:16]),
            _number((sources.read_text(f"{device}/device") or "")[:16]))


def memory_for(sources: Sources, gpu: GpuInfo, devices: tuple[VulkanDevice, ...]
               ) -> tuple[int | None, int | None, str | None]:
    """(total, free, problem) for one sysfs GPU: the discrete Vulkan device with its PCI
    vendor and device ids (and PCI address, where both sides give one)."""
    vendor, device_id = _pci_ids(sources, gpu) if gpu.index is not None else (None, None)
    if vendor is None or device_id is None:
        return None, None, "its PCI ids are unreadable in sysfs"
    same = [d for d in devices if d.discrete and (d.vendor_id, d.device_id) == (vendor,
                                                                                device_id)]
    bus = (gpu.pci_bus_id or "").lower()
    here = [d for d in same if bus and d.pci_bus_id == bus]
    same = here or [d for d in same if d.pci_bus_id is None]
    if not same:
        return None, None, (f"vulkaninfo lists no discrete device {vendor:04x}:{device_id:04x} "
                            "(is Mesa's Vulkan driver installed?)")
    figures = {device_memory(d) for d in same}
    if len(figures) > 1:
        return None, None, "vulkaninfo lists several such cards with different memory"
    total, free, problem = figures.pop()
    return total, free if len(same) == 1 else None, problem


def _drop_one_warning(notes: list[Note], name: str) -> None:
    """Remove the first sysfs "unknown VRAM" warning about a card called ``name``."""
    for i, note in enumerate(notes):
        if note.source == "sysfs" and note.severity == "warning" \
                and note.message.startswith(f"{name}: "):
            del notes[i]
            return


def fill_missing_vram(sources: Sources, gpus: tuple[GpuInfo, ...], notes: tuple[Note, ...]
                      ) -> tuple[tuple[GpuInfo, ...], tuple[Note, ...]]:
    """``gpus`` with the VRAM of each card that ``needs_vram`` read from ``vulkaninfo``;
    ``vulkaninfo`` runs only when such a card is there. A card filled in loses the sysfs
    reader's "unknown VRAM" warning and gets a note saying where its figure came from."""
    wanted = [g for g in gpus if needs_vram(g)]
    if not wanted:
        return gpus, notes
    devices, why = read_devices(sources)
    if why is not None:
        names = ", ".join(g.name for g in wanted)
        return gpus, (*notes, Note("vulkaninfo", f"{names}: {why}"))
    filled: list[GpuInfo] = []
    kept = list(notes)
    for gpu in gpus:
        total, free, problem = memory_for(sources, gpu, devices) if needs_vram(gpu) \
            else (None, None, None)
        if total is None:
            filled.append(gpu)
            kept.extend((Note("vulkaninfo", f"{gpu.name}: {problem}"),) if problem else ())
            continue
        filled.append(replace(gpu, vram_total_bytes=total, vram_free_bytes=free))
        _drop_one_warning(kept, gpu.name)  # cards of one model have one warning each
        kept.append(Note("vulkaninfo", f"{gpu.name}: {total / 1024**3:.2f} GiB of VRAM from "
                         "vulkaninfo (its driver publishes no size in sysfs)"))
    return tuple(filled), tuple(kept)
