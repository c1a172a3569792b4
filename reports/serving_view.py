"""Charts of a serving load run (``bench speed --endpoint`` with --rate, --sweep, ...): SVG,
no JavaScript.

- throughput: completed requests/s and goodput (requests/s meeting every SLO) against the
  requested rate (or the concurrency), with the requested rate itself as a dashed diagonal;
- latency: one chart per SLO (TTFT p95, ITL p95, ...), its figure per level in ms and the
  SLO's limit as a dashed line;
- TTFT and ITL distributions per level as CDFs: TTFT from every request's own value, ITL
  from the level's percentiles (p50, p90, p95, p99: per-gap values are not kept).

Plain inputs (``Level``, ``SloLine``) so that the drawing does not depend on the records'
shape; ``from_load`` reads them from a saved results file's ``load`` section, treating every
field as possibly missing or of the wrong type. The drawing, with its layout rules, is
``reports.line_chart``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gptoss_doctor.reports.line_chart import MAX_SERIES, Figure, Series, plot


@dataclass(frozen=True, slots=True)
class SloLine:
    key: str  # "ttft_p95": the metric and statistic it limits
    limit_s: float


@dataclass(frozen=True, slots=True)
class Level:
    label: str  # "4/s" or "x8"
    x: float  # the requested rate (req/s) or the concurrency
    throughput_rps: float | None = None
    goodput_rps: float | None = None
    latency_s: Mapping[str, float | None] = field(default_factory=dict)  # "ttft_p95": s
    ttft_samples_s: tuple[float, ...] = ()
    itl_percentiles_s: tuple[tuple[float, float], ...] = ()  # (fraction, s)


def throughput_chart(levels: Sequence[Level], by_rate: bool) -> Figure:
    """Completed requests/s and goodput per level against the requested rate (a dashed
    diagonal shows the rate asked for) or the concurrency."""
    series = [Series("throughput (completed req/s)", tuple(
                  (lv.x, lv.throughput_rps) for lv in levels if lv.throughput_rps is not None)),
              Series("goodput (req/s within every SLO)", tuple(
                  (lv.x, lv.goodput_rps) for lv in levels if lv.goodput_rps is not None))]
    if by_rate and levels:
        top = max(lv.x for lv in levels)
        series.append(Series("requested rate", ((0.0, 0.0), (top, top)), dashed=True))
    notes = [] if any(lv.goodput_rps is not None for lv in levels) else [
        "no goodput: the run had no --slo"]
    return plot("Throughput and goodput", "requested rate (req/s)" if by_rate else
                "concurrency (streams)", "req/s", series, notes)


def latency_charts(levels: Sequence[Level], slos: Sequence[SloLine], by_rate: bool
                   ) -> list[Figure]:
    """One chart per SLO (each metric on its own scale): its figure per level in ms and its
    limit as a dashed line; without SLOs, TTFT p95 and ITL p95 without limits."""
    limits: list[tuple[str, float | None]] = [(s.key, s.limit_s) for s in slos] or [
        ("ttft_p95", None), ("itl_p95", None)]
    xs = [lv.x for lv in levels] or [0.0, 1.0]
    figures = []
    for key, limit in limits:
        name = key.replace("_", " ")
        series = [Series(name, tuple((lv.x, v * 1000) for lv in levels if (
            v := lv.latency_s.get(key)) is not None and math.isfinite(v)))]
        if limit is not None:
            series.append(Series(f"SLO: {name} ≤ {limit * 1000:g} ms",
                                 ((min(xs), limit * 1000), (max(xs), limit * 1000)), True))
        figures.append(plot(f"{name} per level", "requested rate (req/s)" if by_rate else
                            "concurrency (streams)", f"{name} (ms)", series,
                            y_max=None if limit is None else limit * 1000))
    return figures


def cdf_chart(title: str, per_level: Sequence[tuple[str, Sequence[tuple[float, float]]]],
              note: str | None = None) -> Figure:
    """One CDF per level: (label, [(seconds, fraction)]) drawn in ms; at most
    ``MAX_SERIES`` levels, spread over the run, the rest named in a note."""
    chosen = list(per_level)
    notes = [note] if note else []
    if len(chosen) > MAX_SERIES:
        picks = sorted({round(i * (len(chosen) - 1) / (MAX_SERIES - 1))
                        for i in range(MAX_SERIES)})
        notes.append(f"{len(picks)} of {len(chosen)} levels shown, spread over the run")
        chosen = [chosen[i] for i in picks]
    series = [Series(label, _from_zero([(s * 1000, f) for s, f in points]), step=True)
              for label, points in chosen]
    return plot(title, "latency (ms)", "fraction of requests", series, notes, fraction=True)


def _from_zero(points: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """A CDF's points with its rise from 0 at the first value."""
    return ((points[0][0], 0.0), *points) if points else ()


