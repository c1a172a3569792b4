"""Hostile ``vulkaninfo`` listings: edits, made here, of the recorded A770 listing
(``fixtures/machines/linux-arc-a770-mainline``; its SOURCE.md names the public output it is
transcribed from). Each gives the card's memory or "unknown", never a traceback or a
figure taken from another line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptoss_doctor.probe import vulkaninfo
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES

LISTING = (MACHINES / "linux-arc-a770-mainline" / "commands" / "vulkaninfo.out").read_text()
A770_HEAP = 17079205888


def _only(text: str) -> vulkaninfo.VulkanDevice:
    (device,) = vulkaninfo.parse_vulkaninfo(text)
    return device


@pytest.mark.parametrize(("old", "new"), [
    ("= 0x56a0", "= 022176"),  # a decimal id with a leading zero
    ("= 0x8086", "= 032902"),
])
def test_decimal_ids_with_leading_zeros_read_as_decimal(old: str, new: str) -> None:
    assert old in LISTING
    device = _only(LISTING.replace(old, new))
    assert (device.vendor_id, device.device_id) == (0x8086, 0x56A0)


def test_a_heap_size_with_a_leading_zero_is_read_not_raised() -> None:
    assert f"= {A770_HEAP}" in LISTING
    device = _only(LISTING.replace(f"= {A770_HEAP}", f"= 0{A770_HEAP}", 1))
    assert vulkaninfo.device_memory(device)[0] == A770_HEAP


def test_a_size_in_non_ascii_digits_is_not_a_size() -> None:
    arabic = str(A770_HEAP).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert vulkaninfo.parse_vulkaninfo(LISTING.replace(str(A770_HEAP), arabic, 1)) == ()


def test_an_id_in_non_ascii_digits_is_unknown() -> None:
    device = _only(LISTING.replace("= 0x56a0", "= ٢٢١٧٦"))
    assert device.device_id is None


@pytest.mark.parametrize("key", ["deviceName", "deviceType"])
def test_an_empty_value_does_not_take_the_next_line(key: str) -> None:
    lines = LISTING.splitlines(keepends=True)
    (at,) = [i for i, line in enumerate(lines) if line.strip().startswith(f"{key} ")]
    lines[at] = lines[at].split("=")[0] + "=\n"
    device = _only("".join(lines))
    if key == "deviceName":
        assert (device.name, device.discrete) == (None, True)
    else:  # no device type: not taken for a discrete card, its name still read
        assert (device.name, device.discrete) == ("Intel(R) Arc(tm) A770 Graphics (DG2)", False)


def test_blank_lines_up_to_the_read_limit_are_read_through() -> None:
    """2 M whitespace-only lines inside one device's block (a pattern that let a line's
    leading whitespace run over line ends made this take hours)."""
    head, sep, tail = LISTING.partition("VkPhysicalDeviceMemoryProperties")
    padding = " \n" * ((vulkaninfo.MAX_TEXT_CHARS - len(LISTING)) // 2 - 1)
    device = _only(head + padding + sep + tail)
    assert vulkaninfo.device_memory(device)[0] == A770_HEAP


def test_a_long_run_of_spaces_inside_a_value_is_read_through() -> None:
    """A 4 MiB line (a lazily matched value made this take hours); the name is cut to 200."""
    name = "Intel(R) Arc(tm) A770 Graphics (DG2)"
    device = _only(LISTING.replace(name, "A" + " " * (vulkaninfo.MAX_TEXT_CHARS // 2) + "B"))
    assert device.name == "A" + " " * 199


def test_a_second_card_of_the_same_model_left_unsized_keeps_its_warning(
        tmp_path: Path) -> None:
    """Two A770s (sysfs card0 at 0000:03:00.0, card1 added here at 0000:04:00.0); the
    listing, as the recorded one with a PCI bus info block added, has only card0's."""
    folder = tmp_path / "machine"
    shutil.copytree(MACHINES / "linux-arc-a770-mainline", folder)
    drm = folder / "fs" / "sys" / "class" / "drm"
    shutil.copytree(drm / "card0", drm / "card1")
    uevent = drm / "card1" / "device" / "uevent"
    uevent.write_text(uevent.read_text().replace("0000:03:00.0", "0000:04:00.0"))
    bus = ("VkPhysicalDevicePCIBusInfoPropertiesEXT:\n-----\n\tpciDomain   = 0\n"
           "\tpciBus      = 3\n\tpciDevice   = 0\n\tpciFunction = 0\n\n")
    (folder / "commands" / "vulkaninfo.out").write_text(
        LISTING.replace("\nVkPhysicalDeviceMemory", "\n" + bus + "VkPhysicalDeviceMemory", 1))
    snap = snapshot(ReplaySources(folder), current({"HOME": "/home/user"}))
    assert [g.vram_total_bytes for g in snap.gpus] == [A770_HEAP, None]
    warnings = [n.message for n in snap.notes if n.severity == "warning"]
    assert len(warnings) == 1 and "unknown VRAM" in warnings[0]
