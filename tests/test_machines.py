"""Replayed real machines: the probe reads them right and the verdicts follow.

Each folder under ``fixtures/machines`` holds outputs recorded or transcribed from public
reports (its SOURCE.md names them). Expected verdicts were checked by hand against the
budgets: e.g. an RTX 3060 (11 GiB usable) cannot hold 20b's 10.7 GiB of GPU weights plus
3 GiB of 131k KV cache, so experts of some layers stay on the CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from gptoss_doctor.install.verdict import assess
from gptoss_doctor.install.verdict_records import Assessment
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES

GIB = 1024**3


class Expect(NamedTuple):
    status: str
    engine: str | None = None
    backend: str | None = None
    placement: str | None = None
    n_cpu_moe: int | None = None
    context: int | None = None


NO = Expect("does-not-fit")
CASES = {
    # machine: (gpt-oss-20b, gpt-oss-120b)
    "h100-80gb": (Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072),
                  Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072)),
    "rtx4090-24gb": (Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072),
                     Expect("runs", "llama.cpp", "CUDA", "expert-offload", 24, 32768)),
    "rtx3060-12gb": (Expect("runs", "llama.cpp", "CUDA", "expert-offload", 3, 32768), NO),
    "laptop-rtx4060-8gb-igpu": (
        Expect("runs", "llama.cpp", "CUDA", "expert-offload", 14, 32768), NO),
    "gb10-dgx-spark": (Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072),
                       Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072)),
    "a100-40gb-x2": (Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072),
                     Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072)),
    "mac-m1-16gb": (Expect("runs", "llama.cpp", "Metal", "gpu", None, 32768), NO),
    "mac-m4max-64gb": (Expect("runs", "mlx", "MLX", "unified", None, 131072), NO),
    "mac-m3pro-36gb": (Expect("runs", "mlx", "MLX", "unified", None, 131072), NO),
    "mac-m5max-128gb": (Expect("runs", "mlx", "MLX", "unified", None, 131072),
                        Expect("runs", "mlx", "MLX", "unified", None, 131072)),
    "2x-rtx3090": (Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072),
                   Expect("runs", "llama.cpp", "CUDA", "expert-offload", 10, 65536)),
    "rtx3090-rtx3060": (Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072),
                        Expect("runs", "llama.cpp", "CUDA", "expert-offload", 17, 32768)),
    "laptop-rtx5090-24gb": (Expect("runs", "llama.cpp", "CUDA", "gpu", None, 131072),
                            Expect("runs", "llama.cpp", "CUDA", "expert-offload", 24, 32768)),
    "amd-780m-32gb": (Expect("runs", "llama.cpp", "Vulkan", "gpu", None, 131072), NO),
    "epyc-9b14-cpu": (Expect("runs", "llama.cpp", "CPU", "cpu", None, 131072),
                      Expect("runs", "llama.cpp", "CPU", "cpu", None, 131072)),
    "strix-halo-128gb": (Expect("runs", "llama.cpp", "Vulkan", "gpu", None, 131072),
                         Expect("runs", "llama.cpp", "Vulkan", "gpu", None, 65536)),
    "amd-rx6800-linux": (Expect("runs", "llama.cpp", "ROCm", "gpu", None, 131072), NO),
    "cpu-only-16gb": (Expect("runs", "llama.cpp", "CPU", "cpu", None, 8192), NO),
    "cpu-only-64gb": (Expect("runs", "llama.cpp", "CPU", "cpu", None, 131072), NO),
    "nvml-missing-nvidia-card": (Expect("runs", "llama.cpp", "CPU", "cpu", None, 131072), NO),
    "nvml-init-fails": (Expect("runs", "llama.cpp", "CPU", "cpu", None, 131072), NO),
    "wsl-rtx4070": (Expect("runs", "llama.cpp", "CUDA", "expert-offload", 8, 32768), NO),
    # AMD on Windows through WMI and the driver's 64-bit memory size: Vulkan, not "no GPU".
    "windows-r9700-32gb": (Expect("runs", "llama.cpp", "Vulkan", "gpu", None, 131072), NO),
    # Intel Arc on Windows (WMI and the registry's 64-bit size): Vulkan on the card, where the
    # owner ran 20b; 120b keeps experts of 30 layers in the 64 GiB of RAM.
    "windows-arc-a770-16gb": (Expect("runs", "llama.cpp", "Vulkan", "gpu", None, 65536),
                              Expect("runs", "llama.cpp", "Vulkan", "expert-offload", 30,
                                     32768)),
    # The same card on mainline Linux, whose sysfs has no VRAM size: vulkaninfo gives it.
    "linux-arc-a770-mainline": (Expect("runs", "llama.cpp", "Vulkan", "gpu", None, 65536),
                                Expect("runs", "llama.cpp", "Vulkan", "expert-offload", 30,
                                       32768)),
}


def _load(machine: str) -> tuple[HardwareSnapshot, Assessment]:
    snap = snapshot(ReplaySources(MACHINES / machine), current({"HOME": "/home/user"}))
    return snap, assess(snap)


def test_every_recorded_machine_has_a_case_and_a_source() -> None:
    folders = {p.name for p in MACHINES.iterdir() if p.is_dir()}
    assert folders == set(CASES)
    for folder in folders:
        assert "(" in (MACHINES / folder / "SOURCE.md").read_text()  # cites a report


@pytest.mark.parametrize("machine", sorted(CASES))
def test_verdicts_for_both_models(machine: str) -> None:
    _snap, assessment = _load(machine)
    for verdict, expect in zip(assessment.verdicts, CASES[machine], strict=True):
        got = Expect(verdict.status, verdict.engine, verdict.backend, verdict.placement,
                     verdict.n_cpu_moe, verdict.context_length)
        assert got == expect, f"{machine} {verdict.model}"
        assert verdict.reasons, "every verdict explains itself"
        if verdict.can_run:
            assert verdict.install_command and verdict.key in verdict.install_command
            assert verdict.memory is not None
        else:
            assert verdict.fixes, "a model that does not fit says what would make it fit"


def test_llama_cpp_verdicts_load_with_flash_attention_and_a_small_swa_cache() -> None:
    _snap, assessment = _load("rtx3060-12gb")
    settings = assessment.verdict("20b").load_settings
    assert settings is not None
    assert settings.flash_attn is True and settings.swa_full is False
    assert settings.n_cpu_moe == 3 and settings.n_gpu_layers == -1
    _snap, cpu_assessment = _load("cpu-only-64gb")
    cpu_settings = cpu_assessment.verdict("20b").load_settings
    assert cpu_settings is not None and cpu_settings.use_mmap is False


def test_h100_probe_facts_and_vllm_advice() -> None:
    snap, assessment = _load("h100-80gb")
    (gpu,) = snap.gpus
    assert (gpu.name, gpu.compute_capability, gpu.cuda_driver_version) == \
        ("NVIDIA H100 80GB HBM3", "9.0", "12.2")
    assert snap.os.container == "docker"
    assert any("vLLM" in line for line in assessment.advice)


def test_gb10_is_unified_and_sized_from_host_ram() -> None:
    snap, assessment = _load("gb10-dgx-spark")
    assert snap.gpus[0].unified_memory and snap.gpus[0].vram_total_bytes is None
    assert snap.memory.ram_total_bytes == 127600748 * 1024
    assert snap.cpu.arch == "aarch64" and "neon" in snap.cpu.flags
    memory = assessment.verdict("120b").memory
    assert memory is not None and memory.gpu_budget_bytes == memory.ram_budget_bytes


def test_laptop_sees_the_intel_igpu_but_plans_on_the_nvidia_gpu() -> None:
    snap, assessment = _load("laptop-rtx4060-8gb-igpu")
    vendors = [g.vendor for g in snap.gpus]
    assert vendors == ["nvidia", "intel"]
    assert snap.gpus[1].name == "Raptor Lake-P [Iris Xe Graphics]"
    assert assessment.verdict("20b").backend == "CUDA"


def test_wsl_falls_back_to_nvidia_smi_in_the_wsl_folder_and_keeps_more_headroom() -> None:
    snap, assessment = _load("wsl-rtx4070")
    assert snap.os.is_wsl
    (gpu,) = snap.gpus
    assert gpu.source == "nvidia-smi" and gpu.vram_total_bytes == 12282 * 1024**2
    assert any("WSL" in reason for reason in assessment.resource_reasons)


def test_broken_nvidia_driver_is_explained_and_the_card_still_noticed() -> None:
    snap, _assessment = _load("nvml-init-fails")
    messages = " | ".join(n.message for n in snap.notes)
    assert "reboot" in messages
    assert "Driver/library version mismatch" in messages
    assert "GA102 [GeForce RTX 3090]" in messages and "driver cannot be used" in messages
    assert snap.gpus == ()


def test_missing_nvidia_driver_with_a_card_present_warns() -> None:
    snap, _assessment = _load("nvml-missing-nvidia-card")
    warnings = [n for n in snap.notes if n.severity == "warning"]
    assert any("GTX 1050 Ti" in n.message for n in warnings)


def test_amd_discrete_and_apu_are_told_apart() -> None:
    snap, _assessment = _load("amd-rx6800-linux")
    discrete, apu = snap.gpus
    assert discrete.discrete and discrete.vram_total_bytes == 17163091968
    assert discrete.vram_free_bytes == 17163091968 - 692142080
    assert apu.unified_memory and apu.vram_total_bytes is None


@pytest.mark.parametrize(("machine", "source", "budget_gib"), [
    pytest.param("mac-m1-16gb", "ratio", 16 * 2 / 3, id="16 GB M1 uses Apple's 2/3 ratio"),
    pytest.param("mac-m3pro-36gb", "ratio", 24.0, id="36 GB M3 Pro is still on the 2/3 side"),
    pytest.param("mac-m5max-128gb", "metal", 107.52, id="128 GB M5 Max reads Metal's figure"),
])
def test_apple_working_set_source(machine: str, source: str, budget_gib: float) -> None:
    snap, _assessment = _load(machine)
    assert snap.apple is not None
    assert snap.apple.gpu_budget_source == source
    assert snap.apple.gpu_budget_bytes is not None
    assert snap.apple.gpu_budget_bytes / GIB == pytest.approx(budget_gib, abs=0.01)


def test_cpu_only_16gb_warns_that_too_little_is_free_right_now() -> None:
    _snap, assessment = _load("cpu-only-16gb")
    assert any("free right now" in r for r in assessment.verdict("20b").reasons)


def test_unified_memory_never_keeps_experts_in_ram_and_120b_needs_more_than_64_gb() -> None:
    _snap, assessment = _load("mac-m4max-64gb")
    verdict = assessment.verdict("120b")
    assert verdict.status == "does-not-fit"
    assert any("same memory" in r for r in verdict.reasons)
    assert verdict.fixes and all("Mac with more than" in f for f in verdict.fixes)
    assert not any("experts stay in RAM" in r for v in assessment.verdicts for r in v.reasons)


def test_an_amd_apu_runs_on_its_gpu_from_gtt_at_unified_memory_speed() -> None:
    _snap, assessment = _load("strix-halo-128gb")
    verdict = assessment.verdict("120b")
    assert assessment.resource_reasons and any("GTT" in r for r in assessment.resource_reasons)
    assert verdict.speed_basis is not None and "Radeon 8060S" in verdict.speed_basis
    # People measure 41.5 (ROCm) to 52 (Vulkan) tok/s; a CPU-only plan would predict ~9.
    assert verdict.predicted_tokens_per_s is not None and verdict.predicted_tokens_per_s > 30


@pytest.mark.parametrize("machine", ["2x-rtx3090", "rtx3090-rtx3060"])
def test_a_model_that_fits_one_card_runs_on_the_fastest_one_alone(machine: str) -> None:
    _snap, assessment = _load(machine)
    verdict = assessment.verdict("20b")
    assert any("run on NVIDIA GeForce RTX 3090 alone" in r for r in verdict.reasons)
    assert verdict.speed_basis is not None and "RTX 3090" in verdict.speed_basis
    assert "RTX 3060" not in verdict.speed_basis


def test_a_split_is_read_at_the_bandwidth_of_the_cards_that_hold_it() -> None:
    _snap, assessment = _load("rtx3090-rtx3060")
    basis = assessment.verdict("120b").speed_basis
    assert basis is not None and "split in proportion to free memory" in basis


def test_offload_is_planned_at_the_working_context_with_the_alternatives_listed() -> None:
    _snap, assessment = _load("rtx3060-12gb")
    verdict = assessment.verdict("20b")
    contexts = [a.context_length for a in verdict.alternatives]
    assert contexts == [131072, 65536, 32768, 16384, 8192, 4096]
    layers = [a.n_cpu_moe for a in verdict.alternatives]
    assert layers == sorted(layers, reverse=True)  # less context, fewer experts on the CPU
    speeds = [a.predicted_tokens_per_s or 0 for a in verdict.alternatives]
    assert speeds == sorted(speeds)  # ... and faster
    assert any("other contexts: 131072 → --n-cpu-moe" in r for r in verdict.reasons)


def test_a_laptop_gpu_is_read_at_the_laptop_parts_bandwidth() -> None:
    _snap, assessment = _load("laptop-rtx5090-24gb")
    basis = assessment.verdict("20b").speed_basis
    assert basis is not None and "RTX 5090 Laptop" in basis


def test_a_12_channel_epyc_is_read_at_its_platforms_bandwidth() -> None:
    _snap, assessment = _load("epyc-9b14-cpu")
    verdict = assessment.verdict("120b")
    assert verdict.speed_basis is not None and "12-channel DDR5-4800" in verdict.speed_basis
    # Measured on this machine: 49.31 tok/s (SOURCE.md); a desktop's 51.2 GB/s gave ~9.
    assert verdict.predicted_tokens_per_s is not None and verdict.predicted_tokens_per_s > 30


def test_a_16_gb_mac_runs_20b_on_the_gpu_once_the_working_set_is_raised() -> None:
    _snap, assessment = _load("mac-m1-16gb")
    verdict = assessment.verdict("20b")
    assert any("sudo sysctl iogpu.wired_limit_mb=" in r for r in verdict.reasons)


def test_an_m5_max_is_read_at_its_own_bandwidth_not_the_base_m5s() -> None:
    _snap, assessment = _load("mac-m5max-128gb")
    verdict = assessment.verdict("20b")
    assert verdict.predicted_tokens_per_s is not None
    assert verdict.speed_basis is not None and "Apple M5 Max" in verdict.speed_basis


def test_cpu_only_build_on_a_gpu_machine_is_caught() -> None:
    from gptoss_doctor.app.checks import checks

    snap, assessment = _load("rtx3060-12gb")
    line = next(c for c in checks(snap, assessment) if c.name == "llama-cpp-python")
    assert line.status == "fail" and "CPU-only build" in line.summary
    assert "GGML_CUDA=on" in line.details[0]


def test_the_ram_a_does_not_fit_verdict_asks_for_is_enough() -> None:
    import dataclasses
    import re

    snap, assessment = _load("cpu-only-64gb")
    fix = assessment.verdict("120b").fixes[0]
    match = re.match(r"at least ([0-9.]+) GiB of RAM", fix)
    assert match, fix
    asked = int((float(match.group(1)) + 0.05) * GIB)  # the message rounds to 0.1 GiB
    bigger = dataclasses.replace(snap, memory=dataclasses.replace(
        snap.memory, ram_total_bytes=asked, ram_available_bytes=asked))
    verdict = assess(bigger).verdict("120b")
    assert verdict.placement == "cpu" and verdict.context_length == 4096
    smaller = dataclasses.replace(snap, memory=dataclasses.replace(
        snap.memory, ram_total_bytes=asked - GIB // 2, ram_available_bytes=asked))
    assert not assess(smaller).verdict("120b").can_run


def test_an_intel_arc_card_is_planned_with_intels_lower_bandwidth_efficiency() -> None:
    """The owner of this A770 measured 20b at 72 tok/s with llama.cpp's Vulkan build (the
    dataset's `arc-a770-20b`); the A770's 560 GB/s at the other cards' efficiency would
    predict far more."""
    snap, assessment = _load("windows-arc-a770-16gb")
    (gpu,) = snap.gpus
    assert (gpu.vendor, gpu.discrete, gpu.vram_total_bytes) == ("intel", True, 16 * GIB)
    verdict = assessment.verdict("20b")
    assert verdict.predicted_tokens_per_s is not None
    assert 72 / 1.3 <= verdict.predicted_tokens_per_s <= 72 * 1.3
    assert verdict.speed_basis is not None and "Intel GPUs reach x0.56" in verdict.speed_basis
