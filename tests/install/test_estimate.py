"""The estimator against the figures llama.cpp reports (docs/design.md, "Measured buffers")
and the releases."""

from __future__ import annotations

import pytest

from gptoss_doctor.catalog import GPT_OSS_20B, GPT_OSS_120B
from gptoss_doctor.install import predict
from gptoss_doctor.install.bandwidth import Bandwidth, from_bus, lookup_gpu
from gptoss_doctor.install.estimate import (
    GIB,
    MIB,
    RUNTIME_OVERHEAD_BYTES,
    MemorySettings,
    compute_buffer,
    estimate,
    kv_cache,
)
from gptoss_doctor.install.resources import Resources


def test_weights_match_the_published_gguf_files() -> None:
    # ggml-org GGUFs: 11.27 GiB and 59.02 GiB; llama.cpp maps the 20b at 11536 MiB.
    assert GPT_OSS_20B.shape.weights_bytes / GIB == pytest.approx(11.27, abs=0.01)
    assert GPT_OSS_20B.shape.weights_bytes / MIB == pytest.approx(11536, abs=1)
    assert GPT_OSS_120B.shape.weights_bytes / GIB == pytest.approx(59.02, abs=0.01)


@pytest.mark.parametrize(("settings", "full_mib", "swa_mib"), [
    pytest.param(MemorySettings(4096, flash_attn=False, swa_full=True), 96, 96,
                 id="llama-cpp-python defaults allocate a full-size SWA cache"),
    pytest.param(MemorySettings(131072, flash_attn=False, swa_full=True), 3072, 3072,
                 id="defaults at 131k double the KV cache"),
    pytest.param(MemorySettings(4096), 96, 18, id="swa_full off keeps 768 sliding cells"),
    pytest.param(MemorySettings(131072), 3072, 18, id="at 131k only full layers grow"),
])
def test_kv_cache_matches_llama_cpp(settings: MemorySettings, full_mib: int, swa_mib: int) -> None:
    kv = kv_cache(GPT_OSS_20B.shape, settings)
    assert kv.full_bytes == full_mib * MIB
    assert kv.swa_bytes == swa_mib * MIB


@pytest.mark.parametrize(("settings", "reported_mib"), [
    pytest.param(MemorySettings(4096, flash_attn=True), 414, id="flash attention at 4096"),
    pytest.param(MemorySettings(131072, flash_attn=True), 410, id="flash attention at 131k"),
    pytest.param(MemorySettings(4096, flash_attn=False, swa_full=True), 566,
                 id="no flash attention at 4096"),
    pytest.param(MemorySettings(131072, flash_attn=False, swa_full=True), 16933,
                 id="no flash attention at 131k materialises 16 GiB of KQ"),
])
def test_compute_buffer_within_two_percent_of_llama_cpp(settings: MemorySettings,
                                                        reported_mib: int) -> None:
    assert compute_buffer(GPT_OSS_20B.shape, settings) / MIB == \
        pytest.approx(reported_mib, rel=0.02)


@pytest.mark.parametrize(("entry", "ctx", "total_gib"), [
    pytest.param(GPT_OSS_20B, 8192, 11.9, id="20b at 8k"),
    pytest.param(GPT_OSS_20B, 131072, 14.7, id="20b at 131k"),
    pytest.param(GPT_OSS_120B, 8192, 60.1, id="120b at 8k"),
    pytest.param(GPT_OSS_120B, 131072, 64.4, id="120b at 131k"),
])
def test_totals_match_the_published_rough_totals(entry: object, ctx: int,
                                                 total_gib: float) -> None:
    est = estimate(entry.shape, MemorySettings(ctx), on_gpu=False)  # type: ignore[attr-defined]
    assert (est.total_bytes - RUNTIME_OVERHEAD_BYTES) / GIB == pytest.approx(total_gib, rel=0.01)


def test_mmap_with_cpu_repack_counts_the_experts_twice() -> None:
    shape = GPT_OSS_20B.shape
    plain = estimate(shape, MemorySettings(4096, use_mmap=False, repack=True), on_gpu=False)
    mapped = estimate(shape, MemorySettings(4096, use_mmap=True, repack=True), on_gpu=False)
    # docs/design.md, "Measured buffers": mmap 11536 + CPU_REPACK 9682 MiB vs 1854 + 9682 MiB
    # without mmap.
    assert (mapped.cpu_weights_bytes - plain.cpu_weights_bytes) / MIB == \
        pytest.approx(9682, rel=0.01)


