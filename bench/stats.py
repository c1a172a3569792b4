"""Statistics over benchmark samples, the way llama-bench reports them.

llama-bench turns every repetition into a rate (tokens / seconds) and reports the mean and
the sample standard deviation (n - 1) of those rates, with the raw samples. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Summary:
    n: int
    mean: float
    stddev: float
    minimum: float
    maximum: float


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("no samples")
    return math.fsum(values) / len(values)


def sample_stddev(values: Sequence[float]) -> float:
    """Standard deviation with Bessel's correction; 0.0 for a single sample."""
    if len(values) < 2:
        return 0.0
    centre = mean(values)
    return math.sqrt(math.fsum((v - centre) ** 2 for v in values) / (len(values) - 1))


def summarize(values: Sequence[float]) -> Summary:
    return Summary(len(values), mean(values), sample_stddev(values), min(values), max(values))


def rates(n_tokens: int, durations_s: Sequence[float]) -> tuple[float, ...]:
    """Tokens per second for each timed repetition."""
    return tuple(n_tokens / d if d > 0 else math.inf for d in durations_s)


@dataclass(frozen=True, slots=True)
class RankTest:
    """A two-sample test: its statistic, and the p-value for ``alternative``."""

    statistic: float
    p: float
    alternative: str  # "greater" (a tends to be larger), "less" or "two-sided"


ALTERNATIVES = ("greater", "less", "two-sided")


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given the average of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            result[i] = (start + end) / 2 + 1
        start = end + 1
    return result


def _normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def _tail(z: float, alternative: str) -> float:
    if alternative == "greater":
        return _normal_sf(z)
    if alternative == "less":
        return _normal_sf(-z)
    return min(1.0, 2 * _normal_sf(abs(z)))


def mann_whitney(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided"
                 ) -> RankTest:
    """The Mann–Whitney U test (Wilcoxon rank-sum): U of ``a``, and the p-value from the
    normal approximation with the tie correction and a continuity correction of 0.5 —
    the usual large-sample form, close to the exact distribution from about 8 per group
    (tests/bench/test_stats_effort.py compares them)."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}")
    n1, n2 = len(a), len(b)
    if not n1 or not n2:
        raise ValueError("both samples need values")
    ranked = ranks([*a, *b])
    u = math.fsum(ranked[:n1]) - n1 * (n1 + 1) / 2
    n = n1 + n2
    ties = {v: [*a, *b].count(v) for v in set([*a, *b])}
    tie_term = math.fsum(t ** 3 - t for t in ties.values()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12 * ((n + 1) - tie_term)
    if variance <= 0:
        return RankTest(u, 1.0, alternative)
    centre = u - n1 * n2 / 2
    if alternative == "two-sided":
        centre = math.copysign(max(abs(centre) - 0.5, 0.0), centre)
    else:
        centre += -0.5 if alternative == "greater" else 0.5
    return RankTest(u, _tail(centre / math.sqrt(variance), alternative), alternative)


def permutation_test(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided",
                     resamples: int = 10000, seed: int = 0) -> RankTest:
    """A permutation test of the difference in means (``a`` minus ``b``): exact over every
    split when there are at most ``resamples`` of them, else ``resamples`` random splits
    (seeded), counting the observed split (p = (k + 1) / (resamples + 1))."""
    import itertools
    import random

    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}")
    pooled = [*a, *b]
    n1, total = len(a), math.fsum(pooled)
    if not a or not b:
        raise ValueError("both samples need values")

    def difference(first_sum: float) -> float:
        return first_sum / n1 - (total - first_sum) / (len(pooled) - n1)

    observed = difference(math.fsum(a))

    def extreme(value: float) -> bool:
        slack = 1e-9 * max(1.0, abs(observed))
        if alternative == "greater":
            return value >= observed - slack
        if alternative == "less":
            return value <= observed + slack
        return abs(value) >= abs(observed) - slack

    if math.comb(len(pooled), n1) <= resamples:
        splits = list(itertools.combinations(range(len(pooled)), n1))
        hits = sum(extreme(difference(math.fsum(pooled[i] for i in s))) for s in splits)
        return RankTest(observed, hits / len(splits), alternative)
    rng = random.Random(seed)
    hits = sum(extreme(difference(math.fsum(rng.sample(pooled, n1))))
               for _ in range(resamples))
    return RankTest(observed, (hits + 1) / (resamples + 1), alternative)
