"""SMBIOS type 17 (Memory Device) structures, decoded from their bytes (DMTF DSP0134).

Linux exposes every structure of the firmware's table as ``/sys/firmware/dmi/entries/
<type>-<n>/raw``: the formatted area (its length is the second byte) followed by the
structure's strings, each NUL-terminated, the set ending with a second NUL. The files are
readable by root only, like ``dmidecode``; the probe reads them where dmidecode is missing
or fails. Everything is bounded and checked: a structure that does not hold together gives
``None``, never an exception.

Offsets used (a field exists only where the formatted area is long enough for it):
0x08 total width, 0x0A data width, 0x0C size (0x7FFF: extended size at 0x1C), 0x10 device
locator string, 0x11 bank locator string, 0x12 memory type, 0x15 speed (0xFFFF: extended
speed at 0x54), 0x20 configured memory speed (0xFFFF: extended at 0x58).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gptoss_doctor.probe.sources import Sources

MEMORY_DEVICE = 17
ENTRIES = "/sys/firmware/dmi/entries"
MAX_ENTRIES = 256
MAX_ENTRY_BYTES = 4096
MIN_LENGTH = 0x15  # the formatted area of SMBIOS 2.1, the oldest with this structure
MAX_WIDTH_BITS = 1024
_ENTRY = re.compile(r"^17-(\d{1,4})$")
MEMORY_TYPES = {0x12: "DDR", 0x13: "DDR2", 0x14: "DDR2 FB-DIMM", 0x18: "DDR3",
                0x19: "FBD2", 0x1A: "DDR4", 0x1B: "LPDDR", 0x1C: "LPDDR2", 0x1D: "LPDDR3",
                0x1E: "LPDDR4", 0x20: "HBM", 0x21: "HBM2", 0x22: "DDR5", 0x23: "LPDDR5",
                0x24: "HBM3"}


@dataclass(frozen=True, slots=True)
class MemoryDevice:
    """One type 17 structure. ``size_bytes`` None: an empty slot or an unknown size."""

    size_bytes: int | None
    rated_mts: int | None  # 0 ("unknown") and 0xFFFF without an extended value are None
    configured_mts: int | None
    data_width_bits: int | None
    total_width_bits: int | None
    memory_type: str | None
    device_locator: str
    bank_locator: str


def _field(raw: bytes, length: int, offset: int, size: int) -> int | None:
    """The little-endian field at ``offset`` if the formatted area holds it."""
    if offset + size > length:
        return None
    return int.from_bytes(raw[offset:offset + size], "little")


def _strings(tail: bytes) -> tuple[str, ...] | None:
    """The string set after the formatted area; None if it is not double-NUL terminated."""
    end = tail.find(b"\x00\x00")
    if end < 0:
        return None
    if end == 0:
        return ()
    return tuple(s.decode("ascii", "replace").strip() for s in tail[:end].split(b"\x00"))


def _size(raw: bytes, length: int) -> int | None:
    value = _field(raw, length, 0x0C, 2)
    if value is None or value in (0, 0xFFFF):
        return None
    if value == 0x7FFF:
        extended = _field(raw, length, 0x1C, 4)
        mib = (extended or 0) & 0x7FFFFFFF
        return mib * 1024**2 if mib else None
    if value & 0x8000:
        return (value & 0x7FFF) * 1024 or None  # granularity bit: kilobytes (0: none)
    return value * 1024**2


def _speed(raw: bytes, length: int, offset: int, extended_at: int) -> int | None:
    value = _field(raw, length, offset, 2)
    if value == 0xFFFF:
        value = (_field(raw, length, extended_at, 4) or 0) & 0x7FFFFFFF
    return value or None


def _width(raw: bytes, length: int, offset: int) -> int | None:
    value = _field(raw, length, offset, 2)
    return None if value in (None, 0, 0xFFFF) else value


def parse_memory_device(raw: bytes) -> MemoryDevice | None:
    """One ``raw`` entry as a memory device, or None where the bytes do not hold together
    (another type, a length byte outside the entry, no string-set terminator, widths no
    memory has)."""
    if not 4 <= len(raw) <= MAX_ENTRY_BYTES or raw[0] != MEMORY_DEVICE:
        return None
    length = raw[1]
    if length < MIN_LENGTH or length + 2 > len(raw):
        return None
    strings = _strings(raw[length:])
    if strings is None:
        return None
    data, total = _width(raw, length, 0x0A), _width(raw, length, 0x08)
    if any(w is not None and w > MAX_WIDTH_BITS for w in (data, total)):
        return None

    def text(offset: int) -> str:
        index = _field(raw, length, offset, 1) or 0
        return strings[index - 1] if 0 < index <= len(strings) else ""

    return MemoryDevice(
        _size(raw, length), _speed(raw, length, 0x15, 0x54), _speed(raw, length, 0x20, 0x58),
        data, total, MEMORY_TYPES.get(_field(raw, length, 0x12, 1) or 0), text(0x10),
        text(0x11))


def entry_names(listing: tuple[str, ...]) -> tuple[str, ...] | None:
    """The type 17 entries of a listing in table order; None past ``MAX_ENTRIES``."""
    found = sorted((int(m.group(1)), name) for name in listing
                   if (m := _ENTRY.match(name)) is not None)
    if len(found) > MAX_ENTRIES:
        return None
    return tuple(name for _, name in found)


def read_devices(sources: Sources) -> tuple[tuple[MemoryDevice, ...] | None, str | None]:
    """Every type 17 structure under ``ENTRIES``, or None and why not (None, None where
    the folder is not there)."""
    listing = sources.list_dir(ENTRIES)
    if listing is None:
        return None, None
    names = entry_names(listing)
    if names is None:
        return None, f"{ENTRIES} lists more than {MAX_ENTRIES} memory devices"
    devices = []
    for name in names:
        read = sources.read_bytes(f"{ENTRIES}/{name}/raw", MAX_ENTRY_BYTES + 1)
        if read.denied:
            return None, (f"{ENTRIES} is readable by root only (as is dmidecode): "
                          "the memory modules were not read")
        device = parse_memory_device(read.data) if read.data is not None else None
        if device is None:
            return None, f"{ENTRIES}/{name}/raw is not a readable memory device"
        devices.append(device)
    return tuple(devices), None
