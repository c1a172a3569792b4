"""Hostile memory-module listings: system_profiler JSON made here from the shape of the
public Intel Mac output (tests/fixtures/dimm/SOURCE.md), dmidecode lines, and SMBIOS bytes
edited from the public listing in tests/fixtures/dimm. An overlong or non-ASCII number gives
no figure, never a traceback; a zero size is no module.
"""

from __future__ import annotations

import json
import re

import pytest

from gptoss_doctor.probe import dimm, smbios

from conftest import FIXTURES

ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _mac(size: str, speed: str) -> str:
    slot = {"_name": "BANK 0/ChannelA-DIMM0", "dimm_size": size, "dimm_speed": speed,
            "dimm_status": "ok", "dimm_type": "DDR3"}
    return json.dumps({"SPMemoryDataType": [{"_items": [slot]}]})


@pytest.mark.parametrize(("size", "speed"), [
    ("9" * 5000 + " GB", "1067 MHz"),
    ("4 GB", "9" * 5000 + " MHz"),
    ("9" * 5000 + " GB", "9" * 5000 + " MHz"),
])
def test_overlong_numbers_in_system_profiler_give_no_figure(size: str, speed: str) -> None:
    assert dimm.bandwidth(dimm.parse_system_profiler(_mac(size, speed)), "x") is None


def test_non_ascii_digits_in_system_profiler_are_no_number() -> None:
    assert dimm.bandwidth(dimm.parse_system_profiler(_mac("4 GB", "1067 MHz")), "x") is not None
    text = _mac("4 GB".translate(ARABIC), "1067 MHz".translate(ARABIC))
    assert dimm.parse_system_profiler(text) == ()


@pytest.mark.parametrize("line", [
    "\tSize: " + "9" * 5000 + " GB",
    "\tSpeed: " + "9" * 5000 + " MT/s",
    "\tData Width: " + "9" * 5000 + " bits",
])
def test_overlong_numbers_in_dmidecode_give_no_figure(line: str) -> None:
    fields = {"Size": "\tSize: 8 GB", "Speed": "\tSpeed: 3200 MT/s",
              "Data Width": "\tData Width: 64 bits"}
    fields[line.split(":")[0].strip()] = line
    text = "Handle 0x0040, DMI type 17, 40 bytes\nMemory Device\n" + "\n".join(
        [*fields.values(), "\tLocator: DIMM 0", "\tBank Locator: P0 CHANNEL A"]) + "\n"
    found = dimm.bandwidth(dimm.parse_dmidecode(text), "x")
    assert found is None or found.bytes_per_s == 3200e6 * 8


_HEX = re.compile(r"^(?:[0-9A-F]{2} )*[0-9A-F]{2}$")


def _surface_entries() -> list[bytes]:
    """The two type 17 structures of tests/fixtures/dimm/surface-laptop-3.dmidecode-u (a
    public ``dmidecode -u`` listing, SOURCE.md there) as their sysfs ``raw`` bytes."""
    dump = (FIXTURES / "dimm" / "surface-laptop-3.dmidecode-u").read_text()
    return [bytes.fromhex(" ".join(line.strip() for line in block.splitlines()
                                   if _HEX.match(line.strip()))) + b"\x00"
            for block in dump.split("\n\n") if "DMI type 17," in block]


def test_a_zero_size_in_kilobytes_is_an_empty_slot_not_a_module() -> None:
    first, second = _surface_entries()
    zero = bytearray(second)
    zero[0x0C:0x0E] = (0x8000).to_bytes(2, "little")  # granularity bit, 0 KB
    device = smbios.parse_memory_device(bytes(zero))
    assert device is not None and device.size_bytes is None
    read = [smbios.parse_memory_device(raw) for raw in (first, bytes(zero))]
    modules = dimm.from_devices([d for d in read if d is not None])
    assert len(modules) == 1  # the populated slot only
