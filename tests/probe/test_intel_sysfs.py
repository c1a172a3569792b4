"""Intel GPUs from Linux sysfs: Arc cards are discrete with their VRAM where the driver
publishes it, integrated graphics share RAM, and bad files give "unknown".

The trees under ``fixtures/intel-arc`` (their SOURCE.md names where each value comes from)
are replayed through ``ReplaySources``; hostile values are written into copies of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptoss_doctor.install import bandwidth
from gptoss_doctor.probe import gpu_sysfs
from gptoss_doctor.probe.model import GpuInfo, Note
from gptoss_doctor.probe.replay import ReplaySources

from conftest import FIXTURES

ARC = FIXTURES / "intel-arc"
MIB = 1024**2
DRM = ("fs", "sys", "class", "drm")


def _read(folder: Path) -> tuple[tuple[GpuInfo, ...], tuple[Note, ...]]:
    return gpu_sysfs.read_drm_gpus(ReplaySources(folder))


def _copy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(ARC / name, folder)
    return folder


def test_a770_on_intels_i915_gives_its_local_memory_and_what_is_free() -> None:
    gpus, notes = _read(ARC / "a770-i915-backport")
    arc, igpu = gpus
    assert arc.name == "Intel Arc A770" and arc.vendor == "intel" and arc.discrete is True
    assert arc.vram_total_bytes == 16288 * MIB  # xpu-smi's "16288MiB"
    assert arc.vram_free_bytes == (16288 - 3642) * MIB
    assert not arc.unified_memory and arc.pci_bus_id == "0000:03:00.0" and arc.index == 0
    # The iGPU at 00:02.0 shares RAM and is said not to be planned; the Arc needs no note.
    assert igpu.name == "Raptor Lake-S GT1 [UHD Graphics 770]"
    assert igpu.discrete is False and igpu.unified_memory and igpu.vram_total_bytes is None
    assert [n.message.split(":")[0] for n in notes] == [igpu.name]
    assert "integrated" in notes[0].message and notes[0].severity == "info"


def test_b580_on_xe_sums_its_tiles_and_has_no_free_figure() -> None:
    (gpu,), notes = _read(ARC / "b580-xe")
    assert gpu.name == "Intel Arc B580" and gpu.discrete is True
    assert gpu.vram_total_bytes == 0x300000000  # dmesg "Total VRAM: 0x0000000300000000"
    assert gpu.vram_free_bytes is None and notes == ()


def test_a750_on_mainline_xe_is_discrete_with_unknown_vram_and_says_why() -> None:
    (gpu,), (note,) = _read(ARC / "a750-xe-mainline")
    assert gpu.name == "Intel Arc A750" and gpu.discrete is True
    assert gpu.vram_total_bytes is None and gpu.vram_free_bytes is None
    assert note.severity == "warning" and note.message.startswith("Intel Arc A750:")
    assert "xe driver publishes no VRAM size" in note.message
    assert "cannot plan" in note.message


def test_two_tiles_add_up(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "b580-xe")
    tile1 = folder.joinpath(*DRM, "card0", "device", "tile1")
    tile1.mkdir()
    (tile1 / "physical_vram_size_bytes").write_text("12884901888\n")
    (gpu,), _ = _read(folder)
    assert gpu.vram_total_bytes == 2 * 12884901888


@pytest.mark.parametrize("value", [
    "garbage", "-17079205888", "0x3f8000000", "１２３４５６７８９０", "9" * 25,
    str(2**50), "512", "", "\x00\x01", "17079205888 17079205888",
])
def test_hostile_lmem_total_is_unknown_and_said(tmp_path: Path, value: str) -> None:
    folder = _copy(tmp_path, "a770-i915-backport")
    folder.joinpath(*DRM, "card0", "lmem_total_bytes").write_text(value)
    (arc, _igpu), notes = _read(folder)
    assert arc.discrete is True and arc.name == "Intel Arc A770"
    assert arc.vram_total_bytes is None and arc.vram_free_bytes is None
    assert any("lmem_total_bytes holds no plausible byte count" in n.message
               and n.severity == "warning" for n in notes)


@pytest.mark.parametrize("avail", ["garbage", "-1", str(17079205888 + 1), "9" * 30])
def test_hostile_free_figure_is_dropped_and_the_total_kept(tmp_path: Path, avail: str) -> None:
    folder = _copy(tmp_path, "a770-i915-backport")
    folder.joinpath(*DRM, "card0", "lmem_avail_bytes").write_text(avail)
    (arc, _igpu), _ = _read(folder)
    assert arc.vram_total_bytes == 17079205888 and arc.vram_free_bytes is None


@pytest.mark.parametrize("tile1", ["nonsense", "-5", str(2**60), "0"])
def test_one_bad_tile_makes_the_whole_size_unknown(tmp_path: Path, tile1: str) -> None:
    folder = _copy(tmp_path, "b580-xe")
    tile = folder.joinpath(*DRM, "card0", "device", "tile1")
    tile.mkdir()
    (tile / "physical_vram_size_bytes").write_text(tile1)
    (gpu,), (note,) = _read(folder)
    assert gpu.discrete is True and gpu.vram_total_bytes is None
    assert "physical_vram_size_bytes holds no plausible byte count" in note.message


def test_an_unlisted_intel_card_with_local_memory_is_discrete(tmp_path: Path) -> None:
    """A card newer than the id list still counts: only discrete cards get these files."""
    folder = _copy(tmp_path, "b580-xe")
    folder.joinpath(*DRM, "card0", "device", "device").write_text("0xe2ff\n")
    (gpu,), notes = _read(folder)
    assert gpu.name == "Intel GPU 0xe2ff" and gpu.discrete is True
    assert gpu.vram_total_bytes == 12884901888 and notes == ()


def test_an_unknown_intel_gpu_away_from_the_igpu_address_is_left_unknown(
        tmp_path: Path) -> None:
    folder = _copy(tmp_path, "a750-xe-mainline")
    folder.joinpath(*DRM, "card0", "device", "device").write_text("0x1234\n")
    (gpu,), (note,) = _read(folder)
    assert gpu.discrete is None and not gpu.unified_memory
    assert "does not know" in note.message


def test_the_recorded_laptop_igpu_is_integrated_without_a_uevent() -> None:
    """The older fixture has no uevent: a known iGPU id is enough."""
    gpus, notes = gpu_sysfs.read_drm_gpus(
        ReplaySources(FIXTURES / "machines" / "laptop-rtx4060-8gb-igpu"))
    igpu = next(g for g in gpus if g.vendor == "intel")
    assert igpu.discrete is False and igpu.unified_memory
    assert any("integrated" in n.message for n in notes)


@pytest.mark.parametrize(("device_id", "name", "table_key"), [
    ("0x56a0", "Intel Arc A770", "Arc A770"),
    ("0x56A1", "Intel Arc A750", "Arc A750"),
    ("0x56a2", "Intel Arc A580", "Arc A580"),
    ("0x56a5", "Intel Arc A380", "Arc A380"),
    ("0xe20b", "Intel Arc B580", "Arc B580"),
    ("0xe20c", "Intel Arc B570", "Arc B570"),
    ("0xe211", "Intel Arc Pro B60", "Arc Pro B60"),
    ("0xe212", "Intel Arc Pro B50", "Arc Pro B50"),
    ("0x56a6", "Intel Arc A310", "Arc A310"),
    ("0x56b3", "Intel Arc Pro A60", "Arc Pro A60"),
    # The A40 and A50 share one id: the A40's entry, never NVIDIA's A40.
    ("0x56b1", "Intel Arc Pro A40/A50", "Arc Pro A40"),
    # The embedded A750E is the A750's chip and 256-bit bus: the same published figure.
    ("0x56be", "Intel Arc A750E", "Arc A750"),
    # Laptop parts never take the desktop card's figure.
    ("0x5690", "Intel Arc A770M Laptop GPU", None),
    ("0x5693", "Intel Arc A370M Laptop GPU", None),
    ("0x56b2", "Intel Arc Pro A60M Laptop GPU", None),
    ("0x56a3", "Intel Arc GPU (DG2, device 0x56a3)", None),
    ("0xe20d", "Intel Arc GPU (Battlemage, device 0xe20d)", None),
])
def test_names_follow_the_id_lists_and_the_bandwidth_table(
        device_id: str, name: str, table_key: str | None) -> None:
    assert gpu_sysfs.intel_discrete_name(device_id) == name
    assert bandwidth.match(name, bandwidth.GPU_BANDWIDTH_GBPS) == table_key


def test_integrated_ids_are_not_on_the_discrete_list() -> None:
    assert gpu_sysfs.intel_discrete_name("0xa780") is None
    assert gpu_sysfs.intel_discrete_name("0x46a6") is None
    assert gpu_sysfs.intel_discrete_name("") is None
