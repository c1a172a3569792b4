"""Pure parsers of platform output, fed with recorded real text."""

from __future__ import annotations

import json

import pytest

from gptoss_doctor.probe import apple, cpu, linux, software
from gptoss_doctor.probe.nvidia_smi import parse_nvidia_smi_csv
from gptoss_doctor.probe.nvml import cuda_version_string, parse_nvml_record

from conftest import MACHINES

MIB = 1024**2
GIB = 1024**3


def _record(machine: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((MACHINES / machine / "machine.json").read_text())
    return data


def test_nvml_record_of_an_h100_gives_memory_capability_and_driver() -> None:
    gpus, notes = parse_nvml_record(_record("h100-80gb")["nvml"])  # type: ignore[arg-type]
    (gpu,) = gpus
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.vram_total_bytes == 85520809984
    assert gpu.vram_free_bytes == 85520809984 - MIB
    assert gpu.compute_capability == "9.0"
    assert gpu.driver_version == "535.183.06"
    assert gpu.cuda_driver_version == "12.2"
    assert gpu.pci_bus_id == "00000000:18:00.0"
    assert not gpu.unified_memory and gpu.discrete
    assert notes == ()


def test_nvml_not_supported_memory_means_unified_memory() -> None:
    gpus, notes = parse_nvml_record(_record("gb10-dgx-spark")["nvml"])  # type: ignore[arg-type]
    (gpu,) = gpus
    assert gpu.unified_memory and gpu.vram_total_bytes is None and gpu.vram_free_bytes is None
    assert "NotSupported" in notes[0].message


@pytest.mark.parametrize(("status", "expected"), [
    pytest.param("LibraryNotFound", "no NVIDIA driver", id="library missing says no driver"),
    pytest.param("DriverNotLoaded", "not loaded", id="driver not loaded is named"),
    pytest.param("LibRmVersionMismatch", "reboot", id="version mismatch says reboot"),
    pytest.param("Unknown", "NVML failed: boom", id="unknown errors keep their text"),
])
def test_nvml_failures_become_one_explained_note(status: str, expected: str) -> None:
    gpus, notes = parse_nvml_record({"status": status, "error": "boom"})
    assert gpus == ()
    assert len(notes) == 1 and expected in notes[0].message


@pytest.mark.parametrize(("value", "expected"), [(12040, "12.4"), (13010, "13.1"),
                                                 (12020, "12.2"), (0, None), ("x", None)])
def test_cuda_driver_version_integer_is_rendered_major_minor(value: object,
                                                             expected: str | None) -> None:
    assert cuda_version_string(value) == expected


def test_nvidia_smi_csv_parses_mib_and_treats_na_memory_as_unified() -> None:
    text = ("0, NVIDIA GeForce RTX 4070, 12282, 11852, 550.40.07, 00000000:2D:00.0, 8.9\n"
            "1, NVIDIA GB10, [N/A], [N/A], 580.95.05, 0000000F:01:00.0, 12.1\n"
            "garbage line\n")
    rtx, gb10 = parse_nvidia_smi_csv(text)
    assert rtx.vram_total_bytes == 12282 * MIB and rtx.vram_free_bytes == 11852 * MIB
    assert rtx.compute_capability == "8.9" and rtx.index == 0 and rtx.source == "nvidia-smi"
    assert gb10.unified_memory and gb10.vram_total_bytes is None


def test_meminfo_parses_kib_into_bytes() -> None:
    text = (MACHINES / "gb10-dgx-spark" / "fs/proc/meminfo").read_text()
    values = linux.parse_meminfo(text)
    assert values["MemTotal"] == 127600748 * 1024
    assert values["MemAvailable"] == 118566368 * 1024


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("max\n", None, id="cgroup v2 max means no limit"),
    pytest.param("8589934592\n", 8 * GIB, id="a v2 byte limit is read"),
    pytest.param("9223372036854771712\n", None, id="cgroup v1 sentinel means no limit"),
    pytest.param(None, None, id="missing file means no limit"),
])
def test_cgroup_limits(text: str | None, expected: int | None) -> None:
    assert linux.parse_cgroup_limit(text) == expected


def test_wsl_is_recognised_from_the_kernel_release() -> None:
    assert linux.is_wsl("5.15.153.1-microsoft-standard-WSL2", None)
    assert not linux.is_wsl("6.8.0-45-generic", "Linux version 6.8.0-45-generic")


