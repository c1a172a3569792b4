"""Typed options of the bench commands, and the one place options are refused.

The CLI parses flags into these objects; a service never sees click. ``refuse`` is where an
option that the chosen engine (or an endpoint) cannot honour becomes one usage error,
from the adapter's own declaration (``Adapter.unsupported``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from gptoss_doctor.bench import speed
from gptoss_doctor.errors import UsageError

ENDPOINT_ONLY = ("api_key_env", "concurrency", "api", "rate", "arrivals", "duration_s",
                 "requests", "warmup", "sweep", "slo", "workload", "load_seed")
# Options that choose or load a model in this process: an endpoint serves its own model
# with its own settings.
IN_PROCESS_SOURCES = ("synthetic", "protocol", "depths", "recipe", "regrade")
IN_PROCESS_SETTINGS = ("n_ctx", "threads", "n_gpu_layers", "n_cpu_moe", "engine",
                       "cooldown_s")


@dataclass(frozen=True, slots=True)
class EngineFlags:
    """Load-setting flags the user gave (``None``: not given, the plan decides)."""

    threads: int | None = None
    n_gpu_layers: int | None = None
    n_cpu_moe: int | None = None


@dataclass(frozen=True, slots=True)
class EndpointOptions:
    url: str
    model: str | None
    api_key_env: str | None
    timeout_s: float


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """``bench speed --endpoint`` as a load run (docs/serving.md): the flags as given."""

    replicas: tuple[str, ...] = ()  # every --endpoint after the first
    rate: str | None = None
    concurrency: str | None = None
    arrivals: str | None = None
    duration_s: float | None = None
    requests: int | None = None
    warmup: str | None = None
    sweep: bool = False
    slo: str | None = None
    workload: str | None = None
    seed: int = 0


@dataclass(frozen=True, slots=True)
class SpeedOptions:
    model: Path | None
    synthetic: str | None
    engine: str
    reps: int
    tests: tuple[speed.SpeedTest, ...]
    protocol: str | None
    flags: EngineFlags
    chat: bool
    output: Path
    cooldown_s: float = 0.0


FLAGS = {"n_ctx": "--ctx", "model_arg": "--model", "engine_name": "--engine",
         "cooldown_s": "--cooldown"}


def flag(name: str) -> str:
    return FLAGS.get(name, f"--{name.replace('_', '-')}")


def refuse(given: dict[str, object], refused: tuple[str, ...], why: str) -> None:
    """One usage error naming every given option in ``refused``: "--a, --b <why>"."""
    named = [flag(name) for name in refused if given.get(name) not in (None, False, ())]
    if named:
        raise UsageError(f"{', '.join(named)} {why}")


def refuse_for_engine(unsupported: tuple[str, ...], engine: str, flags: EngineFlags) -> None:
    """The options the chosen engine's adapter declared it cannot honour."""
    refuse(dataclasses.asdict(flags), unsupported, f"set llama.cpp's engine; {engine} has none")


def speed_tests(tests_text: str | None, depths: str | None, protocol: str | None
                ) -> tuple[speed.SpeedTest, ...]:
    """The tests of a speed run from ``--tests``, ``--depths`` or ``--protocol``."""
    if protocol and (tests_text or depths):
        raise UsageError("--protocol sets the tests and depths; drop --tests/--depths")
    if protocol:
        return speed.protocol_tests(protocol)
    try:
        depth_list = tuple(int(d) for d in depths.split(",")) if depths else (0,)
    except ValueError:
        raise UsageError(f"bad --depths {depths!r}: use numbers like 0,4096") from None
    return speed.parse_tests(tests_text or "pp512,tg128", depth_list)


def one_model_source(**sources: object) -> None:
    """Exactly one of the given model sources (``--model``, ``--synthetic``, ...)."""
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of " + ", ".join(flag(n) for n in sources))
