"""Serving latency figures: per-request metrics, their distributions, SLOs and goodput.

Pure functions over finished requests (``Request``), for ``bench.load``; definitions and how
they sit beside GuideLLM's and ``vllm bench serve``'s are in docs/serving.md.

Per request (times in seconds from the moment it was sent):
- TTFT: the first chunk with content or reasoning text;
- ITL: every gap between two such chunks. A chunk can carry several tokens (a server that
  batches its stream): when ``usage`` says the answer had T tokens in C chunks (T > C), each
  chunk after the first is taken to carry k = (T - 1) / (C - 1) tokens and its gap g counts
  as k inter-token latencies of g / k (token-weighted: weight k, value g / k), so ITL's
  distribution is over tokens, as it is over chunks when every chunk is one token;
- TPOT: (E2E - TTFT) / (output tokens - 1), for answers of at least two tokens;
- E2E: sent -> the stream's end.

Percentiles interpolate linearly between order statistics (numpy's default, which
``vllm bench serve`` uses); a weighted value counts as that many values (fractional weights
included); ``std`` is the population standard deviation.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gptoss_doctor.bench.load_plan import Slo, SloMetric
from gptoss_doctor.bench.records import Distribution, LevelFigures

PERCENTILES = (50, 90, 95, 99)
MAX_ERRORS = 20  # distinct error messages kept per level; the rest are counted together


@dataclass(frozen=True, slots=True)
class Request:
    """One finished (or failed) request's timings, in seconds from when it was sent."""

    index: int  # its place in the schedule
    replica: int  # which --endpoint it went to
    scheduled_s: float  # its place in the schedule, from the level's start
    sent_s: float  # when it was really sent, from the level's start
    ttft_s: float | None
    e2e_s: float
    chunk_s: tuple[float, ...]  # every content chunk's arrival
    output_tokens: int
    prompt_tokens: int
    error: str | None = None
    timed_out: bool = False
    warmup: bool = False
    token_source: str = "usage"

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tpot_s(self) -> float | None:
        if self.ttft_s is None or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    def itl(self) -> tuple[tuple[float, ...], float]:
        """(every inter-chunk gap / tokens per chunk, weight of each): see the module doc."""
        gaps = tuple(b - a for a, b in itertools.pairwise(self.chunk_s))
        if not gaps:
            return (), 1.0
        per_chunk = max(1.0, (self.output_tokens - 1) / len(gaps))
        return tuple(g / per_chunk for g in gaps), per_chunk


@dataclass(slots=True)
class _Weighted:
    values: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def add(self, values: Iterable[float], weight: float = 1.0) -> None:
        for value in values:
            self.values.append(value)
            self.weights.append(weight)


def percentile(values: Sequence[float], q: float, weights: Sequence[float] | None = None
               ) -> float | None:
    """The ``q``-th percentile (0-100), linear between order statistics; a value of weight
    w counts as w values. None without values."""
    if not values:
        return None
    if weights is None:
        ordered = sorted(values)
        position = (len(ordered) - 1) * q / 100
        low, high = math.floor(position), math.ceil(position)
        return _between(ordered[low], ordered[high], position - low)
    pairs = sorted(zip(values, weights, strict=True))
    total = math.fsum(w for _, w in pairs)
    position = (total - 1) * q / 100 if total > 1 else 0.0
    below, above = _at(pairs, math.floor(position)), _at(pairs, math.ceil(position))
    return _between(below, above, position - math.floor(position))


def _between(below: float, above: float, fraction: float) -> float:
    """Linear interpolation that keeps an infinite latency infinite (never inf - inf)."""
    return below if above == below or fraction == 0 else below + (above - below) * fraction


def _at(pairs: Sequence[tuple[float, float]], rank: float) -> float:
    """The value at 0-based ``rank`` when each value fills ``weight`` consecutive ranks."""
    seen = 0.0
    for value, weight in pairs:
        seen += weight
        if rank < seen:
            return value
    return pairs[-1][0]


