"""Typed results records: the envelope every suite shares and each suite's record.

Written to JSON by the one converter (``serde.to_json``) and saved by
``bench.results.save``; the JSON Schema ``bench/schemas/results.schema.json`` is the
published contract (``tests/test_types_and_schemas.py`` keeps the two in step).
Nested parts that the suites already produce as JSON (the tool attempts with their raw
completions, the scores, the endpoint's per-request records) are JSON objects here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from gptoss_doctor import __version__
from gptoss_doctor.bench import results
from gptoss_doctor.bench.records import (
    EngineConfig,
    EngineExtras,
    MemoryFigures,
    ModelFacts,
    SoftwareFacts,
)
from gptoss_doctor.bench.speed import ChatResult, TestResult
from gptoss_doctor.serde import FLATTEN, to_json
from gptoss_doctor.types import EnergyKind, EnergyStatus, Placement, RunStatus, Suite

JsonObject = dict[str, Any]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Envelope:
    """What every results record starts with: the run, machine, software and model."""

    suite: Suite
    status: RunStatus
    machine: JsonObject  # the probe's snapshot, as ``probe.serialize.to_dict`` writes it
    software: SoftwareFacts
    model: ModelFacts
    kind: str = results.RESULTS_KIND
    schema_version: int = results.SCHEMA_VERSION
    tool_version: str = __version__
    created_at: str = field(default_factory=now)


@dataclass(frozen=True, slots=True)
class SpeedSettings:
    reps: int
    seed: int = 0
    protocol: str | None = None
    cooldown_s: float = 0.0  # idle between tests (--cooldown)


@dataclass(frozen=True, slots=True)
class SpeedConfig:
    engine: EngineConfig = field(metadata=FLATTEN)
    run: SpeedSettings = field(metadata=FLATTEN)


@dataclass(frozen=True, slots=True)
class Roofline:
    """Generation's bandwidth ceiling and each tg test as a share of it."""

    bytes_per_token: int
    bytes_per_token_basis: str
    bandwidth_bytes_per_s: float
    bandwidth_source: str
    ceiling_tokens_per_s: float
    tg_percent_of_ceiling: dict[str, float]
    # The doctor's prediction for this machine and settings (gpt-oss files only), and each
    # tg test's measured / predicted.
    predicted_tokens_per_s: float | None = None
    predicted_basis: str | None = None
    tg_ratio_to_predicted: dict[str, float] = field(default_factory=dict)
    # Where the prediction placed the model, its prompt speed, and each depth-0 pp test of at
    # least one micro-batch (512 tokens) as measured / predicted: what `calibrate` reads.
    predicted_placement: Placement | None = None
    predicted_prompt_tokens_per_s: float | None = None
    pp_ratio_to_predicted: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceEnergy:
    """One power source's share of a test's energy, and how it was measured."""

    source: str
    kind: EnergyKind
    method: str  # "energy counter" | "power samples"
    joules: float


@dataclass(frozen=True, slots=True)
class PerTestEnergy:
    """Energy over a test's timed windows only (warm-up and depth prefill excluded)."""

    test: str
    kind: str  # "pp" | "tg"
    tokens: int
    seconds: float
    joules: float | None
    joules_per_token: float | None
    average_power_w: float | None
    peak_power_w: float | None  # the highest sampling-interval average inside the windows
    samples: int  # readings taken inside the timed windows
    by_source: tuple[SourceEnergy, ...]
    note: str | None = None


@dataclass(frozen=True, slots=True)
class EnergyReport:
    """Joules per token where this machine reports power; why not where it does not."""

    status: EnergyStatus
    reason: str | None  # "not measured: ..." when status is "not measured"
    sources: tuple[str, ...]  # "nvml:0 NVIDIA H100 (energy counter)"
    interval_s: float
    rate_hz: float | None  # achieved readings per second
    tests: tuple[PerTestEnergy, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GpuConditions:
    """One GPU over the run: clocks, temperature, load and throttle reasons seen."""

    gpu: str
    sm_clock_mhz_min: int | None
    sm_clock_mhz_mean: float | None
    sm_clock_max_mhz: int | None
    temperature_c_max: float | None
    utilization_percent_mean: float | None
    reasons: tuple[str, ...]  # "SW power cap in 3 of 40 readings"


@dataclass(frozen=True, slots=True)
class Conditions:
    """What ran beside the benchmark and whether the hardware slowed itself down."""

    samples: int
    duration_s: float
    throttled: bool | None  # None: nothing here reports throttling
    throttle_evidence: tuple[str, ...]
    contended: bool | None  # None: nothing here reports other processes' use
    contention_evidence: tuple[str, ...]
    gpus: tuple[GpuConditions, ...]
    cpu_mhz_mean: float | None
    cpu_mhz_min: float | None
    cpu_max_mhz: float | None
    cpu_temperature_c_max: float | None
    other_processes_cpu_cores_mean: float | None
    other_processes_cpu_cores_peak: float | None
    top_other_processes: tuple[str, ...]
    not_measured: tuple[str, ...]  # "throttling: ..." for what no source reports
    ram_available_min_bytes: int | None = None  # the least RAM free at any reading


@dataclass(frozen=True, slots=True)
class SpeedRecord:
    """``bench speed`` in-process: the llama-bench-named tests, chat, memory, roofline."""

    envelope: Envelope = field(metadata=FLATTEN)
    config: SpeedConfig
    tests: tuple[TestResult, ...]
    chat: ChatResult | JsonObject
    memory: MemoryFigures
    roofline: Roofline
    extras: EngineExtras = field(metadata=FLATTEN)
    energy: EnergyReport | None = None
    conditions: Conditions | None = None


@dataclass(frozen=True, slots=True)
class ToolsSettings:
    """How the tool suite ran, the same for every in-process engine."""

    renderer: str
    reasoning: str
    repeats: int
    max_tokens: int
    timeout_s: float
    sampling: JsonObject
    categories: tuple[str, ...]
    suite: JsonObject  # name, sha256, number of cases
    reasoning_back: bool = True  # the analysis kept in the prompt between tool calls


@dataclass(frozen=True, slots=True)
class ToolsConfig:
    engine: EngineConfig = field(metadata=FLATTEN)
    run: ToolsSettings = field(metadata=FLATTEN)


@dataclass(frozen=True, slots=True)
class ToolsRecord:
    """``bench tools`` in-process: every attempt with its raw completion, and the scores."""

    envelope: Envelope = field(metadata=FLATTEN)
    config: ToolsConfig
    attempts: tuple[JsonObject, ...]
    scores: JsonObject
    memory: MemoryFigures
    extras: EngineExtras = field(metadata=FLATTEN)


def to_results(record: SpeedRecord | ToolsRecord) -> JsonObject:
    """The results file's JSON: the record plus the key properties that decide which runs
    compare."""
    data: JsonObject = to_json(record)
    data["key_properties"] = results.key_properties(data)
    return data
