"""Prebuilt llama.cpp wheels (xllamacpp): matched to the driver's CUDA version and the GPU,
chosen by the install plan where nothing can compile, and named by the doctor instead of
asking for the CUDA toolkit. Replayed machines only: nothing is installed here.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_doctor.install import wheels
from gptoss_doctor.install.install_plan import engine_step
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe import serialize
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES


def _machine(name: str) -> HardwareSnapshot:
    return snapshot(ReplaySources(MACHINES / name), current({"HOME": "/home/user"}))


def _with_gpu(snap: HardwareSnapshot, cuda: str, capability: str) -> HardwareSnapshot:
    gpu = dataclasses.replace(snap.gpus[0], cuda_driver_version=cuda,
                              compute_capability=capability)
    return dataclasses.replace(snap, gpus=(gpu,))


@pytest.mark.parametrize(("cuda", "capability", "index", "jit"), [
    pytest.param("13.2", "8.6", "cu132", False, id="a CUDA 13.2 driver gets the 13.2 wheel"),
    pytest.param("13.0", "8.6", "cu128", False,
                 id="a CUDA 13.0 driver (R580) is too old for 13.2 and gets the 12.8 wheel"),
    pytest.param("13.2", "6.1", "cu128", True,
                 id="a Pascal card is below the 13.2 wheel's floor and JIT-compiles 12.8's PTX"),
    pytest.param("12.8", "9.0", "cu128", True, id="an H100 has no native build: JIT once"),
    pytest.param("12.4", "8.6", None, False, id="a driver older than CUDA 12.8 gets none"),
])
def test_the_cuda_wheel_follows_the_driver_and_the_gpu(cuda: str, capability: str,
                                                       index: str | None, jit: bool) -> None:
    wheel = wheels.prebuilt(_with_gpu(_machine("rtx3060-12gb"), cuda, capability), "CUDA")
    if index is None:
        assert wheel is None
        return
    assert wheel is not None and wheel.index_url == f"{wheels.INDEX}/{index}"
    assert wheel.pip_args == (wheels.PACKAGE, "--index-url", wheel.index_url)
    assert any("JIT" in r for r in wheel.reasons) == jit


def test_cpu_and_mac_wheels_come_from_pypi() -> None:
    for backend in ("CPU", "Metal"):
        wheel = wheels.prebuilt(_machine("cpu-only-16gb"), backend)
        assert wheel is not None and wheel.index_url is None
        assert wheel.pip_args == (wheels.PACKAGE,)


def test_no_nvcc_on_an_nvidia_machine_plans_the_prebuilt_cuda_wheel() -> None:
    snap = _machine("rtx3060-12gb")  # driver 580 (CUDA 13.0), no nvcc
    step, problems = engine_step(snap, assess(snap).verdict("20b"))
    assert not problems
    assert step.engine == "llama-server" and step.backend == "CUDA"
    assert step.command[-4:] == (wheels.PACKAGE, "--index-url", f"{wheels.INDEX}/cu128",
                                 "--force-reinstall")
    assert "nvcc is not installed" in step.reasons[0]


def test_llama_cpp_named_by_the_user_still_needs_the_toolkit() -> None:
    snap = _machine("rtx3060-12gb")
    step, problems = engine_step(snap, assess(snap).verdict("20b"), "llama.cpp")
    assert step.engine == "llama.cpp" and "needs the CUDA toolkit" in problems[0]


def test_an_old_driver_keeps_asking_for_the_toolkit() -> None:
    snap = _machine("h100-80gb")  # driver for CUDA 12.2: no prebuilt wheel runs on it
    step, problems = engine_step(snap, assess(snap).verdict("20b"))
    assert step.engine == "llama.cpp" and "needs the CUDA toolkit" in problems[0]
    _, named = engine_step(snap, assess(snap).verdict("20b"), "llama-server")
    assert "no prebuilt xllamacpp wheel" in named[0]


def test_the_doctors_json_names_the_wheel_instead_of_the_toolkit(tmp_path: Path) -> None:
    path = tmp_path / "rtx3060.json"
    serialize.save(_machine("rtx3060-12gb"), path)
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "--snapshot", str(path),
                           "--json"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    check = next(c for c in json.loads(done.stdout)["checks"] if c["name"] == "cuda-toolkit")
    assert check["status"] == "info" and "prebuilt CUDA wheel" in check["summary"]
    assert any(f"--index-url {wheels.INDEX}/cu128" in d for d in check["details"])
