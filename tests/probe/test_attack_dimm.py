"""Hostile memory-module listings: system_profiler JSON made here from the shape of the
public Intel Mac output (tests/fixtures/dimm/SOURCE.md), and dmidecode lines. An overlong or
non-ASCII number gives no figure, never a traceback.
"""

from __future__ import annotations

import json

import pytest

from gptoss_doctor.probe import dimm

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
