"""Assemble a ``HardwareSnapshot`` from every reader, in well under a second.

Slow sources (NVML, the engine inspections in child processes, LM Studio's HTTP port)
run concurrently; everything else is a file read.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gptoss_doctor import __version__
from gptoss_doctor.probe import cpu, dimm, linux, software, vulkaninfo, windows
from gptoss_doctor.probe.apple import read_apple
from gptoss_doctor.probe.gpu_sysfs import read_drm_gpus
from gptoss_doctor.probe.model import (
    CpuInfo,
    DiskInfo,
    GpuInfo,
    HardwareSnapshot,
    MemoryInfo,
    Note,
    OsInfo,
    SoftwareInfo,
)
from gptoss_doctor.probe.nvidia_smi import read_nvidia_smi
from gptoss_doctor.probe.nvml import parse_nvml_record
from gptoss_doctor.probe.sources import LiveSources, Sources
from gptoss_doctor.settings import Settings, current


def _os(sources: Sources, facts: dict[str, str]) -> OsInfo:
    system = facts.get("system") or "unknown"
    version: str | None = None
    wsl = False
    container = None
    if system == "Linux":
        release_text = sources.read_text("/etc/os-release")
        version = linux.parse_os_release(release_text) if release_text else None
        wsl = linux.is_wsl(facts.get("release"), sources.read_text("/proc/version"))
        container = linux.detect_container(sources)
    elif system == "Darwin":
        version = facts.get("mac_ver") or None
    elif system == "Windows":
        version = facts.get("win_ver") or None
    return OsInfo(system=system, release=facts.get("release") or None, version=version,
                  machine=facts.get("machine") or None,
                  python_version=facts.get("python_version") or "unknown",
                  is_wsl=wsl, container=container)


def _memory(sources: Sources, system: str, win: windows.WindowsFacts | None = None
            ) -> tuple[MemoryInfo, list[Note]]:
    notes: list[Note] = []
    total = available = swap = None
    # Method 1: /proc/meminfo (Linux; what `free` shows).
    meminfo_text = sources.read_text("/proc/meminfo") if system == "Linux" else None
    if meminfo_text:
        meminfo = linux.parse_meminfo(meminfo_text)
        total, available = meminfo.get("MemTotal"), meminfo.get("MemAvailable")
        swap = meminfo.get("SwapTotal")
    # Method 2: psutil (macOS, Windows).
    if total is None:
        values = sources.memory()
        if values:
            total, available = values.get("total"), values.get("available")
            swap = values.get("swap_total")
    if total is None:
        notes.append(Note("memory", "could not read the amount of RAM", "warning"))
    limit = None
    if system == "Linux":
        limit, cgroup_notes = linux.read_cgroup_limit(sources)
        notes.extend(cgroup_notes)
        if limit is not None and total is not None and limit >= total:
            limit = None  # a limit above physical RAM changes nothing
            notes = [n for n in notes if n.source != "cgroup"]
    modules, unread = dimm.read_with_reason(sources, system, win)
    if unread:
        notes.append(Note("dimm", unread))
    return MemoryInfo(total, available, swap, limit,
                      modules.bytes_per_s if modules else None,
                      modules.source if modules else None, False), notes


def _cpu(sources: Sources, facts: dict[str, str]) -> CpuInfo:
    brand: str | None = None
    flags: tuple[str, ...] = ()
    text = sources.read_text("/proc/cpuinfo") if facts.get("system") == "Linux" else None
    if text:
        brand, flags = cpu.parse_proc_cpuinfo(text)  # Method 1
    if brand is None:
        info = sources.cpuinfo()  # Method 3 (macOS's sysctl brand is read by the Apple probe)
        if info:
            brand, flags = cpu.from_cpuinfo_dict(info)
    return cpu.build_cpu(brand, flags, facts.get("machine") or None, sources.cpu_counts())


def _software(
    sources: Sources, settings: Settings, llama: dict[str, Any] | None,
    mlx: dict[str, Any] | None, lmstudio_body: str | None,
) -> tuple[SoftwareInfo, list[Note]]:
    notes: list[Note] = []
    build, build_notes = software.parse_llama_cpp_info(llama)
    notes.extend(build_notes)
    nvcc_path = sources.which("nvcc") or (
        "/usr/local/cuda/bin/nvcc" if sources.file_size("/usr/local/cuda/bin/nvcc") else None
    )
    nvcc = None
    if nvcc_path:
        result = sources.run([nvcc_path, "--version"])
        nvcc = software.parse_nvcc_version(result.stdout) if result else None
    lms_home = str(settings.lmstudio_home)
    lms_cli = sources.which("lms") or (
        f"{lms_home}/bin/lms" if sources.file_size(f"{lms_home}/bin/lms") else None
    )
    weights = software.find_weights(sources, str(settings.hf_home), lms_home,
                                    str(settings.models_dir))
    return SoftwareInfo(
        llama_cpp=build,
        mlx_version=(mlx or {}).get("version") or sources.dist_version("mlx"),
        mlx_lm_version=sources.dist_version("mlx-lm"),
        nvcc_version=nvcc,
        uv_path=sources.which("uv"),
        lmstudio_installed=sources.list_dir(lms_home) is not None or lms_cli is not None,
        lmstudio_cli=lms_cli,
        lmstudio_server_models=software.parse_openai_models(lmstudio_body),
        weights=weights,
    ), notes


def _gpus(sources: Sources, system: str, nvml_record: dict[str, Any] | None,
          win: windows.WindowsFacts | None
          ) -> tuple[list[GpuInfo], list[Note]]:
    """NVIDIA through NVML (else nvidia-smi), then Windows' WMI for the rest (and NVIDIA
    without either), then Linux's sysfs for non-NVIDIA cards."""
    gpus: list[GpuInfo] = []
    notes: list[Note] = []
    if nvml_record is not None:
        nvml_gpus, nvml_notes = parse_nvml_record(nvml_record)
        notes.extend(nvml_notes)
        gpus.extend(nvml_gpus)
        if not nvml_gpus:  # Method 2 for NVIDIA: the nvidia-smi CLI
            smi_gpus, smi_notes = read_nvidia_smi(sources)
            gpus.extend(smi_gpus)
            notes.extend(smi_notes)
    if win is not None:  # AMD, Intel, and NVIDIA without NVML or nvidia-smi
        win_gpus, win_notes = windows.gpus(win, any(g.vendor == "nvidia" for g in gpus))
        gpus.extend(win_gpus)
        notes.extend(win_notes)
    if system == "Linux":
        nvidia_found = any(g.vendor == "nvidia" for g in gpus)
        drm_gpus, drm_notes = read_drm_gpus(sources, nvidia_found)
        # Intel Arc on mainline Linux: its memory size only through Vulkan.
        drm_gpus, drm_notes = vulkaninfo.fill_missing_vram(sources, drm_gpus, drm_notes)
        gpus.extend(drm_gpus)
        notes.extend(drm_notes)
    return gpus, notes


