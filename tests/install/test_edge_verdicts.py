"""Edge outputs (issue 14): unreadable figures give an honest verdict, never a silent worse one.

Each case starts from a replayed machine (tests/fixtures/machines/<name>/SOURCE.md names its
source) and removes the one figure the case is about.
"""

from __future__ import annotations

from dataclasses import replace

from gptoss_doctor.app.checks import checks
from gptoss_doctor.install.resources import resources
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe.model import GpuInfo, HardwareSnapshot
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES


def _snap(machine: str) -> HardwareSnapshot:
    return snapshot(ReplaySources(MACHINES / machine), current({"HOME": "/home/user"}))


def test_unreadable_ram_does_not_stop_a_model_that_the_gpu_holds() -> None:
    snap = _snap("rtx4090-24gb")
    snap = replace(snap, memory=replace(snap.memory, ram_total_bytes=None,
                                        ram_available_bytes=None))
    verdict = assess(snap).verdict("20b")
    assert verdict.status == "runs" and verdict.placement == "gpu"


def test_unreadable_vram_is_said_rather_than_budgeted_as_zero() -> None:
    snap = _snap("rtx4090-24gb")
    gpu = replace(snap.gpus[0], vram_total_bytes=None, vram_free_bytes=None)
    assessment = assess(replace(snap, gpus=(gpu,)))
    reasons = " ".join(assessment.resource_reasons)
    assert "not readable" in reasons and "0.0 GiB" not in reasons


def test_a_mac_without_a_working_set_figure_is_planned_on_its_gpu_not_its_cpu() -> None:
    snap = _snap("mac-m3pro-36gb")
    assert snap.apple is not None
    snap = replace(snap, apple=replace(snap.apple, gpu_budget_bytes=None,
                                       gpu_budget_source=None))
    assessment = assess(snap)
    verdict = assessment.verdict("20b")
    assert verdict.placement in ("unified", "gpu")
    assert any("default share" in r for r in assessment.resource_reasons)


def test_an_avx_only_cpu_is_shown_with_avx_and_predicted_slower_than_with_avx2() -> None:
    snap = _snap("cpu-only-64gb")
    avx_only = replace(snap, cpu=replace(snap.cpu, flags=("avx", "f16c", "fma")))
    cpu_line = next(c for c in checks(avx_only, assess(avx_only)) if c.name == "cpu")
    assert "avx" in cpu_line.summary and "no SIMD flags" not in cpu_line.summary
    with_avx2 = assess(snap).verdict("20b").predicted_tokens_per_s
    without = assess(avx_only).verdict("20b").predicted_tokens_per_s
    assert with_avx2 is not None and without is not None and without < with_avx2


def test_with_nvidia_and_amd_cards_the_larger_memory_wins() -> None:
    nvidia = _snap("rtx3060-12gb")
    amd = _snap("amd-rx6800-linux")
    both = replace(nvidia, gpus=(*nvidia.gpus, *[g for g in amd.gpus if g.discrete]))
    res = resources(both)  # a 12 GB RTX 3060 beside a 16 GB RX 6800
    assert res.backend == "ROCm" and res.gpu_names == (amd.gpus[0].name,)


def _arc_a770s(count: int) -> tuple[GpuInfo, ...]:
    (arc,) = _snap("windows-arc-a770-16gb").gpus
    return tuple(replace(arc, index=10 + i) for i in range(count))


def test_with_mixed_vendors_each_model_runs_on_the_faster_group_not_the_larger_memory() -> None:
    # An RTX 4090 (24 GB) beside two Arc A770s (32 GB in all): the Arcs have more memory, but
    # the 4090 holds 20b and runs it far faster.
    base = _snap("rtx4090-24gb")
    mixed = replace(base, gpus=(*base.gpus, *_arc_a770s(2)))
    assert resources(mixed).backend == "Vulkan"  # the larger memory is the first group
    verdict = assess(mixed).verdict("20b")
    assert (verdict.backend, verdict.placement) == ("CUDA", "gpu")
    alone = assess(base).verdict("20b")
    assert verdict.predicted_tokens_per_s == alone.predicted_tokens_per_s
    (note,) = [r for r in verdict.reasons if r.startswith("planned on ")]
    assert "NVIDIA GeForce RTX 4090" in note and "Intel(R) Arc(TM) A770 Graphics" in note


def test_a_strix_halo_with_an_arc_card_runs_120b_in_unified_memory_not_offloaded() -> None:
    base = _snap("strix-halo-128gb")
    mixed = replace(base, gpus=(*base.gpus, *_arc_a770s(1)))
    alone = assess(base).verdict("120b")
    verdict = assess(mixed).verdict("120b")
    assert verdict.placement == alone.placement != "expert-offload"
    assert verdict.predicted_tokens_per_s == alone.predicted_tokens_per_s
