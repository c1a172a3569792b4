"""The install plan per recorded machine (pure), pip failures, and the smoke test."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_doctor.catalog import GPT_OSS_20B
from gptoss_doctor.install import execute
from gptoss_doctor.install.hub import RemoteFile
from gptoss_doctor.install.install_plan import engine_step, plan_install
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES, PIP_CACHE

GIB = 1024**3
REMOTE = (RemoteFile("ggml-org/gpt-oss-20b-GGUF", "gpt-oss-20b-mxfp4.gguf",
                     GPT_OSS_20B.shape.weights_bytes, "ab" * 32, "c" * 40),)


def _machine(name: str) -> HardwareSnapshot:
    return snapshot(ReplaySources(MACHINES / name), current({"HOME": "/home/user"}))


@pytest.mark.parametrize(("machine", "action", "cmake", "problem"), [
    pytest.param("rtx4090-24gb", "install", "-DGGML_CUDA=on", None,
                 id="CUDA machine with nvcc gets a CUDA build"),
    pytest.param("amd-rx6800-linux", "install", "-DGGML_HIP=on", None, id="AMD gets ROCm"),
    pytest.param("mac-m1-16gb", "install", "-DGGML_METAL=on", None,
                 id="small Mac gets llama.cpp with Metal"),
    pytest.param("cpu-only-64gb", "install", None, None, id="CPU-only machine, plain pip"),
])
def test_engine_build_per_machine(machine: str, action: str, cmake: str | None,
                                  problem: str | None) -> None:
    snap = _machine(machine)
    step, problems = engine_step(snap, assess(snap).verdict("20b"))
    assert step.action == action
    assert dict(step.env).get("CMAKE_ARGS") == cmake
    assert "llama-cpp-python==0.3.36" in step.command
    if cmake:  # a GPU build must not come back from pip's cache of a CPU wheel
        assert "--no-cache-dir" in step.command and "--force-reinstall" in step.command
    assert (problem is None and not problems) or (problem and problem in problems[0])


def test_a_cpu_with_amx_builds_without_its_kernels() -> None:
    # h100-80gb's /proc/cpuinfo (a Xeon 8480+, Sapphire Rapids) lists amx_int8: llama.cpp's
    # AMX matrix multiply crashes on such machines, so the build leaves it out, and says so.
    snap = _machine("h100-80gb")
    assert "amx_int8" in snap.cpu.flags
    step, _ = engine_step(snap, assess(snap).verdict("20b"))
    cmake = dict(step.env)["CMAKE_ARGS"]
    assert cmake.startswith("-DGGML_CUDA=on ")
    assert '-DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"' in cmake
    assert '-DCMAKE_CXX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"' in cmake
    assert any("AMX" in reason for reason in step.reasons)
    assert "--no-cache-dir" in step.command  # a cached build with AMX must not come back
    without = dataclasses.replace(snap, cpu=dataclasses.replace(snap.cpu, flags=("avx2",)))
    step, _ = engine_step(without, assess(without).verdict("20b"))
    assert dict(step.env)["CMAKE_ARGS"] == "-DGGML_CUDA=on"
    assert not any("AMX" in reason for reason in step.reasons)


def test_a_big_mac_gets_mlx_lm() -> None:
    snap = _machine("mac-m3pro-36gb")
    step, problems = engine_step(snap, assess(snap).verdict("20b"))
    assert (step.engine, step.action, step.command[-1]) == ("mlx", "install", "mlx-lm")
    assert not problems


def test_mlx_asked_for_on_linux_is_the_cpu_testing_path() -> None:
    snap = _machine("cpu-only-64gb")
    verdict = assess(snap, engine="mlx").verdict("20b")
    assert (verdict.engine, verdict.backend, verdict.placement, verdict.status) == (
        "mlx", "MLX (CPU)", "cpu", "slow")
    assert any("testing path only" in reason for reason in verdict.reasons)
    step, problems = engine_step(snap, verdict)
    assert (step.engine, step.action, step.command[-1]) == ("mlx", "install", "mlx-lm[cpu]")
    assert not problems
    # never chosen unasked, and a model the RAM cannot hold still does not fit
    assert assess(snap).verdict("20b").engine == "llama.cpp"
    small = _machine("cpu-only-16gb")
    too_big = assess(small, engine="mlx").verdict("120b")
    assert not too_big.can_run and "MLX runs on Apple Silicon" in too_big.reasons[0]


def test_a_recent_matching_build_is_kept() -> None:
    snap = _machine("rtx3060-12gb")
    build = dataclasses.replace(snap.software.llama_cpp, backends=("CUDA", "CPU"),
                                gpu_offload=True)
    snap = dataclasses.replace(snap, software=dataclasses.replace(snap.software,
                                                                  llama_cpp=build))
    step, problems = engine_step(snap, assess(snap).verdict("20b"))
    assert step.action == "keep" and step.command == () and not problems


def test_not_enough_disk_blocks_the_plan() -> None:
    snap = _machine("cpu-only-64gb")
    assert snap.disk is not None
    small = dataclasses.replace(snap, disk=dataclasses.replace(snap.disk, free_bytes=5 * GIB))
    plan = plan_install(small, GPT_OSS_20B, assess(small).verdict("20b"), REMOTE, {}, {},
                        "/models/x")
    assert not plan.ready and "not enough disk space" in plan.problems[0]
    roomy = plan_install(snap, GPT_OSS_20B, assess(snap).verdict("20b"), REMOTE, {}, {},
                         "/models/x")
    assert roomy.ready and roomy.bytes_to_download == REMOTE[0].size_bytes


def test_a_partial_download_counts_as_present() -> None:
    snap = _machine("cpu-only-64gb")
    plan = plan_install(snap, GPT_OSS_20B, assess(snap).verdict("20b"), REMOTE, {},
                        {REMOTE[0].path: 4 * GIB}, "/models/x")
    (step,) = plan.files
    assert step.action == "resume" and plan.bytes_to_download == REMOTE[0].size_bytes - 4 * GIB


def test_pip_failure_shows_the_last_lines_and_keeps_the_log(tmp_path: Path) -> None:
    snap = _machine("rtx4090-24gb")
    step, _ = engine_step(snap, assess(snap).verdict("20b"))
    output = "\n".join(f"line {i}" for i in range(40)) + "\nCMake Error: CUDA not found\n"

    def failing(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert kwargs["env"]["CMAKE_ARGS"] == "-DGGML_CUDA=on"  # type: ignore[index]
        return subprocess.CompletedProcess(argv, 1, output, "")

    with pytest.raises(execute.EngineInstallError) as info:
        execute.run_engine_step(step, tmp_path / "logs", runner=failing)
    assert "CMake Error: CUDA not found" in info.value.message
    assert "line 0\n" not in info.value.message  # only the tail
    (log,) = (tmp_path / "logs").iterdir()
    assert "line 0" in log.read_text() and str(log) in (info.value.hint or "")


# The test session's own llama-cpp-python build (noxfile.py); read before any test isolates HOME.
BUILT_WHEELS = Path.home() / ".cache" / "gptoss-doctor-build"


def _cached_llama_wheel() -> Path:
    """The llama-cpp-python wheel pip built (and cached) when the `llama` extra went in."""
    folders = (Path(PIP_CACHE, "wheels"), BUILT_WHEELS)
    built = sorted((wheel for folder in folders
                    for wheel in folder.rglob("llama_cpp_python-0.3.36-*.whl")),
                   key=lambda path: path.stat().st_mtime)
    if not built:
        pytest.skip(f"no llama-cpp-python 0.3.36 wheel in pip's cache ({PIP_CACHE}) or in "
                    f"{BUILT_WHEELS}; "
                    "this test installs that build and never compiles one")
    return built[-1]


@pytest.mark.llama
def test_the_real_engine_step_installs_the_cpu_build(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The plan's own pip command for a CPU-only machine, run into a fresh environment, with
    # the wheel pip built for this environment's `llama` extra, binary only: pip can never
    # fall back to compiling llama.cpp (ten minutes on 2 cores) here.
    snap = _machine("cpu-only-64gb")
    step, _ = engine_step(snap, assess(snap).verdict("20b"))
    assert step.action == "install" and step.env == ()
    wheel = _cached_llama_wheel()
    monkeypatch.setenv("PIP_CACHE_DIR", PIP_CACHE)
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheel.parent))
    monkeypatch.setenv("PIP_ONLY_BINARY", "llama-cpp-python")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    step = dataclasses.replace(step, command=(python, *step.command[1:]))
    log = execute.run_engine_step(step, tmp_path / "logs")
    assert log is not None and "llama-cpp-python==0.3.36" in log.read_text()
    done = subprocess.run([python, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0.3.36"


def test_uv_is_used_when_present() -> None:
    snap = _machine("rtx4090-24gb")
    snap = dataclasses.replace(snap, software=dataclasses.replace(
        snap.software, uv_path="/usr/local/bin/uv"))
    step, _ = engine_step(snap, assess(snap).verdict("20b"))
    assert step.command[:3] == ("/usr/local/bin/uv", "pip", "install")
    assert "--no-cache" in step.command and "--reinstall" in step.command


def test_a_full_disk_mid_download_keeps_the_partial_file_and_says_so(tmp_path: Path) -> None:
    from gptoss_doctor.install import download

    class Stream:
        status = 206

        def __init__(self) -> None:
            self.left = 3

        def read(self, _n: int) -> bytes:
            self.left -= 1
            return b"x" * 4096 if self.left >= 0 else b""

        def __enter__(self) -> Stream:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    partial_dir = tmp_path / ".partial"
    partial_dir.mkdir()
    # Writes to /dev/full fail with ENOSPC, exactly as on a full disk.
    download.partial_path(partial_dir, "cd" * 32).symlink_to("/dev/full")
    with pytest.raises(download.DownloadError) as info:
        download.fetch("http://example.invalid/f", {}, tmp_path / "f.gguf", 12288, "cd" * 32,
                       partial_dir, opener=lambda *_a, **_k: Stream())
    assert "disk filled up" in info.value.message and info.value.resumable
    assert "free some space" in (info.value.hint or "")
    assert not (tmp_path / "f.gguf").exists()