def empirical_cdf(samples: Sequence[float]) -> list[tuple[float, float]]:
    ordered = sorted(v for v in samples if math.isfinite(v))
    n = len(ordered)
    return [(value, (i + 1) / n) for i, value in enumerate(ordered)]


def figures(levels: Sequence[Level], slos: Sequence[SloLine], by_rate: bool) -> list[Figure]:
    """Every chart of a run, in reading order."""
    out = [throughput_chart(levels, by_rate), *latency_charts(levels, slos, by_rate)]
    ttft = [(lv.label, empirical_cdf(lv.ttft_samples_s)) for lv in levels if lv.ttft_samples_s]
    if ttft:
        out.append(cdf_chart("TTFT distribution per level", ttft))
    itl = [(lv.label, [(s, f) for f, s in lv.itl_percentiles_s]) for lv in levels
           if lv.itl_percentiles_s]
    if itl:
        out.append(cdf_chart("ITL distribution per level", itl,
                             "ITL from each level's p50, p90, p95 and p99 (token-weighted)"))
    return out


# -- reading a saved run ----------------------------------------------------------------------

def _num(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def slo_lines(names: Any) -> list[SloLine]:
    """``("ttft_p95=2s", "itl_p95=100ms")`` -> SloLines; names that do not read are left out."""
    lines = []
    for name in names if isinstance(names, list | tuple) else ():
        key, _, limit = str(name).partition("=")
        unit = 1e-3 if limit.endswith("ms") else 1.0
        try:
            value = float(limit.removesuffix("ms").removesuffix("s")) * unit
        except ValueError:
            continue
        if math.isfinite(value) and value > 0 and key:
            lines.append(SloLine(key[:20], value))
    return lines


def level_of(raw: Mapping[str, Any]) -> Level | None:
    """One level of a saved ``load`` section (None when it has no x value)."""
    by_rate = raw.get("mode") == "rate"
    x = _num(raw.get("requested_rate") if by_rate else raw.get("concurrency"))
    if x is None:
        return None
    total = _dict(raw.get("total"))
    latency: dict[str, float | None] = {}
    for metric in ("ttft", "itl", "tpot", "e2e"):
        dist = _dict(total.get(f"{metric}_s"))
        for stat in ("p50", "p90", "p95", "p99", "mean"):
            latency[f"{metric}_{stat}"] = _num(dist.get(stat))
    samples = raw.get("samples")
    ttft = tuple(v for s in (samples if isinstance(samples, list) else ())
                 if isinstance(s, Mapping) and (v := _num(s.get("ttft_s"))) is not None)
    itl = _dict(total.get("itl_s"))
    percentiles = tuple((q / 100, v) for q in (50, 90, 95, 99)
                        if (v := _num(itl.get(f"p{q}"))) is not None)
    return Level(f"{x:g}/s" if by_rate else f"x{x:g}", x, _num(total.get("completed_rps")),
                 _num(total.get("goodput_rps")), latency, ttft, percentiles)


def from_load(load: Any) -> list[Figure]:
    """The charts of a results file's ``load`` section ([] when it has no level)."""
    load = _dict(load)
    raw_levels = load.get("levels")
    levels = [lv for raw in (raw_levels if isinstance(raw_levels, list) else ())
              if isinstance(raw, Mapping) and (lv := level_of(raw)) is not None]
    if not levels:
        return []
    levels.sort(key=lambda lv: lv.x)
    return figures(levels, slo_lines(load.get("slos")), load.get("mode") == "rate")
