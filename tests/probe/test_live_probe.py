"""The real probe on this machine agrees with the system's own tools."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.probe import snapshot
from gptoss_doctor.settings import current

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="compares with Linux tools")


def _free_bytes() -> dict[str, int]:
    out = subprocess.run(["free", "-b"], capture_output=True, text=True, check=True).stdout
    header, mem = out.splitlines()[:2]
    return dict(zip(header.split(), (int(v) for v in mem.split()[1:]), strict=False))


def test_live_probe_agrees_with_free_nproc_and_df(isolated_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    connected: set[tuple[str, int]] = set()
    real_connect = socket.socket.connect

    def recording(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            connected.add(tuple(address)[:2])
        real_connect(sock, address)

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", recording)
        snap = snapshot()
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
    # The probe downloads nothing: the one place it may connect to is LM Studio's (refused).
    assert connected <= {("127.0.0.1", 9)}


@pytest.mark.llama
def test_live_probe_sees_an_installed_llama_cpp_python_build() -> None:
    build = snapshot().software.llama_cpp
    assert build is not None and build.version.startswith("0.3.")
    has_cuda = shutil.which("nvidia-smi") is not None and "CUDA" in build.backends
    assert build.gpu_offload is has_cuda
    assert "CPU" in build.backends and build.system_info
