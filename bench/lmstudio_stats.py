"""LM Studio's own per-request statistics beside this project's measurement of the same
requests.

LM Studio's native chat API answers with ``stats``: ``/api/v1/chat`` (LM Studio 0.4+:
``input_tokens``, ``total_output_tokens``, ``reasoning_output_tokens``,
``tokens_per_second``, ``time_to_first_token_seconds``) and, on older servers,
``/api/v0/chat/completions`` (0.3.6+: ``stats.tokens_per_second``,
``stats.time_to_first_token``, ``stats.generation_time`` and OpenAI ``usage``), as LM
Studio's REST API reference documents them. Each request is sent non-streamed and timed
here from send to the last byte; LM Studio's own account of the same request
(time to first token + output tokens / tokens per second) stands beside it, and the
difference is what the client sees beyond LM Studio's figures (HTTP, queueing,
detokenisation). Answers are hostile: only finite, non-negative numbers of the documented
names are kept.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

from gptoss_doctor.bench import endpoint as ep

PROMPT = "Count from one to twenty in words, separated by commas."
MAX_TOKENS = 128
REQUESTS = 3
V1 = "/api/v1/chat"
V0 = "/api/v0/chat/completions"


@dataclass(frozen=True, slots=True)
class Figures:
    """One request: LM Studio's stats and the client's clock."""

    tokens_per_second: float | None
    time_to_first_token_s: float | None
    output_tokens: int | None
    reasoning_output_tokens: int | None
    input_tokens: int | None
    latency_s: float  # measured here, send to last byte

    @property
    def lmstudio_latency_s(self) -> float | None:
        """LM Studio's own account: first token, then the rest at its rate (None where that
        is no finite time: a rate of 1e-320 tokens/s)."""
        if self.time_to_first_token_s is None or not self.tokens_per_second \
                or self.output_tokens is None:
            return None
        latency = self.time_to_first_token_s + self.output_tokens / self.tokens_per_second
        return latency if math.isfinite(latency) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (isinstance(value, int) and value > 2**53):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number < 2**53 else None


def parse_v1(body: Any, latency_s: float) -> Figures:
    stats = body.get("stats") if isinstance(body, dict) else None
    if not isinstance(stats, dict):
        raise ep.EndpointError(f"{V1} answered without stats")
    return Figures(_number(stats.get("tokens_per_second")),
                   _number(stats.get("time_to_first_token_seconds")),
                   _count(stats.get("total_output_tokens")),
                   _count(stats.get("reasoning_output_tokens")),
                   _count(stats.get("input_tokens")), latency_s)


def parse_v0(body: Any, latency_s: float) -> Figures:
    stats = body.get("stats") if isinstance(body, dict) else None
    if not isinstance(stats, dict):
        raise ep.EndpointError(f"{V0} answered without stats")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return Figures(_number(stats.get("tokens_per_second")),
                   _number(stats.get("time_to_first_token")),
                   _count(usage.get("completion_tokens")), _count(reasoning),
                   _count(usage.get("prompt_tokens")), latency_s)


def _one(native: ep.Endpoint, model: str, api: str) -> Figures:
    if api == V1:
        body: dict[str, Any] = {"model": model, "input": PROMPT, "max_output_tokens":
                                MAX_TOKENS, "reasoning": "low", "store": False,
                                "temperature": 0}
    else:
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": MAX_TOKENS, "temperature": 0, "stream": False}
    start = time.perf_counter()
    answer = ep.post_json(native, api, body)
    latency = time.perf_counter() - start
    return (parse_v1 if api == V1 else parse_v0)(answer, latency)


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 4) if known else None


def measure(endpoint: ep.Endpoint, model: str, requests: int = REQUESTS) -> dict[str, Any]:
    """``requests`` requests through LM Studio's native API (v1, else v0): each one's
    stats beside its latency measured here, and the medians. A server that offers neither
    API gives ``{"api": None, "error": …}`` rather than failing the run."""
    native = ep.Endpoint(endpoint.root, endpoint.api_key, endpoint.timeout_s)
    figures: list[Figures] = []
    api: str | None = None
    error = None
    for candidate in (V1, V0):
        try:
            figures = [_one(native, model, candidate) for _ in range(requests)]
            api = candidate
            break
        except ep.EndpointError as exc:
            error = exc.message
    rows = [{"lmstudio": {"tokens_per_second": f.tokens_per_second,
                          "time_to_first_token_s": f.time_to_first_token_s,
                          "output_tokens": f.output_tokens,
                          "reasoning_output_tokens": f.reasoning_output_tokens,
                          "input_tokens": f.input_tokens,
                          "latency_s": None if f.lmstudio_latency_s is None
                          else round(f.lmstudio_latency_s, 4)},
             "measured": {"latency_s": round(f.latency_s, 4),
                          "tokens_per_s_end_to_end": round(f.output_tokens / f.latency_s, 3)
                          if f.output_tokens is not None and f.latency_s > 0 else None}}
            for f in figures]
    return {"api": api, "prompt": PROMPT, "max_tokens": MAX_TOKENS, "requests": rows,
            "error": None if api else error,
            "median": {"lmstudio_tokens_per_second": _median([f.tokens_per_second
                                                              for f in figures]),
                       "lmstudio_time_to_first_token_s": _median(
                           [f.time_to_first_token_s for f in figures]),
                       "lmstudio_latency_s": _median([f.lmstudio_latency_s for f in figures]),
                       "measured_latency_s": _median([f.latency_s for f in figures]),
                       "reasoning_output_tokens": _median(
                           [None if f.reasoning_output_tokens is None
                            else float(f.reasoning_output_tokens) for f in figures])}}


def summary(found: dict[str, Any]) -> str:
    """One line for people: LM Studio's medians beside the latency measured here."""
    if found.get("api") is None:
        return f"LM Studio's native stats: not available ({found.get('error') or 'no answer'})"
    median = found["median"]

    def shown(value: float | None, unit: str, digits: int = 2) -> str:
        return "?" if value is None else f"{value:.{digits}f}{unit}"

    return (f"LM Studio's own stats ({found['api']}, median of {len(found['requests'])}): "
            f"{shown(median['lmstudio_tokens_per_second'], ' tok/s', 1)}, TTFT "
            f"{shown(median['lmstudio_time_to_first_token_s'], ' s', 3)}, reasoning tokens "
            f"{shown(median['reasoning_output_tokens'], '', 0)}; latency by its account "
            f"{shown(median['lmstudio_latency_s'], ' s')}, measured here "
            f"{shown(median['measured_latency_s'], ' s')}")
