"""Joules per token from a power trace: energy inside each test's timed windows (pure).

Per source, a cumulative-energy curve is built from the trace: from the energy counter
where it moves (unwrapped at its range; a counter that goes back with no known range has
reset, and that interval falls back to power readings or is left out, with a note), else
by integrating power readings (trapezoids). A counter or power reading that stays at 0 is
not a measurement. Energy in a window is the curve's linear interpolation at the window's
ends, so a window shorter than the sampling interval still gets a figure, with a note.
J/token is the energy of all of a test's windows over all their tokens (docs/design.md,
"Energy and conditions").
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from gptoss_doctor.app.records import EnergyReport, PerTestEnergy, SourceEnergy
from gptoss_doctor.bench.speed import TestResult
from gptoss_doctor.probe.power import EnergyReading, Tick
from gptoss_doctor.probe.sampler import PowerTrace
from gptoss_doctor.types import EnergyKind

Window = tuple[str, float, float]  # (test name, start, end) on the sampler's clock


@dataclass(frozen=True, slots=True)
class Curve:
    """Cumulative joules of one source at each reading time."""

    source: str
    kind: EnergyKind
    method: str
    times: tuple[float, ...]
    joules: tuple[float, ...]
    note: str | None

    def at(self, t: float) -> float | None:
        """Energy at ``t`` by linear interpolation; ``None`` outside the readings."""
        if not self.times or t < self.times[0] or t > self.times[-1]:
            return None
        i = bisect_left(self.times, t)
        if self.times[i] == t:
            return self.joules[i]
        t0, t1 = self.times[i - 1], self.times[i]
        e0, e1 = self.joules[i - 1], self.joules[i]
        return e0 + (e1 - e0) * (t - t0) / (t1 - t0)


def _significant(value: float) -> float:
    """Six significant digits: J/token spans 10^-3 (a CPU on pp) to 10^2."""
    return float(f"{value:.6g}")


def _readings(ticks: Sequence[Tick], source: str) -> list[tuple[float, EnergyReading]]:
    return [(tick.t_s, r) for tick in ticks for r in tick.energy if r.source == source]


def _power_curve(points: list[tuple[float, EnergyReading]]) -> Curve | None:
    # A 0 W reading is a sensor that does not report (no board draws nothing while working).
    usable = [(t, r.power_w) for t, r in points if r.power_w]
    if len(usable) < 2:
        return None
    times, joules = [usable[0][0]], [0.0]
    for (t0, p0), (t1, p1) in pairwise(usable):
        times.append(t1)
        joules.append(joules[-1] + (p0 + p1) / 2 * (t1 - t0))
    first = points[0][1]
    return Curve(first.source, _kind(first.kind), "power samples", tuple(times),
                 tuple(joules), None)


def _kind(value: str) -> EnergyKind:
    return "cpu-package" if value == "cpu-package" else "dram" if value == "dram" else "gpu"


def _counter_curve(points: list[tuple[float, EnergyReading]]) -> Curve | None:
    counted = [(t, r) for t, r in points if r.energy_j is not None]
    values = {r.energy_j for _, r in counted}
    if len(counted) < 2 or len(values) < 2:
        return None  # missing, or reads the same (often 0) throughout: not a counter here
    times, joules = [counted[0][0]], [0.0]
    wraps = resets = 0
    for (t0, a), (t1, b) in pairwise(counted):
        assert a.energy_j is not None and b.energy_j is not None
        step = b.energy_j - a.energy_j
        if step < 0:
            if b.range_j:
                step += b.range_j
                wraps += 1
            else:
                resets += 1
                step = (a.power_w + b.power_w) / 2 * (t1 - t0) if a.power_w and b.power_w \
                    else 0.0
        times.append(t1)
        joules.append(joules[-1] + step)
    notes = ([f"counter wrapped {wraps} time(s), unwrapped at its range"] if wraps else []) \
        + ([f"counter went back {resets} time(s) (reset): those intervals use power readings "
            "or count 0"] if resets else [])
    first = counted[0][1]
    return Curve(first.source, _kind(first.kind), "energy counter", tuple(times),
                 tuple(joules), "; ".join(notes) or None)


def curves(ticks: Sequence[Tick]) -> tuple[tuple[Curve, ...], tuple[str, ...]]:
    """A curve per source that measures, and a line for each source that does not."""
    names = list(dict.fromkeys(r.source for tick in ticks for r in tick.energy))
    found: list[Curve] = []
    dropped: list[str] = []
    for name in names:
        points = _readings(ticks, name)
        curve = _counter_curve(points) or _power_curve(points)
        if curve is None:
            dropped.append(f"{name}: no energy counter that moves and no non-zero power "
                           "reading")
        else:
            found.append(curve)
    return tuple(found), tuple(dropped)


def _peak(curve_set: Sequence[Curve], ticks: Sequence[Tick], spans: Sequence[tuple[float, float]]
          ) -> float | None:
    """Highest total power over one sampling interval that overlaps a window."""
    times = [t.t_s for t in ticks]
    best: float | None = None
    for t0, t1 in pairwise(times):
        if t1 <= t0 or not any(t0 < end and start < t1 for start, end in spans):
            continue
        ends = [(c.at(t0), c.at(t1)) for c in curve_set]
        if any(a is None or b is None for a, b in ends):
            continue
        watts = sum(b - a for a, b in ends if a is not None and b is not None) / (t1 - t0)
        best = watts if best is None else max(best, watts)
    return round(best, 2) if best is not None else None


def energy_of_test(test: TestResult, spans: Sequence[tuple[float, float]],
                   curve_set: Sequence[Curve], ticks: Sequence[Tick]) -> PerTestEnergy:
    """One test's energy over its timed windows, from every source that covers them."""
    seconds = sum(end - start for start, end in spans)
    tokens = test.n_tokens * len(spans)
    by_source: list[SourceEnergy] = []
    for curve in curve_set:
        parts = [(curve.at(start), curve.at(end)) for start, end in spans]
        if spans and all(a is not None and b is not None for a, b in parts):
            joules = sum(b - a for a, b in parts if a is not None and b is not None)
            by_source.append(SourceEnergy(curve.source, curve.kind, curve.method,
                                          round(joules, 4)))
    inside = sum(1 for tick in ticks for start, end in spans if start <= tick.t_s <= end)
    note = (f"{inside} reading(s) inside the timed windows: interpolated between readings"
            if by_source and inside < 2 else None)
    if not by_source or not tokens or seconds <= 0:
        return PerTestEnergy(test.name, test.kind, tokens, round(seconds, 6), None, None, None,
                             None, inside, (), "no source covers the timed windows" if spans
                             else "no timed window (the test did not run)")
    total = sum(s.joules for s in by_source)
    covered = [c for c in curve_set if c.source in {s.source for s in by_source}]
    return PerTestEnergy(test.name, test.kind, tokens, round(seconds, 6), round(total, 4),
                         _significant(total / tokens), round(total / seconds, 2),
                         _peak(covered, ticks, spans), inside, tuple(by_source), note)