def snapshot(sources: Sources | None = None, settings: Settings | None = None,
             now: dt.datetime | None = None) -> HardwareSnapshot:
    """Probe the machine behind ``sources`` (default: this one)."""
    sources = sources or LiveSources()
    settings = settings or current()
    facts = sources.platform()
    system = facts.get("system", "")
    with ThreadPoolExecutor(max_workers=4) as pool:
        nvml_future = pool.submit(sources.nvml) if system != "Darwin" else None
        llama_future = pool.submit(sources.engine_info, "llama_cpp")
        mlx_future = pool.submit(sources.engine_info, "mlx")
        lms_future = pool.submit(sources.http_get, f"{settings.lmstudio_url}/v1/models")
        notes: list[Note] = []
        os_info = _os(sources, facts)
        win = windows.read(sources) if system == "Windows" else None
        memory, memory_notes = _memory(sources, system, win)
        notes.extend(memory_notes)
        cpu_info = _cpu(sources, facts)
        disk_usage = sources.disk_usage(str(settings.models_dir))
        disk = DiskInfo(str(settings.models_dir), disk_usage[1] if disk_usage else None,
                        disk_usage[0] if disk_usage else None)
        gpus, gpu_notes = _gpus(sources, system, nvml_future.result() if nvml_future else None,
                                win)
        notes.extend(gpu_notes)
        mlx_info = mlx_future.result()
        apple = None
        if system == "Darwin":
            apple, apple_notes = read_apple(sources, mlx_info)
            notes.extend(apple_notes)
            if apple is not None:
                cpu_info = cpu.build_cpu(apple.chip, cpu_info.flags, cpu_info.arch,
                                         (cpu_info.cores_physical, cpu_info.cores_logical))
                gpus.append(GpuInfo(vendor="apple", name=apple.chip or "Apple GPU",
                                    source="sysctl", unified_memory=True, discrete=False))
        soft, soft_notes = _software(sources, settings, llama_future.result(), mlx_info,
                                     lms_future.result())
        notes.extend(soft_notes)
    if disk.free_bytes is None:
        notes.append(Note("disk", f"could not measure free space at {disk.path}", "warning"))
    taken = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    return HardwareSnapshot(os=os_info, cpu=cpu_info, memory=memory, disk=disk,
                            gpus=tuple(gpus), apple=apple, software=soft, notes=tuple(notes),
                            taken_at=taken, tool_version=__version__)
