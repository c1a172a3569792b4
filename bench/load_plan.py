"""What a serving load run sends and when: rates, arrival schedules, warm-up, SLOs, the sweep.

Pure functions over flag text and seeds, for ``bench.load`` (which sends) and the tests.

- Arrivals (open loop): ``constant`` sends every ``1/rate`` s; ``poisson`` draws exponential
  gaps of mean ``1/rate`` (coefficient of variation 1); ``gamma:B`` draws gamma gaps of shape
  ``B`` and mean ``1/rate`` — ``B`` is the burstiness factor of ``vllm bench serve``
  (``B = 1`` is Poisson, ``B < 1`` burstier, ``B > 1`` smoother; the CV of the gaps is
  ``1/sqrt(B)``). A schedule is a tuple of send offsets (s) from the run's start, drawn from
  ``random.Random(seed)`` so a seed names one schedule on every machine.
- SLOs: ``ttft_p95=2s,itl_p95=100ms`` — a metric (ttft, itl, tpot, e2e), a statistic (pNN
  with 0 < NN < 100, or ``mean``) and a limit in ``ms`` or ``s``.
- The sweep: ``find_max_rate`` doubles the rate from a start until a level misses an SLO,
  then bisects between the last rate that met every SLO and the first that did not, until
  the bracket is at most ``SWEEP_STEP`` of the lower rate; the answer is the last rate that
  met them (None when even the lowest tried did not).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gptoss_doctor.errors import UsageError

ArrivalKind = Literal["constant", "poisson", "gamma"]
SloMetric = Literal["ttft", "itl", "tpot", "e2e"]
SLO_METRICS: tuple[SloMetric, ...] = ("ttft", "itl", "tpot", "e2e")
# one request every 1000 s at least: 1e-320/s has gaps of 1/rate = inf, and the level
# waited for its second request forever
MIN_RATE = 0.001
MAX_RATE = 10_000.0  # requests/s: far past any one client's reach (docs/serving.md)
MAX_REQUESTS = 1_000_000  # one level's schedule, bounded in memory
MIN_BURSTINESS = 0.01  # gamma shape below this: gaps of 0 or of hours, not a load profile
SWEEP_STEP = 0.1  # the bisection stops when hi - lo <= SWEEP_STEP * lo
SWEEP_MAX_LEVELS = 16  # levels a sweep may run, doubling and bisection together
SWEEP_FLOOR = 1 / 64  # the lowest rate tried, as a share of the start, before giving up
_SLO = re.compile(r"^(ttft|itl|tpot|e2e)_(mean|p(\d{1,2}(?:\.\d+)?))=(\d+(?:\.\d+)?)(ms|s)$")


@dataclass(frozen=True, slots=True)
class Arrivals:
    kind: ArrivalKind
    burstiness: float = 1.0  # the gamma shape; 1.0 for the others

    @property
    def name(self) -> str:
        return f"gamma:{self.burstiness:g}" if self.kind == "gamma" else self.kind


def parse_arrivals(text: str) -> Arrivals:
    """``constant``, ``poisson`` or ``gamma:<burstiness>``; anything else is a usage error."""
    value = text.strip().lower()
    if value in ("constant", "poisson"):
        return Arrivals(value)  # type: ignore[arg-type]  # checked just above
    if value.startswith("gamma:"):
        try:
            shape = float(value[6:])
        except ValueError:
            shape = math.nan
        if math.isfinite(shape) and MIN_BURSTINESS <= shape <= 1000:
            return Arrivals("gamma", shape)
    raise UsageError(f"bad --arrivals {text!r}: use constant, poisson or gamma:<burstiness> "
                     f"(burstiness from {MIN_BURSTINESS} to 1000; 1 is Poisson)")


def parse_rates(text: str) -> tuple[float, ...]:
    """``"1,2,4"`` -> (1.0, 2.0, 4.0), sorted and unique; requests per second."""
    try:
        rates = tuple(sorted({float(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        rates = ()
    if not rates or not all(math.isfinite(r) and MIN_RATE <= r <= MAX_RATE for r in rates):
        raise UsageError(f"bad --rate {text!r}: requests per second from {MIN_RATE:g} to "
                         f"{MAX_RATE:g}, e.g. 1,2,4")
    return rates


@dataclass(frozen=True, slots=True)
class Warmup:
    """Requests excluded from the figures: the first ``requests``, or those sent in the
    first ``seconds``."""

    requests: int = 0
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.seconds:g}s" if self.seconds else f"{self.requests} requests"


def parse_warmup(text: str | None) -> Warmup:
    """``"10s"`` (seconds), ``"20"`` (requests) or None (no warm-up)."""
    if text is None or not text.strip():
        return Warmup()
    value = text.strip().lower()
    try:
        if value.endswith("s"):
            seconds = float(value[:-1])
            if math.isfinite(seconds) and 0 <= seconds <= 3600:
                return Warmup(seconds=seconds)
        elif value.isdigit() and int(value) <= MAX_REQUESTS:
            return Warmup(requests=int(value))
    except ValueError:
        pass
    raise UsageError(f"bad --warmup {text!r}: seconds like 10s (at most 3600s) or a number "
                     "of requests like 20")


def schedule(rate: float, arrivals: Arrivals, seed: int, *, count: int | None = None,
             duration_s: float | None = None) -> tuple[float, ...]:
    """Send offsets (s from the start) at ``rate`` requests/s: ``count`` of them, or every
    one before ``duration_s`` (both bounded by ``MAX_REQUESTS``). The first is at 0."""
    if (count is None) == (duration_s is None):
        raise ValueError("a schedule takes a count or a duration")
    rng = random.Random(seed)
    limit = MAX_REQUESTS if count is None else min(count, MAX_REQUESTS)
    offsets: list[float] = []
    at = 0.0
    while len(offsets) < limit and (duration_s is None or at < duration_s):
        offsets.append(at)
        at += gap(rate, arrivals, rng)
    return tuple(offsets)


def gap(rate: float, arrivals: Arrivals, rng: random.Random) -> float:
    """One inter-arrival gap (s) of mean ``1/rate``."""
    if arrivals.kind == "constant":
        return 1 / rate
    if arrivals.kind == "poisson":
        return rng.expovariate(rate)
    return rng.gammavariate(arrivals.burstiness, 1 / (rate * arrivals.burstiness))


@dataclass(frozen=True, slots=True)
class Slo:
    """One latency objective: ``metric``'s ``stat`` (``p95``, ``mean``) at most ``limit_s``."""

    metric: SloMetric
    stat: str
    limit_s: float

    @property
    def name(self) -> str:
        limit = (f"{self.limit_s * 1000:g}ms" if self.limit_s < 1 else f"{self.limit_s:g}s")
        return f"{self.metric}_{self.stat}={limit}"

    @property
    def percentile(self) -> float | None:
        """The percentile (0-100) the stat names; None for the mean."""
        return None if self.stat == "mean" else float(self.stat[1:])