def test_os_release_pretty_name() -> None:
    assert linux.parse_os_release('NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n') == \
        "Ubuntu 24.04.1 LTS"


def test_proc_cpuinfo_x86_flags_are_filtered_to_what_llama_cpp_uses() -> None:
    text = "model name\t: AMD Ryzen 5 5500\nflags\t\t: fpu sse avx avx2 fma f16c bmi2\n"
    brand, flags = cpu.parse_proc_cpuinfo(text)
    assert brand == "AMD Ryzen 5 5500"
    assert flags == ("avx", "avx2", "fma", "f16c")


def test_proc_cpuinfo_arm_features_map_to_neon_and_dotprod() -> None:
    text = (MACHINES / "gb10-dgx-spark" / "fs/proc/cpuinfo").read_text()
    _brand, flags = cpu.parse_proc_cpuinfo(text)
    assert {"neon", "dotprod", "sve", "i8mm"} <= set(flags)


def test_sysctl_output_is_parsed_and_error_lines_ignored() -> None:
    text = ("hw.memsize: 17179869184\nmachdep.cpu.brand_string: Apple M1\n"
            "sysctl: unknown oid 'iogpu.wired_limit_mb'\n")
    assert apple.parse_sysctl(text) == {"hw.memsize": "17179869184",
                                        "machdep.cpu.brand_string": "Apple M1"}


@pytest.mark.parametrize(("ram_gib", "logged_mib"), [
    pytest.param(16, 10922.67, id="16 GiB M1 logs 10922.67 MiB"),
    pytest.param(32, 21845.34, id="32 GiB M1 Max logs 21845.34 MiB"),
    pytest.param(64, 49152.00, id="64 GiB M1 Max logs 49152 MiB"),
    pytest.param(96, 73728.00, id="96 GiB M2 Max logs 73728 MiB"),
])
def test_ratio_budget_reproduces_the_working_sets_llama_cpp_logged(ram_gib: int,
                                                                    logged_mib: float) -> None:
    assert apple.ratio_budget(ram_gib * GIB) / MIB == pytest.approx(logged_mib, abs=0.01)


def test_budget_prefers_metal_then_wired_limit_then_ratio() -> None:
    metal = {"device_info": {"max_recommended_working_set_size": 115448725504}}
    wired = {"iogpu.wired_limit_mb": "114688"}
    assert apple.gpu_budget(128 * GIB, wired, metal) == (115448725504, "metal")
    assert apple.gpu_budget(128 * GIB, wired, None) == (112 * GIB, "iogpu.wired_limit_mb")
    assert apple.gpu_budget(128 * GIB, {"iogpu.wired_limit_mb": "0"}, {}) == \
        (96 * GIB, "ratio")
    assert apple.gpu_budget(None, {}, None) == (None, None)


def test_llama_system_info_names_backends() -> None:
    cuda = "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | CPU : AVX2 = 1 |"
    assert software.parse_system_info(cuda) == ("CUDA", "CPU")
    metal = "Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ARM_FMA = 1 |"
    assert software.parse_system_info(metal) == ("Metal", "CPU")
    assert software.parse_system_info("CPU : SSE3 = 1 | AVX2 = 1 |") == ("CPU",)


def test_nvcc_version_and_openai_models_parsers() -> None:
    assert software.parse_nvcc_version(
        "Cuda compilation tools, release 12.4, V12.4.131\n") == "12.4"
    assert software.parse_nvcc_version("no version here") is None
    body = '{"object":"list","data":[{"id":"openai/gpt-oss-20b"},{"id":"qwen3"}]}'
    assert software.parse_openai_models(body) == ("openai/gpt-oss-20b", "qwen3")
    assert software.parse_openai_models("<html>") is None
    assert software.parse_openai_models(None) is None


def test_llama_cpp_inspection_errors_become_warnings() -> None:
    build, notes = software.parse_llama_cpp_info({"error": "libcudart.so.12: cannot open"})
    assert build is None and "libcudart" in notes[0].message


def test_a_hostile_model_list_is_no_list_or_a_bounded_one() -> None:
    nested = '{"data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert software.parse_openai_models(nested) is None  # RecursionError inside json
    many = json.dumps({"data": [{"id": "x" * 10_000} for _ in range(1000)]})
    ids = software.parse_openai_models(many)
    assert ids is not None and len(ids) == software.MAX_MODELS
    assert all(len(i) == software.MAX_MODEL_ID for i in ids)
