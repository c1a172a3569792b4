"""Typed pieces of a results record that the engines and suites produce.

Each is a frozen dataclass written to JSON by the one converter (``gptoss_doctor.serde``)
and read back by it; the field names are the results files' keys, pinned by the JSON
Schema ``bench/schemas/results.schema.json`` (a test keeps the two in step). Fields an
engine does not have are ``None``, never missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gptoss_doctor.bench.load_plan import SweepResult
from gptoss_doctor.bench.prom import ServerMetrics
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


@dataclass(frozen=True, slots=True)
class Distribution:
    """One latency metric over a level's requests (seconds; None without values)."""

    n: int
    mean: float | None
    std: float | None  # population standard deviation
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True, slots=True)
class LevelFigures:
    """One load level's figures, for one replica (``url``) or all of them (``url`` None)."""

    url: str | None
    requests: int
    ok: int
    failed: int  # failed for any reason but the deadline
    timed_out: int  # hit --timeout
    errors: dict[str, int]
    output_tokens: int
    output_tps: float | None  # output tokens of finished requests / the level's wall time
    completed_rps: float | None  # finished requests / the level's wall time
    goodput_rps: float | None  # finished requests meeting every SLO / wall time (with --slo)
    ttft_s: Distribution
    itl_s: Distribution  # token-weighted (docs/serving.md)
    tpot_s: Distribution
    e2e_s: Distribution


@dataclass(frozen=True, slots=True)
class ClientLoad:
    """How busy the benchmarking client itself was during a level."""

    lag_p99_s: float | None  # event-loop lag: how late a 10 ms ticker woke, 99th percentile
    lag_max_s: float | None
    cpu_share: float | None  # this process's CPU seconds / wall seconds (1.0: one core busy)
    client_bound: bool
    reason: str | None  # which threshold was passed, with the figures


@dataclass(frozen=True, slots=True)
class LoadLevel:
    """One level of a load run: a request rate (open loop) or a concurrency (closed loop)."""

    mode: str  # "rate" | "concurrency"
    requested_rate: float | None  # requests/s asked for (open loop)
    concurrency: int | None  # streams (closed loop)
    arrivals: str | None  # constant | poisson | gamma:<burstiness> (open loop)
    seed: int
    wall_s: float  # the measured window: first measured send -> last measured end
    sent: int  # measured requests sent (warm-up excluded)
    warmup: int  # requests sent as warm-up, in no figure
    dropped: int  # scheduled requests not sent: the outstanding cap was reached
    max_outstanding: int  # the most requests in flight at once
    achieved_rate: float | None  # measured requests sent / their send span
    send_lag_p99_s: float | None  # how late sends were against the schedule (open loop)
    slo_met: bool | None  # every --slo met at the level (None without --slo)
    slo_values: dict[str, float | None]  # each SLO's figure at the level (s)
    total: LevelFigures
    replicas: tuple[LevelFigures, ...]
    client: ClientLoad
    server: tuple[ServerMetrics, ...] = ()  # each server's own /metrics over the level
    samples: tuple[JsonObject, ...] = ()  # one per measured request


@dataclass(frozen=True, slots=True)
class LoadRun:
    """The results' ``load`` section of an endpoint speed run (open loop, sweeps, replicas)."""

    mode: str  # "rate" | "concurrency"
    arrivals: str | None
    duration_s: float | None  # each level's length (--duration), or
    requests: int | None  # each level's measured requests (--requests)
    warmup: str | None
    seed: int
    max_outstanding_cap: int
    replicas: tuple[str, ...]
    workload: str
    slos: tuple[str, ...]
    levels: tuple[LoadLevel, ...]
    sweep: SweepResult | None = None  # when --sweep ran