def report(trace: PowerTrace, tests: Sequence[TestResult], windows: Sequence[Window]
           ) -> EnergyReport:
    """The results' ``energy`` block for one run."""
    curve_set, dropped = curves(trace.ticks)
    span = trace.ticks[-1].t_s - trace.ticks[0].t_s if len(trace.ticks) > 1 else 0.0
    rate = round((len(trace.ticks) - 1) / span, 2) if span > 0 else None
    if not curve_set:
        why = "; ".join(dropped + tuple(trace.unavailable)) or "no power source on this machine"
        return EnergyReport("not measured", f"not measured: {why}", (), trace.interval_s,
                            rate, (), ())
    notes = tuple(f"{c.source}: {c.note}" for c in curve_set if c.note) + dropped
    energies = tuple(energy_of_test(t, [(s, e) for name, s, e in windows if name == t.name],
                                    curve_set, trace.ticks) for t in tests)
    return EnergyReport("measured", None, tuple(f"{c.source} ({c.method})" for c in curve_set),
                        trace.interval_s, rate, energies, notes)


def sweep_report(trace: PowerTrace, generated_tokens: int) -> EnergyReport:
    """Endpoint runs on this machine: energy over the whole sweep per generated token
    (prompt processing, every concurrency level and the gaps between requests included)."""
    if len(trace.ticks) < 2:
        return report(trace, (), ())
    whole = TestResult("sweep", "sweep", generated_tokens, 0, "ok", None, (), (), None, None)
    return report(trace, (whole,), [("sweep", trace.ticks[0].t_s, trace.ticks[-1].t_s)])
