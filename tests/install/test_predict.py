"""The calibrated speed model: its terms by hand, its tables, and its constants = the fit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gptoss_doctor.catalog import GPT_OSS_20B, GPT_OSS_120B
from gptoss_doctor.install import bandwidth, calibrate, compute, predict
from gptoss_doctor.install.bandwidth import Bandwidth
from gptoss_doctor.install.predict import SpeedConstants, Workload
from gptoss_doctor.install.resources import Resources

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "calibration" / "measurements.csv"
C = SpeedConstants(device_efficiency=0.5, host_efficiency=0.8, unified_efficiency=0.75,
                   pp_moe_exponent=0.5, offload_layer_ms=0.5,
                   overhead_ms={"CUDA": 2.0, "CPU": 5.0, "MLX": 4.0},
                   pp_efficiency={"CUDA": 0.25, "CPU": 0.5})


def test_token_time_is_bytes_over_bandwidth_plus_the_backends_overhead() -> None:
    w = Workload("CUDA", 2e9, 1000e9, 0.0, 50e9, 3.6e9, None)
    assert predict.token_seconds(w, C) == pytest.approx(2e9 / 500e9 + 0.002)


def test_unified_memory_has_its_own_efficiency_and_metal_shares_mlx_constants() -> None:
    w = Workload("Metal", 2e9, 400e9, 0.0, None, 3.6e9, None, unified=True)
    assert predict.token_seconds(w, C) == pytest.approx(2e9 / 300e9 + 0.004)


def test_offloaded_experts_add_host_time_and_a_hand_over_per_layer() -> None:
    w = Workload("CUDA", 1e9, 1000e9, 1e9, 50e9, 3.6e9, None, offloaded_expert_bytes=8e9,
                 offloaded_layers=10)
    assert predict.token_seconds(w, C) == pytest.approx(1e9 / 500e9 + 1e9 / 40e9 + 0.002
                                                        + 10 * 0.0005)


def test_unknown_bandwidth_of_memory_that_holds_work_gives_no_time() -> None:
    assert predict.token_seconds(Workload("CUDA", 1e9, None, 0.0, 50e9, 3.6e9, None)) is None


@pytest.mark.parametrize(("avx2", "cap"), [
    pytest.param(True, 2 * 8.2, id="two AVX2 cores cap 20b at 16.4 tok/s"),
    pytest.param(False, 2 * 8.2 * 0.5, id="without AVX2 the cap halves"),
])
def test_few_cpu_cores_are_compute_bound(avx2: bool, cap: float) -> None:
    w = Workload("CPU", 0.0, None, 2.5e9, 1000e9, 3.6e9, None, cpu_threads=2, avx2=avx2)
    assert 1 / predict.token_seconds(w, C) == pytest.approx(cap)  # type: ignore[operator]


def test_prompt_speed_is_flops_over_two_active_params_with_a_moe_penalty() -> None:
    w = Workload("CUDA", 0.0, None, 0.0, None, 5e9, 100e12, tokens_per_expert=16)
    expected = 100e12 * 0.25 * (16 / 64) ** 0.5 / (2 * 5e9)
    assert predict.prompt_tokens_per_s(w, C) == pytest.approx(expected)


def test_expert_offload_streams_the_offloaded_experts_per_micro_batch() -> None:
    plain = Workload("CUDA", 0.0, None, 0.0, None, 5e9, 100e12)
    offload = Workload("CUDA", 0.0, None, 0.0, None, 5e9, 100e12,
                       offloaded_expert_bytes=50e9)
    slower = 1 / predict.prompt_tokens_per_s(offload, C)  # type: ignore[operator]
    base = 1 / predict.prompt_tokens_per_s(plain, C)  # type: ignore[operator]
    assert slower - base == pytest.approx(50e9 / predict.PCIE_BYTES_PER_S / predict.UBATCH)


def test_time_to_first_token_grows_faster_than_the_prompt() -> None:
    one = predict.ttft_seconds(1024, 1000.0, 0.01, "CUDA")
    eight = predict.ttft_seconds(8192, 1000.0, 0.01, "CUDA")
    assert one == pytest.approx(1.024 * (1 + 1024 / 96_000) + 0.01)
    assert eight > 8 * (one - 0.01)


def _resources(**overrides: object) -> Resources:
    values: dict[str, object] = dict(
        backend="CUDA", gpu_names=("x",), gpu_budget_bytes=None, ram_budget_bytes=None,
        ram_free_now_bytes=None, unified=False, gpu_bandwidth=Bandwidth(1008e9, "t"),
        cpu_bandwidth=Bandwidth(51.2e9, "c"), apple_budget_bytes=None, datacenter=False,
        cpu_cores=8, reasons=(), gpu_flops=330e12, cpu_flops=1.5e12)
    values.update(overrides)
    return Resources(**values)  # type: ignore[arg-type]


def test_the_verdicts_rate_carries_prompt_speed_and_ttft_for_1k_and_8k() -> None:
    rate = predict.predict(GPT_OSS_20B.shape, _resources(), placement="gpu", n_cpu_moe=0)
    assert rate.pp_tokens_per_s is not None and rate.pp_tokens_per_s > 0
    assert [n for n, _ in rate.ttft_s] == [1024, 8192]
    assert rate.ttft_s[0][1] < rate.ttft_s[1][1]
    assert "ms per token for CUDA" in rate.basis


def test_no_flops_figure_means_no_prompt_prediction() -> None:
    rate = predict.predict(GPT_OSS_120B.shape, _resources(gpu_flops=None), placement="gpu",
                           n_cpu_moe=0)
    assert rate.pp_tokens_per_s is None and rate.ttft_s == ()


@pytest.mark.parametrize(("name", "gbps"), [
    pytest.param("NVIDIA GeForce RTX 5090 Laptop GPU", 896,
                 id="a laptop 5090 is not read as the desktop card"),
    pytest.param("NVIDIA GeForce RTX 5090", 1792, id="the desktop 5090"),
    pytest.param("NVIDIA GeForce RTX 2080", 448, id="RTX 20-series below the 2080 Ti"),
    pytest.param("NVIDIA RTX A4000", 448, id="RTX A4000 is not an A40"),
    pytest.param("NVIDIA H200", 4800, id="H200 is not an H20"),
    pytest.param("AMD Radeon 8060S Graphics", 256, id="Strix Halo's integrated GPU"),
    pytest.param("Apple M5 Max", 614, id="M5 Max is not the base M5"),
    pytest.param("Intel(R) Arc(TM) A770 Graphics", 560, id="Intel Arc"),
])
def test_bandwidth_table_names(name: str, gbps: float) -> None:
    found = bandwidth.lookup_gpu(name)
    assert found is not None and found.bytes_per_s == gbps * 1e9


@pytest.mark.parametrize("name", [
    pytest.param("NVIDIA GeForce RTX 5070 Ti Laptop GPU", id="an unlisted laptop part"),
    pytest.param("Apple M5 Pro", id="an unlisted tier of a listed chip"),
])
def test_unlisted_variants_get_no_figure_rather_than_a_relatives(name: str) -> None:
    assert bandwidth.lookup_gpu(name) is None


@pytest.mark.parametrize(("chip", "cores", "memory_gib", "gbps"), [
    pytest.param("Apple M4 Max", 40, None, 546, id="a 40-core M4 Max is the full die"),
    pytest.param("Apple M4 Max", 32, None, 410, id="a 32-core M4 Max is binned"),
    pytest.param("Apple M4 Max", None, 128, 546, id="128 GB ships only with the full die"),
    pytest.param("Apple M4 Max", None, 36, 410, id="36 GB ships only with the binned die"),
    pytest.param("Apple M3 Max", None, 64, 400, id="a 64 GB M3 Max is the full die"),
])
def test_apple_max_chips_by_gpu_cores_or_memory(chip: str, cores: int | None,
                                                memory_gib: int | None, gbps: float) -> None:
    found = bandwidth.lookup_apple(chip, cores, memory_gib * 1024**3 if memory_gib else None)
    assert found is not None and found.bytes_per_s == gbps * 1e9


ROWS = calibrate.parse(DATA.read_text(encoding="utf-8"))


def test_the_dataset_names_a_source_for_every_row_and_a_reason_for_every_exclusion() -> None:
    assert len(ROWS) >= 40
    for m in ROWS:
        assert m.source_url.startswith(("https://", "README.md")), m.id
        assert m.use == "fit" or m.use.startswith(("excluded: ", "pp only: ")), m.id


def test_the_committed_constants_are_the_fit_of_the_committed_dataset() -> None:
    assert calibrate.fit(ROWS) == predict.CONSTANTS


@pytest.mark.parametrize("row", [m for m in ROWS if m.fitted and m.placement != "cpu"
                                 and not m.hw_class.startswith("Apple")], ids=lambda m: m.id)
def test_the_tables_hold_every_gpu_the_dataset_measured(row: calibrate.Measurement) -> None:
    found = bandwidth.lookup_gpu(row.device)
    assert found is not None and found.bytes_per_s == (row.device_gbps or 0) * 1e9
    assert compute.lookup_gpu_flops(row.device) == pytest.approx((row.device_tflops or 0) * 1e12)


def test_error_statistics_by_hand() -> None:
    s = calibrate.stats([(100.0, 100.0), (120.0, 100.0), (50.0, 100.0)])
    assert s.n == 3 and s.within_30 == pytest.approx(2 / 3)
    assert s.median_abs_log == pytest.approx(0.1823216, rel=1e-6)  # ln 1.2
    assert s.bias == pytest.approx((1.2 * 0.5) ** (1 / 3))


@pytest.mark.parametrize(("brand", "gbps"), [
    pytest.param("AMD EPYC 9B14 96-Core Processor", 460.8, id="EPYC 9004: 12 channels DDR5"),
    pytest.param("AMD EPYC 7343 16-Core Processor", 204.8, id="EPYC 7003: 8 channels DDR4"),
    pytest.param("AMD Ryzen 9 7950X 16-Core Processor", 83.2, id="AM5 desktop: dual DDR5"),
    pytest.param("AMD Ryzen 5 5600 6-Core Processor", 51.2, id="AM4 stays dual DDR4"),
    pytest.param("AMD RYZEN AI MAX+ 395 w/ Radeon 8060S", 256, id="Strix Halo's LPDDR5X"),
    pytest.param(None, 51.2, id="an unknown CPU gets the generic assumption"),
])
def test_host_bandwidth_by_cpu_platform(brand: str | None, gbps: float) -> None:
    assert bandwidth.host_for_cpu(brand).bytes_per_s == pytest.approx(gbps * 1e9)


@pytest.mark.parametrize(("device", "gbps"), [
    pytest.param("0x7550", 640, id="RX 9070 family by PCI id"),
    pytest.param("0x747e", 432, id="Navi 32: the lower of RX 7700 XT and 7800 XT"),
    pytest.param("0x66af", 1024, id="Vega 20 (Radeon VII, MI50)"),
])
def test_amd_cards_named_by_pci_id_get_a_bandwidth(device: str, gbps: float) -> None:
    from gptoss_doctor.probe.gpu_sysfs import KNOWN_DEVICES

    found = bandwidth.lookup_gpu(KNOWN_DEVICES[device])
    assert found is not None and found.bytes_per_s == gbps * 1e9


def test_the_intel_factor_is_the_scoreboards_and_applies_to_intel_gpus_only() -> None:
    scoreboard = (DATA.parent / "vulkan-scoreboard.csv").read_text(encoding="utf-8")
    assert calibrate.vendor_efficiency(scoreboard) == predict.VENDOR_EFFICIENCY
    w = predict.Workload("Vulkan", 2.5e9, 560e9, 0.0, None, 5.1e9, None)
    intel = dataclasses.replace(w, vendor="intel")
    overhead = predict.CONSTANTS.overhead_s("Vulkan")
    assert predict.token_seconds(intel) == pytest.approx(
        overhead + (predict.token_seconds(w) - overhead) / predict.VENDOR_EFFICIENCY["intel"])
    assert predict.token_seconds(dataclasses.replace(w, vendor="amd")) == \
        predict.token_seconds(w)


# Bandwidth-table cards without a FLOPS entry yet, each with its reason (none today).
NO_FLOPS_YET: set[str] = set()


def test_every_gpu_with_a_bandwidth_has_a_flops_figure() -> None:
    assert bandwidth.GPU_BANDWIDTH_GBPS.keys() >= NO_FLOPS_YET
    missing = [key for key in bandwidth.GPU_BANDWIDTH_GBPS if key not in NO_FLOPS_YET
               and not (compute.lookup_gpu_flops(key) or 0) > 0]
    assert missing == []
    # A laptop part gets its laptop figure (lowest listed boost clock), not the desktop card's.
    laptop = compute.lookup_gpu_flops("NVIDIA GeForce RTX 4090 Laptop GPU")
    assert laptop == pytest.approx(113e12)
    assert compute.lookup_gpu_flops("NVIDIA GeForce RTX 4090") == pytest.approx(330e12)
