"""AMD cards the tables do not know: bandwidth from amdgpu's memory clock and a bus width by
family (issue 14), or a clear "unknown".

Memory clock levels transcribed from public reports: an RX 7900 XTX's pp_dpm_mclk
(marazmista/radeon-profile issue #294: 96/456/772/1249 MHz) and an RX 6750 GRE 12 GB's mclk
levels as rocm-smi printed them from the same file (ROCm issue #3157: 96/456/675/1124 MHz).
Published figures to compare with: 960 GB/s (7900 XTX, 384-bit 20 Gbps) and 432 GB/s
(6750 GRE, 192-bit 18 Gbps).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptoss_doctor.install import bandwidth
from gptoss_doctor.install.resources import resources
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe import gpu_sysfs
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES

GIB = 1024**3
XTX_MCLK = "0: 96Mhz *\n1: 456Mhz\n2: 772Mhz\n3: 1249Mhz\n"
GRE_MCLK = "0: 96Mhz *\n1: 456Mhz\n2: 675Mhz\n3: 1124Mhz\n"


@pytest.mark.parametrize(("device", "vram_gib", "levels", "width", "published_gbps"), [
    ("0x744c", 24, XTX_MCLK, 384, 960),
    ("0x73df", 12, GRE_MCLK, 192, 432),
])
def test_memory_clock_and_family_width_give_the_published_bandwidth(
        device: str, vram_gib: int, levels: str, width: int, published_gbps: float) -> None:
    bus = gpu_sysfs.amd_memory_bus(device, vram_gib * GIB, gpu_sysfs.parse_pp_dpm_mclk(levels))
    assert bus is not None and bus[0] == width
    found = bandwidth.from_bus(bus[0], bus[1], bandwidth.AMDGPU_BUS)
    assert found is not None and "pp_dpm_mclk" in found.source
    assert found.bytes_per_s / 1e9 == pytest.approx(published_gbps, rel=0.01)


def test_hbm_has_its_fixed_width_and_unknown_families_give_nothing() -> None:
    assert gpu_sysfs.amd_memory_bus("0x66af", 16 * GIB, 1000) == (4096, 1000, "Vega 20 (HBM2)")
    assert gpu_sysfs.amd_memory_bus("0x6fff", 16 * GIB, 1000) is None
    assert gpu_sysfs.amd_memory_bus("0x744c", 24 * GIB, None) is None
    assert gpu_sysfs.parse_pp_dpm_mclk("garbage") is None
    assert gpu_sysfs.parse_pp_dpm_mclk("0: 99999999Mhz") is None


def _unknown_card(tmp_path: Path, device: str, mclk: str | None) -> Path:
    """The recorded RX 6800 machine (its SOURCE.md) with card0's PCI id replaced by one the
    tables lack, and the memory clock levels given."""
    folder = tmp_path / "machine"
    shutil.copytree(MACHINES / "amd-rx6800-linux", folder)
    card = folder / "fs" / "sys" / "class" / "drm" / "card0" / "device"
    (card / "device").write_text(device + "\n")
    if mclk is not None:
        (card / "pp_dpm_mclk").write_text(mclk)
    return folder


def test_an_unknown_navi_card_gets_an_estimated_bandwidth_and_says_so(tmp_path: Path) -> None:
    snap = snapshot(ReplaySources(_unknown_card(tmp_path, "0x73a5", XTX_MCLK)),
                    current({"HOME": "/h"}))
    card = next(g for g in snap.gpus if g.discrete)
    assert card.name == "AMD GPU 0x73a5" and card.memory_bus_width_bits == 256  # 16 GB
    res = resources(snap)
    assert res.gpu_bandwidth is not None and "estimated from amdgpu" in res.gpu_bandwidth.source
    verdict = assess(snap).verdict("20b")
    assert verdict.predicted_tokens_per_s is not None
    assert "estimated from amdgpu" in (verdict.speed_basis or "")


def test_without_a_memory_clock_the_speed_is_unknown_and_said(tmp_path: Path) -> None:
    snap = snapshot(ReplaySources(_unknown_card(tmp_path, "0x73a5", None)),
                    current({"HOME": "/h"}))
    verdict = assess(snap).verdict("20b")
    assert verdict.can_run and verdict.predicted_tokens_per_s is None
    assert "bandwidth unknown" in (verdict.speed_basis or "")