def distribution(values: Sequence[float], weights: Sequence[float] | None = None
                 ) -> Distribution:
    """n, mean, std (population), p50/p90/p95/p99 of ``values`` (None without any)."""
    if not values:
        return Distribution(0, None, None, None, None, None, None)
    w = list(weights) if weights is not None else [1.0] * len(values)
    total = math.fsum(w)
    mean = math.fsum(v * x for v, x in zip(values, w, strict=True)) / total
    var = math.fsum(x * (v - mean) ** 2 for v, x in zip(values, w, strict=True)) / total
    p50, p90, p95, p99 = (_r(percentile(values, q, weights)) for q in PERCENTILES)
    return Distribution(len(values), _r(mean), _r(math.sqrt(var)), p50, p90, p95, p99)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def values(requests: Iterable[Request], metric: SloMetric) -> tuple[list[float], list[float]]:
    """(values, weights) of ``metric`` over the finished requests."""
    out = _Weighted()
    for r in requests:
        if not r.ok:
            continue
        if metric == "itl":
            gaps, weight = r.itl()
            out.add(gaps, weight)
        else:
            one = {"ttft": r.ttft_s, "tpot": r.tpot_s, "e2e": r.e2e_s}[metric]
            if one is not None:
                out.add((one,))
    return out.values, out.weights


def request_meets(request: Request, slos: Sequence[Slo]) -> bool:
    """A request meets an SLO when its own value is within the limit (ITL: its own gaps'
    statistic); a failed request meets none. An answer of one token (or in one chunk) has no
    TPOT or gap, and meets those SLOs, as ``vllm bench serve`` counts its TPOT as 0."""
    if not request.ok:
        return False
    for slo in slos:
        found, weights = values((request,), slo.metric)
        value = _stat(found, weights, slo)
        if value is None and slo.metric in ("tpot", "itl"):
            continue
        if value is None or value > slo.limit_s:
            return False
    return True


def level_value(requests: Sequence[Request], slo: Slo, missing: int = 0) -> float | None:
    """The level's figure for ``slo``; every failed request, and ``missing`` requests that
    were never sent (the cap dropped them), count as an infinite latency, so a level cannot
    meet an SLO by failing its slow requests."""
    found, weights = values(requests, slo.metric)
    failed = sum(1 for r in requests if not r.ok) + missing
    return _stat([*found, *([math.inf] * failed)], [*weights, *([1.0] * failed)], slo)


def _stat(found: Sequence[float], weights: Sequence[float], slo: Slo) -> float | None:
    if not found:
        return None
    if slo.percentile is None:
        total = math.fsum(weights)
        return math.fsum(v * w for v, w in zip(found, weights, strict=True)) / total
    return percentile(found, slo.percentile, weights)


def figures(requests: Sequence[Request], wall_s: float, url: str | None,
            slos: Sequence[Slo] = ()) -> LevelFigures:
    """One replica's (``url``) or the whole level's (None) figures over ``wall_s``."""
    ok = [r for r in requests if r.ok]
    output = sum(r.output_tokens for r in ok)
    per_s = (lambda n: round(n / wall_s, 4)) if wall_s > 0 else (lambda n: None)
    dists = {m: distribution(*values(requests, m)) for m in ("ttft", "itl", "tpot", "e2e")}
    return LevelFigures(
        url=url, requests=len(requests), ok=len(ok),
        failed=sum(1 for r in requests if not r.ok and not r.timed_out),
        timed_out=sum(1 for r in requests if r.timed_out),
        errors=_errors(Counter(r.error for r in requests if r.error)),
        output_tokens=output, output_tps=per_s(output) if ok else None,
        completed_rps=per_s(len(ok)),
        goodput_rps=per_s(sum(1 for r in ok if request_meets(r, slos))) if slos else None,
        ttft_s=dists["ttft"], itl_s=dists["itl"], tpot_s=dists["tpot"], e2e_s=dists["e2e"])


def _errors(counts: Counter[str]) -> dict[str, int]:
    """The ``MAX_ERRORS`` most common messages, and how many requests failed otherwise (a
    server may word every refusal differently: one entry per request is no table)."""
    kept = dict(counts.most_common(MAX_ERRORS))
    rest = counts.total() - sum(kept.values())
    if rest:
        kept[f"{rest} more failed with {len(counts) - len(kept)} other messages"] = rest
    return kept
