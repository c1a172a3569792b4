"""Host memory bandwidth from the memory modules fitted: channels x MT/s x bus width.

The firmware's SMBIOS type-17 records (one per slot) give each module's size, rated and
configured transfer rate, data width and where it sits. They are read through
``dmidecode -t 17`` on Linux (root only: without it the command fails), else from the
kernel's copy of the same records in ``/sys/firmware/dmi/entries/17-*/raw``
(``probe.smbios``; also root only, said in a note when refused), and through
``Get-CimInstance Win32_PhysicalMemory`` on Windows (any user; fetched with the GPUs by
``probe.windows``). On a Mac, ``system_profiler -json SPMemoryDataType`` names each Intel
Mac's modules with their speed ("BANK 0/ChannelA-DIMM0", "2667 MHz"); Apple silicon reports
only the unified memory's size and type, so no figure comes from it (the chip's table has
one). Parsers are pure functions of the text or bytes; ``read`` fetches them through the
injected ``Sources``. Where nothing is readable the probe falls back to the platform table.

Channels are counted from the slot names where they say so ("P0 CHANNEL A",
"P1_Node1_Channel0_Dimm1", "Controller0-DIMMA2", "ChannelB-DIMM0"); two modules on one
channel add capacity, not bandwidth. Where no name says which channel a module is on, one
or two modules count as a channel each (said in the source) and more give no figure. The
configured rate wins over the rated one (a DDR5-6000 kit runs at 4800 without its XMP
profile, and four modules often run slower than two); the slowest module sets the pace.
"""

from __future__ import annotations

import json
import plistlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gptoss_doctor.probe import smbios
from gptoss_doctor.probe.sources import Sources
from gptoss_doctor.probe.windows import WindowsFacts

