"""What ``gptoss-doctor install`` will do, decided before anything is touched (pure).

Inputs are facts gathered read-only: the snapshot, the doctor's verdict, the Hub's file
metadata and the local copies that were already verified against it. The plan lists the
engine step (keep, install, rebuild; pip command and CMAKE_ARGS), every file (reuse,
resume or download, with bytes), disk space before and after, and anything that blocks.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from gptoss_doctor.catalog import ModelEntry
from gptoss_doctor.install.hub import RemoteFile
from gptoss_doctor.install.verdict import CMAKE_ARGS
from gptoss_doctor.install.verdict_records import ModelVerdict
from gptoss_doctor.install.wheels import prebuilt
from gptoss_doctor.probe.model import HardwareSnapshot

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"  # GCC/Clang keep these over -march=native
# Older bindings mangle gpt-oss chats: < 0.3.24 HTML-escapes tool results, < 0.3.20 drops
# template settings such as reasoning effort (docs/design.md,
# "llama-cpp-python versions").
MIN_LLAMA_CPP_PYTHON = (0, 3, 24)
DISK_MARGIN_BYTES = 1024**3
GIB = 1024**3


@dataclass(frozen=True, slots=True)
class EngineStep:
    engine: str  # "llama.cpp" | "llama-server" | "mlx"
    backend: str
    action: str  # "keep" | "install" | "rebuild" | "upgrade"
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileStep:
    repo: str
    path: str
    size_bytes: int
    sha256: str | None
    action: str  # "reuse" | "resume" | "download"
    source: str  # "models-dir" | "hf-cache" | "lmstudio" | "model-path" | "hub"
    local_path: str
    present_bytes: int  # already on disk (whole file for reuse, partial for resume)
    commit: str  # the repository revision the metadata (and any download) refers to
    git_sha1: str | None = None  # a non-LFS file's git object id (checked instead of sha256)

    @property
    def to_download_bytes(self) -> int:
        return 0 if self.action == "reuse" else self.size_bytes - self.present_bytes


@dataclass(frozen=True, slots=True)
class InstallPlan:
    model: str
    key: str
    verdict: ModelVerdict
    engine: EngineStep
    files: tuple[FileStep, ...]
    bytes_to_download: int
    bytes_present: int
    disk_free_bytes: int | None
    disk_free_after_bytes: int | None
    problems: tuple[str, ...]  # any problem blocks execution

    @property
    def ready(self) -> bool:
        return not self.problems


def cmake_args(backend: str, snap: HardwareSnapshot) -> tuple[str, str | None]:
    """``CMAKE_ARGS`` for building llama-cpp-python for ``backend`` on this machine, and why
    it differs from the backend's plain flags (None when it does not). On an x86 CPU with AMX
    the AMX kernels are left out: llama.cpp's AMX matrix multiply crashes on some Sapphire
    Rapids machines at the first batch of several tokens (docs/design.md, "AMX")."""
    cmake = CMAKE_ARGS.get(backend, "")
    if "amx_int8" not in snap.cpu.flags or snap.os.system == "Windows":  # MSVC: other flags
        return cmake, None
    amx = f'-DCMAKE_C_FLAGS="{NO_AMX}" -DCMAKE_CXX_FLAGS="{NO_AMX}"'
    return (f"{cmake} {amx}".strip(),
            "the CPU has AMX: its llama.cpp kernels are left out (-mno-amx-*), since they "
            "crash on some Sapphire Rapids machines")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def wheel_step(snap: HardwareSnapshot, backend: str, why: str) -> EngineStep | None:
    """llama.cpp's own server from a prebuilt xllamacpp wheel (no compiler), if one fits."""
    wheel = prebuilt(snap, backend)
    if wheel is None:
        return None
    force = ("--force-reinstall",) if wheel.index_url else ()  # replaces a CPU wheel
    command = (snap.software.uv_path, "pip", "install", "--python", sys.executable,
               *wheel.pip_args, *(("--reinstall",) if force else ())) \
        if snap.software.uv_path else (sys.executable, "-m", "pip", "install",
                                       *wheel.pip_args, *force)
    return EngineStep("llama-server", backend, "install", command, (), (why, *wheel.reasons))


def engine_step(snap: HardwareSnapshot, verdict: ModelVerdict, engine: str = "auto"
                ) -> tuple[EngineStep, list[str]]:
    """Which engine build to install, or why the present one is kept. ``engine``
    "llama-server" asks for llama.cpp's own server (a prebuilt wheel) by name."""
    problems: list[str] = []
    if engine == "llama-server":
        return _named_server(snap, verdict.backend or "CPU")
    if verdict.engine == "mlx":
        return _mlx_step(snap), problems
    backend = verdict.backend or "CPU"
    step = _llama_cpp_step(snap, backend)
    if step.action != "keep" and backend == "CUDA" and not snap.software.nvcc_version:
        return _without_nvcc(snap, step, engine)
    return step, problems


def _mlx_step(snap: HardwareSnapshot) -> EngineStep:
    """mlx-lm kept when installed, else installed (for the CPU off a Mac)."""
    package = "mlx-lm" if snap.os.system == "Darwin" else "mlx-lm[cpu]"
    if snap.software.mlx_lm_version:
        return EngineStep("mlx", "MLX", "keep", (), (), (
            f"mlx-lm {snap.software.mlx_lm_version} is installed",))
    return EngineStep("mlx", "MLX", "install",
                      (sys.executable, "-m", "pip", "install", package), (),
                      (f"{package} runs gpt-oss on the Metal GPU",))