def test_expert_offload_moves_whole_layers_of_experts_to_ram() -> None:
    shape = GPT_OSS_120B.shape
    full = estimate(shape, MemorySettings(8192), on_gpu=True)
    offload = estimate(shape, MemorySettings(8192), on_gpu=True, n_cpu_moe=shape.n_layer)
    assert full.gpu_weights_bytes - offload.gpu_weights_bytes == \
        shape.n_layer * shape.expert_bytes_per_layer
    # docs/design.md, "Expert offload": 120b with every expert on the CPU needs roughly 5-8 GB
    # of VRAM at most.
    assert 1.5 * GIB < offload.gpu_total_bytes < 8 * GIB
    assert offload.cpu_weights_bytes > 55 * GIB


def _resources(gpu_gbps: float | None, cpu_gbps: float = 51.2,
               cores: int | None = None) -> Resources:
    return Resources(
        backend="CUDA", gpu_names=("x",), gpu_budget_bytes=None, ram_budget_bytes=None,
        ram_free_now_bytes=None, unified=False,
        gpu_bandwidth=Bandwidth(gpu_gbps * 1e9, "t") if gpu_gbps else None,
        cpu_bandwidth=Bandwidth(cpu_gbps * 1e9, "c"), apple_budget_bytes=None,
        datacenter=False, cpu_cores=cores, reasons=())


def test_roofline_is_bandwidth_over_active_bytes() -> None:
    shape = GPT_OSS_20B.shape
    rate = predict.predict(shape, _resources(1008), placement="gpu", n_cpu_moe=0)
    assert rate.ceiling == pytest.approx(1008e9 / shape.active_bytes_per_token, rel=0.001)
    c = predict.CONSTANTS
    seconds = shape.active_bytes_per_token / (1008e9 * c.device_efficiency) + \
        c.overhead_ms["CUDA"] / 1000
    assert rate.expected == pytest.approx(1 / seconds, rel=0.01)


def test_offloaded_experts_are_read_at_host_speed() -> None:
    shape = GPT_OSS_120B.shape
    on_gpu = predict.predict(shape, _resources(1008), placement="gpu", n_cpu_moe=0)
    offload = predict.predict(shape, _resources(1008), placement="expert-offload", n_cpu_moe=36)
    assert offload.ceiling is not None and on_gpu.ceiling is not None
    assert offload.ceiling < on_gpu.ceiling / 5


def test_two_cores_with_ample_bandwidth_reach_what_llama_bench_measured_here() -> None:
    # llama-bench (llama-cpp-python 0.3.36 sources), synthetic 20b, 2 threads of this CI
    # machine: tg32 16.39 +/- 0.53 t/s (README, "Agreement with llama-bench"): compute-bound.
    rate = predict.predict(GPT_OSS_20B.shape, _resources(None, cpu_gbps=400),
                           placement="cpu", n_cpu_moe=0, cpu_cores=2)
    assert rate.expected == pytest.approx(16.39, rel=0.05)


def test_cpu_speed_is_capped_by_few_cores() -> None:
    rate = predict.predict(GPT_OSS_20B.shape, _resources(None), placement="cpu", n_cpu_moe=0,
                         cpu_cores=1)
    assert rate.expected == pytest.approx(8.2, rel=0.01)
    assert "compute-bound" in rate.basis


@pytest.mark.parametrize(("name", "gbps"), [
    ("NVIDIA GeForce RTX 4060 Ti", 288), ("NVIDIA GeForce RTX 4060 Laptop GPU", 256),
    ("NVIDIA H100 80GB HBM3", 3350), ("NVIDIA H100 PCIe", 2000), ("Apple M3 Max", 300),
    ("NVIDIA GB10", 273), ("Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]", 512),
])
def test_bandwidth_table_prefers_the_most_specific_name(name: str, gbps: int) -> None:
    found = lookup_gpu(name)
    assert found is not None and found.bytes_per_s == gbps * 1e9


def test_unknown_gpus_have_no_bandwidth_but_nvml_bus_gives_an_estimate() -> None:
    assert lookup_gpu("Some Future GPU") is None
    assert from_bus(None, 1000) is None
    bus = from_bus(384, 10501)
    assert bus is not None and bus.bytes_per_s == pytest.approx(1008e9, rel=0.001)


def test_below_reading_speed_is_slow_and_unknown_speed_is_not_judged() -> None:
    assert predict.status(predict.Rate(9.9, 20.0, "b")) == "slow"
    assert predict.status(predict.Rate(10.0, 20.0, "b")) == "runs"
    assert predict.status(predict.Rate(None, None, "unknown")) == "runs"
