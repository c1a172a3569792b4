"""Intel Arc cards in the planner: llama.cpp's Vulkan build on the card where its memory is
known (Windows' registry, Intel's i915 backport on Linux), the CPU where mainline Linux
publishes no VRAM size, and Intel's lower bandwidth efficiency in the speed."""

from __future__ import annotations

import dataclasses

from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe import gpu_sysfs
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import FIXTURES, MACHINES


def _linux_with(tree: str) -> HardwareSnapshot:
    """A 64 GiB Linux desktop (replayed) with the GPUs of a replayed Intel sysfs tree."""
    base = snapshot(ReplaySources(MACHINES / "cpu-only-64gb"), current({"HOME": "/home/u"}))
    gpus, _notes = gpu_sysfs.read_drm_gpus(ReplaySources(FIXTURES / "intel-arc" / tree))
    return dataclasses.replace(base, gpus=gpus)


def test_an_a770_with_its_memory_readable_runs_20b_on_the_card_with_vulkan() -> None:
    snap = _linux_with("a770-i915-backport")
    verdict = assess(snap).verdict("20b")
    assert (verdict.status, verdict.backend, verdict.placement) == ("runs", "Vulkan", "gpu")
    assert verdict.speed_basis is not None and "Intel GPUs reach x0.56" in verdict.speed_basis
    assert verdict.predicted_tokens_per_s is not None
    assert 72 / 1.3 <= verdict.predicted_tokens_per_s <= 72 * 1.3  # the dataset's A770 run


def test_an_arc_card_without_a_vram_figure_is_not_planned() -> None:
    snap = _linux_with("a750-xe-mainline")
    (gpu,) = [g for g in snap.gpus if g.vendor == "intel" and g.discrete]
    assert gpu.vram_total_bytes is None
    verdict = assess(snap).verdict("20b")
    assert verdict.backend == "CPU" and verdict.placement == "cpu"


def test_a_mainline_arc_sized_by_vulkaninfo_runs_20b_on_the_card_with_vulkan() -> None:
    """Mainline i915 publishes no VRAM size; the replayed machine's vulkaninfo listing gives
    the A770's 16288 MiB, and the card is planned like the one whose memory sysfs shows."""
    snap = snapshot(ReplaySources(MACHINES / "linux-arc-a770-mainline"),
                    current({"HOME": "/home/u"}))
    (gpu,) = snap.gpus
    assert (gpu.vendor, gpu.discrete, gpu.vram_total_bytes) == ("intel", True, 16288 * 1024**2)
    verdict = assess(snap).verdict("20b")
    assert (verdict.status, verdict.backend, verdict.placement) == ("runs", "Vulkan", "gpu")
    assert verdict.speed_basis is not None and "Arc A770" in verdict.speed_basis
    assert verdict.predicted_tokens_per_s is not None
    assert 72 / 1.3 <= verdict.predicted_tokens_per_s <= 72 * 1.3  # the dataset's A770 run
