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