_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?):\s*(.*?)\s*$")
_RATE = re.compile(r"^([0-9]{1,6})\s*(MT/s|MHz)$")  # ASCII digits, bounded
_WIDTH = re.compile(r"^([0-9]{1,5})\s*bits$")
_SIZE = re.compile(r"^([0-9]{1,9})\s*(MB|GB|TB|MiB|GiB|TiB)$")
_CHANNEL = re.compile(r"(?:channel|chan)[\s_-]*([a-z0-9]+)", re.IGNORECASE)
_SLOT_LETTER = re.compile(r"DIMM[\s_-]?([A-H])\d", re.IGNORECASE)
_UNITS = {"MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
          "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}
# A module faster than this, or a bandwidth above this, is not a reading but garbage.
MAX_MTS = 20_000
MAX_BYTES_PER_S = 5e12
# dmidecode's "Size: 16 GB" is binary (it prints MB up to 1023, then GB): the unit names
# changed to GiB in dmidecode 3.5 without a change of meaning.
_DMIDECODE_BINARY = {"MB": "MiB", "GB": "GiB", "TB": "TiB"}
_TYPE_NAMES = frozenset(smbios.MEMORY_TYPES.values()) | {"LPDDR5X"}
MAX_PROFILER_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class Module:
    """One populated memory slot."""

    size_bytes: int | None
    rated_mts: int | None
    configured_mts: int | None
    data_width_bits: int | None
    slot: str  # "locator | bank", as the firmware names them
    memory_type: str | None = None  # "DDR4", "LPDDR5", as SMBIOS or macOS names it

    @property
    def mts(self) -> int | None:
        return self.configured_mts or self.rated_mts


@dataclass(frozen=True, slots=True)
class HostBandwidth:
    """A host memory figure: the modules' peak, or a rate measured here (``measured``)."""

    bytes_per_s: float
    source: str
    measured: bool = False


def _rate(text: str | None) -> int | None:
    match = _RATE.match(text or "")
    value = int(match.group(1)) if match else None
    return value if value and value <= MAX_MTS else None


def parse_dmidecode(text: str) -> tuple[Module, ...]:
    """The populated "Memory Device" records of ``dmidecode -t 17`` (or ``-t memory``)."""
    modules = []
    for block in re.split(r"\n\s*\n", text):
        if not any(line.strip() == "Memory Device" for line in block.splitlines()[:3]):
            continue
        fields: dict[str, str] = {}
        for line in block.splitlines():
            match = _FIELD.match(line)
            if match:
                fields.setdefault(match.group(1), match.group(2))
        size = _SIZE.match(fields.get("Size", ""))
        if size is None:
            continue  # "No Module Installed", "Unknown"
        width = _WIDTH.match(fields.get("Data Width", ""))
        unit = _DMIDECODE_BINARY.get(size.group(2), size.group(2))
        modules.append(Module(
            int(size.group(1)) * _UNITS[unit], _rate(fields.get("Speed")),
            _rate(fields.get("Configured Memory Speed") or fields.get("Configured Clock Speed")),
            int(width.group(1)) if width else None,
            f"{fields.get('Locator', '')} | {fields.get('Bank Locator', '')}",
            _memory_type(fields.get("Type"))))
    return tuple(modules)


def _memory_type(name: str | None) -> str | None:
    """A memory type as SMBIOS names them ("lp_ddr4", macOS's older spelling, is LPDDR4)."""
    value = (name or "").upper().replace("_", "")
    return value if value in _TYPE_NAMES else None


def from_devices(devices: Sequence[smbios.MemoryDevice]) -> tuple[Module, ...]:
    """The populated SMBIOS memory devices as modules (empty slots skipped)."""
    return tuple(
        Module(d.size_bytes, _cap(d.rated_mts), _cap(d.configured_mts), d.data_width_bits,
               f"{d.device_locator} | {d.bank_locator}", d.memory_type)
        for d in devices if d.size_bytes is not None)


def _cap(mts: int | None) -> int | None:
    return mts if mts is not None and 0 < mts <= MAX_MTS else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def parse_win32_physical_memory(text: str) -> tuple[Module, ...]:
    """``Get-CimInstance Win32_PhysicalMemory | ConvertTo-Json``: one object, or a list."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return ()
    return modules_of(data if isinstance(data, list) else [data])


def modules_of(items: Sequence[object]) -> tuple[Module, ...]:
    """``Win32_PhysicalMemory`` objects as modules (anything else skipped)."""
    modules = []
    for item in items:
        if not isinstance(item, dict) or _int(item.get("Capacity")) is None:
            continue
        speed, configured = _int(item.get("Speed")), _int(item.get("ConfiguredClockSpeed"))
        modules.append(Module(
            _int(item.get("Capacity")), speed if speed and speed <= MAX_MTS else None,
            configured if configured and configured <= MAX_MTS else None,
            _int(item.get("DataWidth")),
            f"{item.get('DeviceLocator') or ''} | {item.get('BankLabel') or ''}"))
    return tuple(modules)


def channel_of(slot: str) -> str | None:
    """The channel a slot's names say, with what precedes it (socket, node, controller),
    module numbers removed: "DIMM 1 | P0 CHANNEL A" -> "P0 CHANNEL A"; else None."""
    fields = slot.split(" | ")
    for field in fields:
        match = _CHANNEL.search(field)
        if match:
            return re.sub(r"DIMM[\s_-]*\d+", "", field[:match.end()],
                          flags=re.IGNORECASE).upper().strip(" _-")
    for field in fields:
        match = _SLOT_LETTER.search(field)
        if match:
            return (field[:match.start()] + match.group(1)).upper()
    return None


def bandwidth(modules: tuple[Module, ...], how: str) -> HostBandwidth | None:
    """Channels x the slowest module's MT/s x its bus width, or None when unreadable.

    Without channel names, one or two modules are one channel each (boards fill one slot
    per channel first); more than two could share channels, so nothing is claimed."""
    rates = [m.mts for m in modules]
    if not modules or None in rates:
        return None
    mts = min(r for r in rates if r is not None)
    width = min(m.data_width_bits or 64 for m in modules)
    channels = {channel_of(m.slot) for m in modules}
    named = None not in channels
    if not named and len(modules) > 2:
        return None
    n = len(channels) if named else len(modules)
    value = n * mts * 1e6 * width / 8
    if value > MAX_BYTES_PER_S:
        return None
    per = "" if named else " (one channel per module assumed: the slots do not name them)"
    return HostBandwidth(value, f"{len(modules)} modules on {n} channels x {mts} MT/s x "
                         f"{width}-bit{per}, read from {how}")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _mac_size(value: object) -> int | None:
    """macOS's "8 GB" is binary, as dmidecode's is; "empty" and the rest are None."""
    match = _SIZE.match(_text(value))
    if match is None:
        return None
    return int(match.group(1)) * _UNITS[_DMIDECODE_BINARY.get(match.group(2), match.group(2))]


def _plist_items(text: str) -> object:
    """-xml's memory list: the first data type's "_items"."""
    try:
        data = plistlib.loads(text.encode("utf-8", "replace"), fmt=plistlib.FMT_XML)
    except Exception:  # plistlib lets its element handlers' errors through (a bad <date>)
        return None
    first = data[0] if isinstance(data, list) and data else None
    return first.get("_items") if isinstance(first, dict) else None


def _profiler_items(text: str) -> list[object]:
    """The memory data type's list: -json's "SPMemoryDataType", or -xml's first "_items"."""
    if text.lstrip().startswith("<"):
        items = _plist_items(text)
    else:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return []
        items = parsed.get("SPMemoryDataType") if isinstance(parsed, dict) else None
    return items[:smbios.MAX_ENTRIES] if isinstance(items, list) else []


def _mac_slot(slot: object) -> Module | None:
    """An Intel Mac's slot ("BANK 0/ChannelA-DIMM0"), or None when empty or not in use."""
    if not isinstance(slot, dict) or _text(slot.get("dimm_status", "ok")).lower() != "ok":
        return None
    size = _mac_size(slot.get("dimm_size"))
    if size is None:
        return None
    bank, _, locator = _text(slot.get("_name")).rpartition("/")
    return Module(size, _rate(_text(slot.get("dimm_speed"))), None, None,
                  f"{locator} | {bank}", _memory_type(_text(slot.get("dimm_type"))))


def parse_system_profiler(text: str) -> tuple[Module, ...]:
    """``system_profiler -json SPMemoryDataType`` (or ``-xml``): an Intel Mac's populated
    slots, or Apple silicon's unified memory as one module without a rate (no figure)."""
    if len(text) > MAX_PROFILER_CHARS:
        return ()
    modules: list[Module] = []
    for item in _profiler_items(text):
        if not isinstance(item, dict):
            continue
        slots = item.get("_items")
        if isinstance(slots, list):
            found = (_mac_slot(slot) for slot in slots[:smbios.MAX_ENTRIES])
            modules.extend(m for m in found if m is not None)
        elif (size := _mac_size(item.get("SPMemoryDataType"))) is not None:
            modules.append(Module(size, None, None, None, "",
                                  _memory_type(_text(item.get("dimm_type")))))
    return tuple(modules)


def _read_linux(sources: Sources) -> tuple[HostBandwidth | None, str | None]:
    if sources.which("dmidecode"):
        done = sources.run(["dmidecode", "-t", "17"])
        if done is not None and done.returncode == 0:
            return bandwidth(parse_dmidecode(done.stdout), "dmidecode (SMBIOS type 17)"), None
    devices, why = smbios.read_devices(sources)  # without dmidecode, or without root
    if devices is None:
        return None, why
    return bandwidth(from_devices(devices), f"{smbios.ENTRIES} (SMBIOS type 17)"), None


def _read_mac(sources: Sources) -> tuple[Module, ...]:
    """-json (macOS 10.15 and later), and -xml only where -json was refused as an option:
    not after an answer (Apple silicon lists no speed) or no answer at all (a timeout)."""
    for form in ("-json", "-xml"):
        done = sources.run(["system_profiler", form, "SPMemoryDataType"], timeout_s=10.0)
        if done is None:
            return ()
        if done.returncode == 0:
            return parse_system_profiler(done.stdout)
    return ()


def read_with_reason(sources: Sources, system: str, windows: WindowsFacts | None = None
                     ) -> tuple[HostBandwidth | None, str | None]:
    """This machine's module bandwidth, or None and, where known, why the modules could
    not be read (``windows``: what ``probe.windows.read`` returned on Windows)."""
    if system == "Linux":
        return _read_linux(sources)
    if system == "Windows" and windows is not None:
        return bandwidth(modules_of(windows.memory), "Win32_PhysicalMemory"), None
    if system == "Darwin":
        return bandwidth(_read_mac(sources), "system_profiler"), None
    return None, None


def read(sources: Sources, system: str, windows: WindowsFacts | None = None
         ) -> HostBandwidth | None:
    """This machine's module bandwidth, or None where the modules cannot be read."""
    return read_with_reason(sources, system, windows)[0]
