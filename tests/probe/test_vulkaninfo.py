"""An Intel Arc card's memory from ``vulkaninfo`` where the driver's sysfs has none.

The machine ``fixtures/machines/linux-arc-a770-mainline`` (its SOURCE.md names the public
vulkaninfo output it is transcribed from) is replayed through ``ReplaySources``; hostile
listings are written into copies of it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.probe import gpu_sysfs, vulkaninfo
from gptoss_doctor.probe.model import GpuInfo, HardwareSnapshot, Note
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.probe.sources import CommandResult
from gptoss_doctor.settings import current

from conftest import FIXTURES, MACHINES

ARC = MACHINES / "linux-arc-a770-mainline"
LISTING = (ARC / "commands" / "vulkaninfo.out").read_text()
A770_HEAP = 17079205888  # 16288 MiB
A770_BUDGET = 15371075584
LLVMPIPE = """GPU1:
VkPhysicalDeviceProperties:
---------------------------
\tvendorID          = 0x10005
\tdeviceID          = 0x0000
\tdeviceType        = PHYSICAL_DEVICE_TYPE_CPU
\tdeviceName        = llvmpipe (LLVM 15.0.7, 256 bits)

VkPhysicalDeviceMemoryProperties:
=================================
memoryHeaps: count = 1
\tmemoryHeaps[0]:
\t\tsize   = 50521141248 (0xbc3400000) (47.05 GiB)
\t\tflags: count = 1
\t\t\tMEMORY_HEAP_DEVICE_LOCAL_BIT
memoryTypes: count = 1
"""


def _machine(tmp_path: Path, listing: str | None = LISTING, which: bool = True,
             rc: int | None = None) -> Path:
    """A copy of the A770 machine with another listing (None: vulkaninfo never answers),
    without vulkaninfo installed (``which=False``) or with an exit code."""
    folder = tmp_path / "machine"
    shutil.copytree(ARC, folder)
    out = folder / "commands" / "vulkaninfo.out"
    if listing is None:
        out.unlink()
    else:
        out.write_text(listing)
    if rc is not None:
        out.with_suffix(".rc").write_text(str(rc))
    if not which:
        data = json.loads((folder / "machine.json").read_text())
        data["which"] = {}
        (folder / "machine.json").write_text(json.dumps(data))
    return folder


def _snap(folder: Path) -> HardwareSnapshot:
    return snapshot(ReplaySources(folder), current({"HOME": "/home/user"}))


def _arc(snap: HardwareSnapshot) -> GpuInfo:
    (gpu,) = snap.gpus
    assert gpu.name == "Intel Arc A770" and gpu.discrete is True
    return gpu


def _unknown_and_said(snap: HardwareSnapshot, reason: str) -> None:
    """The card keeps unknown memory, the sysfs warning stays, and vulkaninfo says why."""
    gpu = _arc(snap)
    assert gpu.vram_total_bytes is None and gpu.vram_free_bytes is None
    assert any(n.source == "sysfs" and n.severity == "warning" and "cannot plan" in n.message
               for n in snap.notes)
    said = [n.message for n in snap.notes if n.source == "vulkaninfo"]
    assert len(said) == 1 and said[0].startswith("Intel Arc A770: ") and reason in said[0]


def test_the_recorded_listing_parses_into_one_discrete_device_with_two_heaps() -> None:
    (device,) = vulkaninfo.parse_vulkaninfo(LISTING)
    assert device.name == "Intel(R) Arc(tm) A770 Graphics (DG2)"
    assert (device.vendor_id, device.device_id, device.discrete) == (0x8086, 0x56A0, True)
    assert [(h.size, h.device_local) for h in device.heaps] == [
        (A770_HEAP, True), (50521141248, False)]
    assert vulkaninfo.device_memory(device) == (A770_HEAP, A770_BUDGET, None)


def test_mainline_arc_gets_its_memory_from_vulkaninfo_and_says_so() -> None:
    snap = _snap(ARC)
    gpu = _arc(snap)
    assert gpu.vram_total_bytes == A770_HEAP and gpu.vram_free_bytes == A770_BUDGET
    assert gpu.pci_bus_id == "0000:03:00.0" and gpu.source == "sysfs"
    (note,) = [n for n in snap.notes if n.source in ("sysfs", "vulkaninfo")]
    assert note == Note("vulkaninfo", "Intel Arc A770: 15.91 GiB of VRAM from vulkaninfo "
                        "(its driver publishes no size in sysfs)")


def test_other_devices_in_the_listing_are_not_taken_for_the_card(tmp_path: Path) -> None:
    """llvmpipe (a CPU device with a big device-local heap) listed first and after."""
    arc_block = LISTING[LISTING.index("GPU0:"):]
    listing = LLVMPIPE.replace("GPU1:", "GPU0:") + arc_block.replace("GPU0:", "GPU1:")
    assert _arc(_snap(_machine(tmp_path, listing))).vram_total_bytes == A770_HEAP
    assert _arc(_snap(_machine(tmp_path / "b", LISTING + LLVMPIPE))).vram_total_bytes \
        == A770_HEAP


def test_ids_printed_in_decimal_match_too(tmp_path: Path) -> None:
    listing = LISTING.replace("vendorID          = 0x8086", "vendorID          = 32902") \
        .replace("deviceID          = 0x56a0", "deviceID          = 22176 (0x56a0)")
    (device,) = vulkaninfo.parse_vulkaninfo(listing)
    assert (device.vendor_id, device.device_id) == (0x8086, 0x56A0)
    assert _arc(_snap(_machine(tmp_path, listing))).vram_total_bytes == A770_HEAP


def test_a_small_bar_window_heap_beside_vram_is_not_the_size(tmp_path: Path) -> None:
    """Resizable BAR off: a second, 256 MiB device-local heap; the largest one counts."""
    window = ("\tmemoryHeaps[2]:\n\t\tsize   = 268435456 (0x10000000) (256.00 MiB)\n"
              "\t\tbudget = 268435456 (0x10000000) (256.00 MiB)\n\t\tflags: count = 1\n"
              "\t\t\tMEMORY_HEAP_DEVICE_LOCAL_BIT\n")
    listing = LISTING.replace("count = 2\n", "count = 3\n", 1).replace(
        "memoryTypes: count", window + "memoryTypes: count")
    (device,) = vulkaninfo.parse_vulkaninfo(listing)
    assert len(device.heaps) == 3
    assert _arc(_snap(_machine(tmp_path, listing))).vram_total_bytes == A770_HEAP


def test_a_budget_above_the_heap_is_dropped_and_the_size_kept(tmp_path: Path) -> None:
    listing = LISTING.replace("budget = 15371075584", "budget = 50206003200")
    gpu = _arc(_snap(_machine(tmp_path, listing)))
    assert gpu.vram_total_bytes == A770_HEAP and gpu.vram_free_bytes is None


def test_no_budget_line_gives_the_size_without_a_free_figure(tmp_path: Path) -> None:
    listing = "".join(line for line in LISTING.splitlines(keepends=True)
                      if "budget" not in line)
    gpu = _arc(_snap(_machine(tmp_path, listing)))
    assert gpu.vram_total_bytes == A770_HEAP and gpu.vram_free_bytes is None


@pytest.mark.parametrize(("size", "reason"), [
    (str(2**50), "implausible device-local heap"),
    ("268435456", "implausible device-local heap"),
    ("99999999999999999999", "implausible device-local heap"),
])
def test_an_implausible_heap_size_is_unknown(tmp_path: Path, size: str, reason: str) -> None:
    listing = LISTING.replace("size   = 17079205888", f"size   = {size}")
    _unknown_and_said(_snap(_machine(tmp_path, listing)), reason)


@pytest.mark.parametrize("cut", [
    "\tdeviceType", "\t\tsize   = 17079205888", "\t\t\tMEMORY_HEAP_DEVICE_LOCAL_BIT",
    "\tdeviceID", "\tvendorID",
], ids=["no device type", "no heap size", "no device-local flag", "no device id",
        "no vendor id"])
def test_a_listing_missing_a_field_gives_no_memory(tmp_path: Path, cut: str) -> None:
    listing = "".join(line for line in LISTING.splitlines(keepends=True)
                      if not line.startswith(cut))
    snap = _snap(_machine(tmp_path, listing))
    assert _arc(snap).vram_total_bytes is None
    assert any(n.source == "vulkaninfo" for n in snap.notes)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.62, 0.7, 0.85])
def test_truncated_output_gives_no_figure_until_the_heap_list_is_whole(tmp_path: Path,
                                                                       keep: float) -> None:
    """Cut inside the heaps (even after a complete device-local heap 0: a larger heap might
    follow) gives unknown; cut after the list, the figure."""
    listing = LISTING[:int(len(LISTING) * keep)]
    gpu = _arc(_snap(_machine(tmp_path, listing)))
    whole = "memoryTypes" in listing
    assert gpu.vram_total_bytes == (A770_HEAP if whole else None)
    assert whole == (keep == 0.85)


def test_output_past_the_read_limit_is_ignored(tmp_path: Path) -> None:
    padding = "x" * vulkaninfo.MAX_TEXT_CHARS + "\n"
    _unknown_and_said(_snap(_machine(tmp_path, padding + LISTING)), "no device with its memory")


@pytest.mark.parametrize("listing", [
    "", "\x00\x01\x02 garbage", "GPU0:\n" * 50_000, "memoryHeaps[0]:\n\tsize = 1\n" * 1000,
    LISTING.replace("memoryHeaps[1]", "memoryHeaps[0]"),
    LISTING.replace("memoryHeaps[1]", "memoryHeaps[7]"),
    LISTING.replace("memoryHeaps: count = 2", "memoryHeaps: count = 3"),
], ids=["empty", "binary", "headers only", "heaps only", "repeated heap", "gap in heaps",
        "fewer heaps than stated"])
def test_garbage_listings_are_unknown_never_a_traceback(tmp_path: Path, listing: str) -> None:
    assert _arc(_snap(_machine(tmp_path, listing))).vram_total_bytes is None


def test_vulkaninfo_not_installed_says_how_to_get_it(tmp_path: Path) -> None:
    _unknown_and_said(_snap(_machine(tmp_path, which=False)), "install vulkan-tools")


def test_vulkaninfo_that_never_answers_is_bounded_and_said(tmp_path: Path) -> None:
    _unknown_and_said(_snap(_machine(tmp_path, listing=None)), "did not answer within 10 s")


def test_a_failed_vulkaninfo_run_says_its_exit_code(tmp_path: Path) -> None:
    _unknown_and_said(_snap(_machine(tmp_path, listing="", rc=1)), "(exit code 1)")


def test_a_listing_of_another_card_does_not_size_this_one(tmp_path: Path) -> None:
    listing = LISTING.replace("deviceID          = 0x56a0", "deviceID          = 0x56a1")
    _unknown_and_said(_snap(_machine(tmp_path, listing)), "no discrete device 8086:56a0")


def test_an_integrated_device_with_the_same_ids_is_not_taken(tmp_path: Path) -> None:
    listing = LISTING.replace("TYPE_DISCRETE_GPU", "TYPE_INTEGRATED_GPU")
    _unknown_and_said(_snap(_machine(tmp_path, listing)), "no discrete device")


def _two_cards(second_size: int, buses: tuple[str, str] | None) -> str:
    """Two A770 blocks, the second with another heap size, with or without PCI addresses."""
    first = LISTING[LISTING.index("GPU0:"):]
    second = first.replace("GPU0:", "GPU1:").replace(
        "size   = 17079205888", f"size   = {second_size}")
    if buses is not None:
        bus_info = ("VkPhysicalDevicePCIBusInfoPropertiesEXT:\n-----\n\tpciDomain   = 0\n"
                    "\tpciBus      = {}\n\tpciDevice   = 0\n\tpciFunction = 0\n\n")
        first = first.replace("\nVkPhysicalDeviceMemory", "\n" + bus_info.format(buses[0])
                              + "VkPhysicalDeviceMemory")
        second = second.replace("\nVkPhysicalDeviceMemory", "\n" + bus_info.format(buses[1])
                                + "VkPhysicalDeviceMemory")
    return first + second


def test_two_cards_of_one_model_are_told_apart_by_pci_address(tmp_path: Path) -> None:
    """The sysfs card sits at 0000:03:00.0; vulkaninfo prints the bus in decimal."""
    gpu = _arc(_snap(_machine(tmp_path, _two_cards(8 * 1024**3, ("4", "3")))))
    assert gpu.vram_total_bytes == 8 * 1024**3


def test_two_cards_of_one_model_without_addresses_must_agree(tmp_path: Path) -> None:
    _unknown_and_said(_snap(_machine(tmp_path, _two_cards(8 * 1024**3, None))),
                      "several such cards with different memory")
    same = _arc(_snap(_machine(tmp_path / "b", _two_cards(A770_HEAP, None))))
    assert same.vram_total_bytes == A770_HEAP and same.vram_free_bytes is None


class _NoRun(ReplaySources):
    """A replayed machine on which running vulkaninfo fails the test."""

    def run(self, argv: list[str], timeout_s: float = 5.0) -> CommandResult | None:
        raise AssertionError(f"ran {argv}")

    def which(self, name: str) -> str | None:
        raise AssertionError(f"looked for {name}")


@pytest.mark.parametrize("folder", [
    FIXTURES / "intel-arc" / "a770-i915-backport", FIXTURES / "intel-arc" / "b580-xe",
    MACHINES / "amd-rx6800-linux", MACHINES / "laptop-rtx4060-8gb-igpu",
])
def test_vulkaninfo_runs_only_for_a_card_without_a_figure(folder: Path) -> None:
    sources = _NoRun(folder)
    gpus, notes = gpu_sysfs.read_drm_gpus(sources)
    assert vulkaninfo.fill_missing_vram(sources, gpus, notes) == (gpus, notes)


def test_the_mainline_a750_tree_without_a_listing_says_vulkaninfo_is_missing() -> None:
    """The sysfs-only A750 tree records no vulkaninfo: the reader says so, nothing else."""
    sources = ReplaySources(FIXTURES / "intel-arc" / "a750-xe-mainline")
    gpus, notes = gpu_sysfs.read_drm_gpus(sources)
    filled, with_notes = vulkaninfo.fill_missing_vram(sources, gpus, notes)
    assert filled == gpus and with_notes[:-1] == notes
    assert with_notes[-1].source == "vulkaninfo" and "vulkan-tools" in with_notes[-1].message


def _device(**changes: Any) -> vulkaninfo.VulkanDevice:
    (device,) = vulkaninfo.parse_vulkaninfo(LISTING)
    return vulkaninfo.VulkanDevice(**{**{f: getattr(device, f) for f in device.__slots__},
                                      **changes})


def test_device_memory_needs_a_device_local_heap() -> None:
    host_only = (vulkaninfo.Heap(A770_HEAP, None, False),)
    assert vulkaninfo.device_memory(_device(heaps=host_only)) == (
        None, None, "no device-local memory heap")
