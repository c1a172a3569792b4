"""Typed pieces of a results record that the engines and suites produce.

Each is a frozen dataclass written to JSON by the one converter (``gptoss_doctor.serde``)
and read back by it; the field names are the results files' keys, pinned by the JSON
Schema ``bench/schemas/results.schema.json`` (a test keeps the two in step). Fields an
engine does not have are ``None``, never missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.types import ModelFormat, RunEngine

JsonObject = dict[str, Any]  # a JSON object read from outside (a server, a device query)


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """The results' ``model`` section: what was measured, and whether it is real."""

    file_name: str
    path: str | None = None
    name: str | None = None
    size_bytes: int | None = None
    architecture: str | None = None
    file_type: int | str | None = None
    synthetic: bool | None = None
    sha256: str | None = None
    format: ModelFormat | None = None
    gpt_oss: str | None = None  # "20b" | "120b" | "tiny"
    n_tensors: int | None = None  # GGUF
    n_layers: int | None = None  # MLX
    n_experts: int | None = None
    quantization: str | None = None
    dtype: str | None = None
    is_gpt_oss: bool | None = None
    id: str | None = None  # the served model id (endpoints)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine ran: every engine's settings, ``None`` where an engine has none."""

    engine: RunEngine
    settings_source: str
    threads: int | None = None
    n_ctx: int | None = None
    n_batch: int | None = None
    n_ubatch: int | None = None
    n_gpu_layers: int | None = None
    n_cpu_moe: int | None = None
    flash_attn: bool | None = None
    swa_full: bool | None = None
    use_mmap: bool | None = None
    prefill_step_size: int | None = None  # MLX
    device: str | None = None  # MLX: "gpu" | "cpu"
    working_set_bytes: int | None = None
    wired_limit_bytes: int | None = None

    @classmethod
    def of_llama(cls, engine: RunEngine, settings_source: str, settings: LoadSettings,
                 threads: int | None) -> EngineConfig:
        """The config of a llama.cpp-based engine loaded with ``settings``."""
        s = settings
        return cls(engine=engine, settings_source=settings_source, threads=threads,
                   n_ctx=s.n_ctx, n_batch=s.n_batch, n_ubatch=s.n_ubatch,
                   n_gpu_layers=s.n_gpu_layers, n_cpu_moe=s.n_cpu_moe, flash_attn=s.flash_attn,
                   swa_full=s.swa_full, use_mmap=s.use_mmap)


@dataclass(frozen=True, slots=True)
class SoftwareFacts:
    """The results' ``software`` section: versions of what produced the numbers."""

    python: str | None
    backends: tuple[str, ...] = ()
    llama_cpp_python: str | None = None
    gpu_offload: bool | None = None
    system_info: str | None = None
    mlx: str | None = None
    mlx_lm: str | None = None
    mlx_backend_package: str | None = None
    device_info: JsonObject | None = None
    client: str | None = None  # endpoints: the HTTP client's version
    server: str | None = None  # endpoints: the server's own header


@dataclass(frozen=True, slots=True)
class MemoryFigures:
    """Peak memory of the run, and what the engine knows of device memory."""

    peak_rss_bytes: int
    gpu_used_by_model_bytes: int | None = None
    gpu_note: str | None = None
    mlx_peak_memory_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class FitDevice:
    """One device in llama.cpp's own memory breakdown of a loaded model (bytes)."""

    name: str
    self_bytes: int  # model + context + compute
    model_bytes: int
    context_bytes: int
    compute_bytes: int


@dataclass(frozen=True, slots=True)
class EngineExtras:
    """What an engine reports while loading (llama.cpp's buffers and offloaded tensors)."""

    load_buffers: JsonObject | None = None
    overridden_tensors: dict[str, str] = field(default_factory=dict)
    llama_cpp_fit: JsonObject | None = None  # llama-server: llama.cpp's own memory breakdown