def parse_slos(text: str) -> tuple[Slo, ...]:
    """``"ttft_p95=2s,itl_p95=100ms"`` -> Slos; bad text is a one-line usage error."""
    slos: list[Slo] = []
    for part in (p.strip().lower() for p in text.split(",")):
        match = _SLO.match(part)
        number = float(match.group(3)) if match and match.group(3) else None
        limit = float(match.group(4)) if match else math.nan
        if (match is None or (number is not None and not 0 < number < 100)
                or not 0 < limit < math.inf):
            raise UsageError(f"bad --slo {part!r}: use metric_stat=limit, e.g. "
                             "ttft_p95=2s,itl_p95=100ms (metric ttft, itl, tpot or e2e; "
                             "stat pNN or mean; limit in ms or s)")
        stat = "mean" if match.group(2) == "mean" else f"p{number:g}"
        unit = 1e-3 if match.group(5) == "ms" else 1.0
        slos.append(Slo(match.group(1), stat, limit * unit))  # type: ignore[arg-type]
    if len({(s.metric, s.stat) for s in slos}) != len(slos):
        raise UsageError(f"bad --slo {text!r}: each metric and statistic once")
    return tuple(slos)


@dataclass(frozen=True, slots=True)
class SweepResult:
    """The sweep's answer: the highest rate tried that met every SLO, and how it was found."""

    slos: tuple[str, ...]
    start_rate: float
    step_fraction: float
    best_rate: float | None
    first_failing_rate: float | None  # the lowest rate tried that missed an SLO
    tried: tuple[float, ...]  # rates in the order they ran
    reason: str


def find_max_rate(meets: Callable[[float], bool], start: float, *,
                  step: float = SWEEP_STEP, max_levels: int = SWEEP_MAX_LEVELS,
                  max_rate: float = MAX_RATE) -> tuple[float | None, float | None,
                                                       tuple[float, ...], str]:
    """(best rate, first failing rate, rates tried, why it stopped). ``meets(rate)`` runs a
    level and says whether it met every SLO: doubling from ``start`` until one does not
    (halving when ``start`` already does not), then bisection to ``step`` x the lower rate."""
    tried: list[float] = []

    def run(rate: float) -> bool:
        tried.append(rate)
        return meets(rate)

    lo: float | None = None
    hi: float | None = None
    rate = start
    if run(rate):
        lo = rate
        while hi is None:
            if len(tried) >= max_levels or rate * 2 > max_rate:
                return lo, None, tuple(tried), "every rate tried met the SLOs"
            rate *= 2
            if run(rate):
                lo = rate
            else:
                hi = rate
    else:
        hi = rate
        while lo is None:
            if len(tried) >= max_levels or rate / 2 < start * SWEEP_FLOOR:
                return None, hi, tuple(tried), "no rate tried met the SLOs"
            rate /= 2
            if run(rate):
                lo = rate
            else:
                hi = rate
    while hi - lo > step * lo:
        if len(tried) >= max_levels:
            return lo, hi, tuple(tried), f"stopped after {max_levels} levels"
        middle = _round_rate((lo + hi) / 2)
        if run(middle):
            lo = middle
        else:
            hi = middle
    return lo, hi, tuple(tried), f"bracketed to within {step:.0%} of the answer"


def _round_rate(rate: float) -> float:
    """Three significant figures: rates people can type again."""
    return float(f"{rate:.3g}")
