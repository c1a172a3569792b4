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
from gptoss_doctor.types import RunStatus, Suite

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
