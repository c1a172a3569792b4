"""The real probe on this machine agrees with the system's own tools."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gptoss_doctor.probe import snapshot
from gptoss_doctor.settings import current

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="compares with Linux tools")


def _free_bytes() -> dict[str, int]:
    out = subprocess.run(["free", "-b"], capture_output=True, text=True, check=True).stdout
    header, mem = out.splitlines()[:2]
    return dict(zip(header.split(), (int(v) for v in mem.split()[1:]), strict=False))


def test_live_probe_agrees_with_free_nproc_and_df(isolated_env: Path) -> None:
    started = time.monotonic()
    snap = snapshot()
    elapsed = time.monotonic() - started
    free = _free_bytes()
    assert snap.memory.ram_total_bytes == free["total"]
    assert snap.memory.ram_available_bytes == pytest.approx(free["available"], rel=0.05)
    nproc = int(subprocess.run(["nproc", "--all"], capture_output=True, text=True,
                               check=True).stdout)
    assert snap.cpu.cores_logical == nproc
    models_dir = Path(current().models_dir)
    existing = next(p for p in (models_dir, *models_dir.parents) if p.exists())
    df = subprocess.run(["df", "-B1", "--output=avail", str(existing)], capture_output=True,
                        text=True, check=True).stdout.split()[-1]
    assert snap.disk is not None and snap.disk.free_bytes is not None
    assert snap.disk.free_bytes == pytest.approx(int(df), rel=0.01)
    assert snap.os.system == "Linux" and snap.os.release == os.uname().release
    assert snap.cpu.brand  # /proc/cpuinfo always names the CPU on x86
    assert snap.software.lmstudio_server_models is None  # nothing listens on port 9
    # Not a timing assertion: a sanity bound far above the ~0.1 s it takes, so a probe that
    # started downloading or hanging on a socket would show up.
    assert elapsed < 30


def test_live_probe_sees_an_installed_llama_cpp_python_build() -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.skip("llama-cpp-python is not installed in this environment")
    build = snapshot().software.llama_cpp
    assert build is not None and build.version.startswith("0.3.")
    has_cuda = shutil.which("nvidia-smi") is not None and "CUDA" in build.backends
    assert build.gpu_offload is has_cuda
    assert "CPU" in build.backends and build.system_info