def _llama_cpp_step(snap: HardwareSnapshot, backend: str) -> EngineStep:
    """llama-cpp-python for ``backend``: installed, rebuilt, upgraded, or kept when the
    present build fits."""
    build = snap.software.llama_cpp
    cmake, why = cmake_args(backend, snap)
    env = (("CMAKE_ARGS", cmake),) if cmake else ()
    install, rebuild = _pip_commands(snap)
    if build is None:
        step = EngineStep("llama.cpp", backend, "install", rebuild if cmake else install, env,
                          (f"llama-cpp-python is not installed; building it for {backend}",))
    elif backend != "CPU" and backend not in build.backends:
        step = EngineStep("llama.cpp", backend, "rebuild", rebuild, env, (
            f"the installed llama-cpp-python {build.version} is built for "
            f"{', '.join(build.backends) or 'CPU'} only and cannot use the {backend} GPU",))
    elif _version(build.version) < MIN_LLAMA_CPP_PYTHON:
        step = EngineStep("llama.cpp", backend, "upgrade", rebuild if cmake else install, env, (
            f"llama-cpp-python {build.version} mishandles gpt-oss chat templates; "
            f"upgrading to {LLAMA_CPP_PYTHON.split('==')[1]}",))
    else:
        step = EngineStep("llama.cpp", backend, "keep", (), (), (
            f"llama-cpp-python {build.version} ({', '.join(build.backends)}) fits this plan",))
    if step.action != "keep" and why:
        step = replace(step, reasons=(*step.reasons, why))
    return step


def _pip_commands(snap: HardwareSnapshot) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(install, rebuild) of llama-cpp-python, through uv where it is installed. A different
    backend needs a fresh compile: the wheel cache would hand back the old one."""
    install: tuple[str, ...]
    if snap.software.uv_path:
        install = (snap.software.uv_path, "pip", "install", "--python", sys.executable,
                   LLAMA_CPP_PYTHON)
        return install, (*install, "--reinstall", "--no-cache", "--no-binary",
                         "llama-cpp-python")
    install = (sys.executable, "-m", "pip", "install", LLAMA_CPP_PYTHON)
    return install, (*install, "--force-reinstall", "--no-cache-dir", "--no-binary",
                     "llama-cpp-python")


def _named_server(snap: HardwareSnapshot, backend: str) -> tuple[EngineStep, list[str]]:
    chosen = wheel_step(snap, backend, "--engine llama-server: llama.cpp's own server, "
                        "prebuilt")
    if chosen is None:
        return EngineStep("llama-server", backend, "install", (), (), ()), [
            f"no prebuilt xllamacpp wheel fits this {backend} machine (a CUDA wheel needs a "
            "driver for CUDA 12.8 or newer): use --engine llama.cpp"]
    return chosen, []


def _without_nvcc(snap: HardwareSnapshot, step: EngineStep, engine: str
                  ) -> tuple[EngineStep, list[str]]:
    """A CUDA build without the toolkit: the prebuilt wheel when the engine was left to
    the plan (and one fits the driver), else the toolkit is the fix."""
    wheel = wheel_step(snap, "CUDA", "nvcc is not installed, so llama-cpp-python cannot be "
                       "built for CUDA: llama.cpp's own server comes prebuilt instead")
    if wheel is not None and engine == "auto":
        return wheel, []
    return step, ["building llama-cpp-python for CUDA needs the CUDA toolkit (nvcc), which is "
                  "not installed: install NVIDIA's cuda-toolkit (e.g. `sudo apt install "
                  "nvidia-cuda-toolkit`) and run again"]


def plan_install(snap: HardwareSnapshot, entry: ModelEntry, verdict: ModelVerdict,
                 remote: tuple[RemoteFile, ...], local: dict[str, tuple[str, str]],
                 partial: dict[str, int], target_dir: str, engine: str = "auto"
                 ) -> InstallPlan:
    """Assemble the plan.

    ``local`` maps a remote path to (local path, source) for copies already verified against
    the Hub's sha256; ``partial`` maps it to the bytes of an interrupted download.
    """
    problems: list[str] = []
    if not verdict.can_run:
        problems.append(f"{verdict.model} does not fit this machine (see `gptoss-doctor`)")
    step, engine_problems = engine_step(snap, verdict, engine)
    problems.extend(engine_problems)
    files: list[FileStep] = []
    for item in remote:
        if item.path in local:
            path, source = local[item.path]
            files.append(FileStep(item.repo, item.path, item.size_bytes, item.sha256, "reuse",
                                  source, path, item.size_bytes, item.commit, item.git_sha1))
            continue
        have = partial.get(item.path, 0)
        files.append(FileStep(item.repo, item.path, item.size_bytes, item.sha256,
                              "resume" if have else "download", "hub",
                              f"{target_dir}/{item.path}", have, item.commit, item.git_sha1))
    to_download = sum(f.to_download_bytes for f in files)
    present = sum(f.present_bytes for f in files)
    free = snap.disk.free_bytes if snap.disk else None
    after = None if free is None else free - to_download
    if after is not None and to_download and after < DISK_MARGIN_BYTES:
        where = snap.disk.path if snap.disk else "?"
        problems.append(f"not enough disk space: {to_download / GIB:.1f} GiB to download, "
                        f"{(free or 0) / GIB:.1f} GiB free at {where} "
                        "(use --models-dir on a bigger disk)")
    return InstallPlan(verdict.model, entry.key, verdict, step, tuple(files), to_download,
                       present, free, after, tuple(problems))
