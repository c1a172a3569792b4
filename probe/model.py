"""The frozen facts the probe returns: one ``HardwareSnapshot`` tree.

Units live in field names (``*_bytes``, ``*_mib``). Unknown is ``None`` — never ``0`` and
never a placeholder string. Anything a reader could not determine is explained by a
``Note`` on the snapshot instead of an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Note:
    """A non-fatal finding: ``source`` is the reader that made it."""

    source: str
    message: str
    severity: str = "info"  # "info" | "warning"


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One GPU. ``unified_memory`` parts share host RAM (Apple, GB10, Jetson, APUs)."""

    vendor: str  # "nvidia" | "amd" | "intel" | "apple" | "other"
    name: str
    source: str  # which reader found it: "nvml" | "nvidia-smi" | "sysfs" | "sysctl" | ...
    index: int | None = None
    vram_total_bytes: int | None = None
    vram_free_bytes: int | None = None
    unified_memory: bool = False
    discrete: bool | None = None
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # "12.4": what the driver supports
    compute_capability: str | None = None  # "9.0"
    pci_bus_id: str | None = None
    memory_bus_width_bits: int | None = None
    memory_clock_max_mhz: int | None = None


@dataclass(frozen=True, slots=True)
class AppleInfo:
    """Apple Silicon facts. The GPU may use at most ``gpu_budget_bytes`` of unified RAM."""

    chip: str | None
    unified_memory_bytes: int | None
    gpu_budget_bytes: int | None
    gpu_budget_source: str | None  # "metal" | "iogpu.wired_limit_mb" | "ratio"
    macos_version: str | None
    model_identifier: str | None = None
    gpu_cores: int | None = None


@dataclass(frozen=True, slots=True)
class CpuInfo:
    """The host CPU; ``flags`` keeps only those that matter to llama.cpp's kernels."""

    brand: str | None
    arch: str | None  # "x86_64" | "arm64" | "aarch64" | ...
    cores_physical: int | None
    cores_logical: int | None
    flags: tuple[str, ...] = ()

    @property
    def has_avx2(self) -> bool:
        return "avx2" in self.flags


@dataclass(frozen=True, slots=True)
class MemoryInfo:
    """Host RAM. ``cgroup_limit_bytes`` is set when a container caps memory below RAM."""

    ram_total_bytes: int | None
    ram_available_bytes: int | None
    swap_total_bytes: int | None = None
    cgroup_limit_bytes: int | None = None
    # Peak bandwidth of the memory modules fitted (``probe.dimm``), or measured on request
    # (``probe.membw``), with where it came from; None where neither is known.
    host_bandwidth_bytes_per_s: float | None = None
    host_bandwidth_source: str | None = None
    host_bandwidth_measured: bool = False  # a rate achieved here, not a peak figure

    @property
    def usable_total_bytes(self) -> int | None:
        """RAM this process may use in total (the cgroup limit wins when lower)."""
        if self.ram_total_bytes is None:
            return self.cgroup_limit_bytes
        if self.cgroup_limit_bytes is None:
            return self.ram_total_bytes
        return min(self.ram_total_bytes, self.cgroup_limit_bytes)


@dataclass(frozen=True, slots=True)
class DiskInfo:
    """Space on the file system that holds the models folder."""

    path: str
    free_bytes: int | None
    total_bytes: int | None


@dataclass(frozen=True, slots=True)
class OsInfo:
    """Operating system and runtime environment."""

    system: str  # "Linux" | "Darwin" | "Windows"
    release: str | None  # kernel release / OS build
    version: str | None  # distribution or product version ("Ubuntu 24.04", "14.5")
    machine: str | None  # "x86_64" | "arm64"
    python_version: str
    is_wsl: bool = False
    container: str | None = None  # "docker" | "podman" | "kubernetes" | "container"


@dataclass(frozen=True, slots=True)
class WeightsFound:
    """A gpt-oss weights file or folder already on disk."""

    model: str  # "gpt-oss-20b" | "gpt-oss-120b"
    format: str  # "gguf" | "mlx"
    path: str
    size_bytes: int
    location: str  # "hf-cache" | "lmstudio" | "models-dir"
    complete: bool


@dataclass(frozen=True, slots=True)
class LlamaCppBuild:
    """An installed llama-cpp-python and what its compiled library can do."""

    version: str
    gpu_offload: bool | None
    backends: tuple[str, ...] = ()  # "CUDA" | "Metal" | "Vulkan" | "ROCm" | "CPU"
    system_info: str | None = None


@dataclass(frozen=True, slots=True)
class SoftwareInfo:
    """Engines, apps and weights already present on the machine."""

    llama_cpp: LlamaCppBuild | None = None
    mlx_version: str | None = None
    mlx_lm_version: str | None = None
    nvcc_version: str | None = None
    uv_path: str | None = None  # uv installs packages faster than pip when present
    lmstudio_installed: bool = False
    lmstudio_cli: str | None = None
    lmstudio_server_models: tuple[str, ...] | None = None  # None: no server answered
    weights: tuple[WeightsFound, ...] = ()


@dataclass(frozen=True, slots=True)
class HardwareSnapshot:
    """Everything the planner needs to know about one machine, at one moment."""

    os: OsInfo
    cpu: CpuInfo
    memory: MemoryInfo
    disk: DiskInfo | None
    gpus: tuple[GpuInfo, ...] = ()
    apple: AppleInfo | None = None
    software: SoftwareInfo = field(default_factory=SoftwareInfo)
    notes: tuple[Note, ...] = ()
    schema_version: int = SCHEMA_VERSION
    taken_at: str | None = None
    tool_version: str | None = None
