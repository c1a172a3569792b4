"""Host memory bandwidth from the memory modules fitted: channels x MT/s x bus width.

The firmware's SMBIOS type-17 records (one per slot) give each module's size, rated and
configured transfer rate, data width and where it sits. They are read through
``dmidecode -t 17`` on Linux (root only: without it the command fails and the probe falls
back to the platform table) and ``Get-CimInstance Win32_PhysicalMemory`` on Windows
(any user; fetched with the GPUs by ``probe.windows``). Parsers are pure functions of the
text; ``read`` fetches it through the injected ``Sources``.

Channels are counted from the slot names where they say so ("P0 CHANNEL A",
"P1_Node1_Channel0_Dimm1", "Controller0-DIMMA2", "ChannelB-DIMM0"); two modules on one
channel add capacity, not bandwidth. Where no name says which channel a module is on, one
or two modules count as a channel each (said in the source) and more give no figure. The
configured rate wins over the rated one (a DDR5-6000 kit runs at 4800 without its XMP
profile, and four modules often run slower than two); the slowest module sets the pace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gptoss_doctor.probe.sources import Sources
from gptoss_doctor.probe.windows import WindowsFacts

_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?):\s*(.*?)\s*$")
_RATE = re.compile(r"^(\d+)\s*(MT/s|MHz)$")
_WIDTH = re.compile(r"^(\d+)\s*bits$")
_SIZE = re.compile(r"^(\d+)\s*(MB|GB|TB|MiB|GiB|TiB)$")
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


@dataclass(frozen=True, slots=True)
class Module:
    """One populated memory slot."""

    size_bytes: int | None
    rated_mts: int | None
    configured_mts: int | None
    data_width_bits: int | None
    slot: str  # "locator | bank", as the firmware names them

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
            f"{fields.get('Locator', '')} | {fields.get('Bank Locator', '')}"))
    return tuple(modules)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def parse_win32_physical_memory(text: str) -> tuple[Module, ...]:
    """``Get-CimInstance Win32_PhysicalMemory | ConvertTo-Json``: one object, or a list."""
    try:
        data = json.loads(text)
    except ValueError:
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


def read(sources: Sources, system: str, windows: WindowsFacts | None = None
         ) -> HostBandwidth | None:
    """This machine's module bandwidth, or None where the modules cannot be read
    (``windows``: what ``probe.windows.read`` returned on Windows)."""
    if system == "Linux" and sources.which("dmidecode"):
        done = sources.run(["dmidecode", "-t", "17"])
        if done is not None and done.returncode == 0:
            return bandwidth(parse_dmidecode(done.stdout), "dmidecode (SMBIOS type 17)")
    if system == "Windows" and windows is not None:
        return bandwidth(modules_of(windows.memory), "Win32_PhysicalMemory")
    return None
