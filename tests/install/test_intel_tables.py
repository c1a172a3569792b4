"""Intel cards in the bandwidth and FLOPS tables: the names the probes give (sysfs, Windows,
Vulkan) find their own entries, never a same-numbered card of another vendor, and an 8 GB
Arc A770 is read at its own bandwidth when its memory size is known."""

from __future__ import annotations

import pytest

from gptoss_doctor.install import bandwidth, compute

GIB = 1024**3


@pytest.mark.parametrize(("name", "gbps", "tflops"), [
    ("Intel Arc A310", 124, 5.4),
    ("Intel(R) Arc(TM) A310 Graphics", 124, 5.4),
    ("Intel Arc Pro A40/A50", 192, 7.0),
    ("Intel(R) Arc(TM) Pro A50 Graphics", 192, 9.6),
    ("Intel Arc Pro A60", 384, 16.8),
    ("Intel(R) Arc(TM) Pro B50 Graphics", 224, 21.3),
    ("Intel(R) Arc(tm) Pro B60 Graphics (BMG G21)", 456, 24.6),
    ("Intel Arc Pro B60", 456, 24.6),
])
def test_intel_cards_find_their_own_entries(name: str, gbps: float, tflops: float) -> None:
    found = bandwidth.lookup_gpu(name)
    assert found is not None and found.bytes_per_s == gbps * 1e9
    assert compute.lookup_gpu_flops(name) == pytest.approx(tflops * 1e12)


def test_an_arc_pro_a40_is_not_nvidias_a40() -> None:
    assert bandwidth.match("Intel Arc Pro A40/A50", bandwidth.GPU_BANDWIDTH_GBPS) \
        == "Arc Pro A40"
    assert bandwidth.lookup_gpu("NVIDIA A40") == bandwidth.Bandwidth(696e9,
                                                                       "published figure for A40")


@pytest.mark.parametrize(("memory_gib", "gbps"), [
    (None, 560), (16, 560), (15.9, 560), (8, 512), (7.9, 512),
], ids=["size unknown", "16 GB", "16 GB as Vulkan's heap", "8 GB", "8 GB less reserved"])
def test_an_8_gb_a770_is_read_at_its_own_bandwidth(memory_gib: float | None,
                                                    gbps: float) -> None:
    memory = int(memory_gib * GIB) if memory_gib else None
    found = bandwidth.lookup_gpu("Intel(R) Arc(TM) A770 Graphics", memory)
    assert found is not None and found.bytes_per_s == gbps * 1e9
    assert ("8 GB card" in found.source) == (gbps == 512)


def test_the_memory_variant_leaves_other_cards_alone() -> None:
    found = bandwidth.lookup_gpu("Intel Arc A750", 8 * GIB)
    assert found is not None and found.bytes_per_s == 512e9
    assert found.source == "published figure for Arc A750"
