"""The speed suite: llama-bench's method on any engine that can decode tokens.

Per test (llama-bench, ``tools/llama-bench``): one untimed warm-up; then for each repetition
the KV cache is cleared, ``depth`` random tokens are prefilled untimed, and only the test's
own tokens are timed — a prompt of ``n`` random tokens (``ppN``) or ``n`` single-token
decodes (``tgN``). Rates are tokens / second per repetition; mean and sample stddev over
the repetitions, raw samples kept. Names follow llama-bench: ``pp512``, ``tg128``,
``pp2048 @ d4096``.

A test that cannot run is recorded with its status and reason and never hides the others;
Ctrl-C ends the suite but keeps every finished test (and the interrupted one's samples).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gptoss_doctor.bench import stats
from gptoss_doctor.errors import DoctorError, UsageError
from gptoss_doctor.types import TestStatus

GGML_DEPTHS = (0, 4096, 8192, 16384, 32768)
PROTOCOLS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "default": (("pp512", "tg128"), (0,)),
    "ggml": (("pp2048", "tg32"), GGML_DEPTHS),  # ggml-org's published gpt-oss tables
}
_TEST = re.compile(r"^(pp|tg)(\d+)$")


class Engine(Protocol):
    """What the suite needs from an engine."""

    n_vocab: int
    n_ctx: int

    def reset(self) -> None: ...

    def decode(self, tokens: Sequence[int]) -> None: ...


@dataclass(frozen=True, slots=True)
class SpeedTest:
    kind: str  # "pp" | "tg"
    n_tokens: int
    depth: int = 0

    @property
    def name(self) -> str:
        base = f"{self.kind}{self.n_tokens}"
        return f"{base} @ d{self.depth}" if self.depth else base


@dataclass(frozen=True, slots=True)
class TestResult:
    name: str
    kind: str
    n_tokens: int
    depth: int
    status: TestStatus
    reason: str | None
    durations_s: tuple[float, ...]
    samples_ts: tuple[float, ...]
    mean_ts: float | None
    stddev_ts: float | None


def parse_tests(text: str, depths: Sequence[int] = (0,)) -> tuple[SpeedTest, ...]:
    """``"pp512,tg128"`` x depths -> tests; a bad name is a usage error."""
    tests: list[SpeedTest] = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        match = _TEST.match(item)
        if match is None or int(match.group(2)) <= 0:
            raise UsageError(f"bad test {item!r}: use ppN or tgN, e.g. pp512,tg128")
        tests.extend(SpeedTest(match.group(1), int(match.group(2)), depth) for depth in depths)
    if not tests:
        raise UsageError("no tests given")
    return tuple(tests)


def protocol_tests(name: str) -> tuple[SpeedTest, ...]:
    names, depths = PROTOCOLS[name]
    return parse_tests(",".join(names), depths)


def _finish(test: SpeedTest, status: TestStatus, reason: str | None,
            durations: Sequence[float]) -> TestResult:
    samples = stats.rates(test.n_tokens, durations)
    summary = stats.summarize(samples) if samples else None
    return TestResult(test.name, test.kind, test.n_tokens, test.depth, status, reason,
                      tuple(durations), samples, summary.mean if summary else None,
                      summary.stddev if summary else None)


def _timed_once(engine: Engine, test: SpeedTest, rng: random.Random,
                clock: Callable[[], float]) -> tuple[float, float]:
    """One repetition; the (start, end) of its timed part on ``clock``."""
    engine.reset()
    if test.depth:
        engine.decode([rng.randrange(engine.n_vocab) for _ in range(test.depth)])
    if test.kind == "pp":
        tokens = [rng.randrange(engine.n_vocab) for _ in range(test.n_tokens)]
        start = clock()
        engine.decode(tokens)
        return start, clock()
    token = rng.randrange(engine.n_vocab)
    start = clock()
    for _ in range(test.n_tokens):
        engine.decode([token])
        token = rng.randrange(engine.n_vocab)
    return start, clock()


def _warm_up(engine: Engine, test: SpeedTest, rng: random.Random) -> None:
    engine.reset()
    count = min(test.n_tokens, 32) if test.kind == "pp" else 1
    engine.decode([rng.randrange(engine.n_vocab) for _ in range(count)])


def run_suite(engine: Engine, tests: Sequence[SpeedTest], reps: int = 5, *, seed: int = 0,
              clock: Callable[[], float] = time.perf_counter,
              progress: Callable[[str, int, int], None] | None = None,
              timed: Callable[[str, float, float], None] | None = None,
              cooldown_s: float = 0.0, sleep: Callable[[float], None] = time.sleep,
              ) -> tuple[tuple[TestResult, ...], bool]:
    """Run ``tests``; returns (results, interrupted). ``progress(test, rep, reps)``;
    ``timed(test, start, end)`` after each timed part (the power sampler's windows);
    ``cooldown_s`` of idle between tests, so heat from one does not slow the next."""
    if reps < 1:
        raise UsageError("--reps must be at least 1")
    rng = random.Random(seed)
    results: list[TestResult] = []
    for index, test in enumerate(tests):
        if index and cooldown_s > 0:
            try:
                sleep(cooldown_s)
            except KeyboardInterrupt:
                return tuple(results), True
        needed = test.depth + test.n_tokens
        if needed > engine.n_ctx:
            results.append(_finish(test, "skipped", f"needs a {needed}-token context; the "
                                   f"model was loaded with {engine.n_ctx}", ()))
            continue
        durations: list[float] = []
        try:
            _warm_up(engine, test, rng)
            for rep in range(reps):
                if progress is not None:
                    progress(test.name, rep, reps)
                start, end = _timed_once(engine, test, rng, clock)
                durations.append(end - start)
                if timed is not None:
                    timed(test.name, start, end)
        except KeyboardInterrupt:
            results.append(_finish(test, "interrupted", "stopped by Ctrl-C", durations))
            return tuple(results), True
        except DoctorError as exc:
            results.append(_finish(test, "failed", exc.message, durations))
            continue
        results.append(_finish(test, "ok", None, durations))
    return tuple(results), False


class ChatEngine(Engine, Protocol):
    def argmax_next(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ChatResult:
    """Time to first token and generation speed through a real (harmony) prompt.

    TTFT follows LocalScore: request start to the first generated token (prefill plus
    picking it). Generation is fixed-length greedy decoding, so runs compare; it is labelled
    apart from the synthetic-token ``pp``/``tg`` numbers.
    """

    status: TestStatus
    reason: str | None
    prompt_tokens: int
    generated_tokens: int
    ttft_s: tuple[float, ...]
    generation_ts: tuple[float, ...]
    end_to_end_s: tuple[float, ...]
    ttft_mean_s: float | None
    generation_mean_ts: float | None


def run_chat(engine: ChatEngine, prompt: Sequence[int], n_gen: int = 64, reps: int = 3, *,
             clock: Callable[[], float] = time.perf_counter) -> ChatResult:
    if len(prompt) + n_gen > engine.n_ctx:
        return ChatResult("skipped", f"needs a {len(prompt) + n_gen}-token context", len(prompt),
                          n_gen, (), (), (), None, None)
    ttft: list[float] = []
    rates: list[float] = []
    totals: list[float] = []
    status: TestStatus = "ok"
    reason: str | None = None
    try:
        for _ in range(reps):
            engine.reset()
            start = clock()
            engine.decode(list(prompt))
            token = engine.argmax_next()
            first = clock()
            for _ in range(n_gen - 1):
                engine.decode([token])
                token = engine.argmax_next()
            end = clock()
            ttft.append(first - start)
            rates.append((n_gen - 1) / (end - first) if end > first else math.inf)
            totals.append(end - start)
    except KeyboardInterrupt:
        status, reason = "interrupted", "stopped by Ctrl-C"
    except DoctorError as exc:
        status, reason = "failed", exc.message
    return ChatResult(status, reason, len(prompt), n_gen, tuple(ttft), tuple(rates),
                      tuple(totals), stats.mean(ttft) if ttft else None,
                      stats.mean(rates) if rates else None)
