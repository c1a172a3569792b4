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
field as possibly missing or of the wrong type. Layout is by construction: every text item
gets a box, estimated on the wide side (``text_width``), placed where no other box is and
inside the picture; ``Figure.boxes`` keeps them for tests/reports/test_serving_view.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from gptoss_doctor.reports.terminal_text import plain

WIDTH = 640
PLOT_H = 220
FONT = 12
PAD = 8
MAX_LABEL = 32  # characters of a legend entry
MAX_SERIES = 8
MAX_POINTS = 400  # per series, after thinning
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf")


# Advance widths in ems, rounded up from DejaVu Sans (the widest common sans-serif): a
# string is never wider than this says, whichever of its letters it uses.
NARROW, WIDE, WIDEST = frozenset(" ilj.,:;'|!`()[]"), frozenset("mw"), frozenset("MW@%")


def char_width(char: str) -> float:
    if char in NARROW:
        return 0.4
    if char in WIDE:
        return 1.0
    if char in WIDEST or not char.isascii():
        return 1.05  # CJK and other wide glyphs are about 1 em
    if not char.isalnum():
        return 0.85  # + = < > ~ and the like: 0.838 em
    return 0.8 if char.isupper() else 0.66


def text_width(text: str, size: float = FONT) -> float:
    return sum(char_width(c) for c in text) * size


@dataclass(frozen=True, slots=True)
class Box:
    """A text item's estimated extent in SVG coordinates."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box) -> bool:
        return (self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1
                and other.y0 < self.y1)


@dataclass(frozen=True, slots=True)
class Figure:
    title: str
    svg: str
    width: float
    height: float
    boxes: tuple[Box, ...]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: tuple[tuple[float, float], ...]
    dashed: bool = False
    step: bool = False  # a CDF: horizontal then vertical between points


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


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        high = low + 1
    raw = (high - low) / max(1, most - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    count = min(50, math.ceil((high - start) / step * (1 - 1e-12)) + 1)
    ticks = [float(f"{start + i * step:.12g}") for i in range(count)]
    if ticks[-1] < high:  # rounding left the top short of the data
        ticks.append(float(f"{start + count * step:.12g}"))
    return ticks


def tick_label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.0e}"
    return f"{value:.4g}"


def clean(text: str, limit: int = MAX_LABEL) -> str:
    """A label from outside: control characters made visible, cut to ``limit``."""
    shown = " ".join(plain(text).split())
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def fit(text: str, room: float, size: float = FONT) -> str:
    """``text`` cut with ``…`` to ``room`` pixels (estimated)."""
    text = clean(text, 200)
    if text_width(text, size) <= room:
        return text
    while text and text_width(text + "…", size) > room:
        text = text[:-1]
    return text + "…"


def thin(points: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    finite = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    if len(finite) <= MAX_POINTS:
        return tuple(finite)
    step = len(finite) / MAX_POINTS
    return (*(finite[int(i * step)] for i in range(MAX_POINTS - 1)), finite[-1])


class _Canvas:
    """Text placed only into free room: every box is recorded and checked."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.boxes: list[Box] = []

    def fits(self, box: Box) -> bool:
        return not any(box.overlaps(b) for b in self.boxes)

    def text(self, text: str, x: float, y: float, anchor: str = "start", size: float = FONT,
             rotate: bool = False, force: bool = False) -> bool:
        """Text with its baseline at ``y``; False (nothing drawn) where it would overlap."""
        w = text_width(text, size)
        x0 = x - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
        box = (Box(text, x - size, y - w / 2, x + 0.3 * size, y + w / 2) if rotate
               else Box(text, x0, y - size, x0 + w, y + 0.3 * size))
        if not force and not self.fits(box):
            return False
        self.boxes.append(box)
        turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" '
                          f'text-anchor="{anchor}"{turn}>{escape(text)}</text>')
        return True


def plot(title: str, x_title: str, y_title: str, series: Sequence[Series],
         notes: Sequence[str] = (), y_max: float | None = None, fraction: bool = False
         ) -> Figure:
    """A line chart: axes with ticks and titles, a legend under it that wraps, notes;
    ``y_max`` is kept in view (an SLO's limit); ``fraction``: the y axis is 0 to 1."""
    shown = [Series(clean(s.name), thin(s.points), s.dashed, s.step) for s in series]
    frame = _frame(shown, y_max, fraction)
    canvas = _Canvas()
    title = fit(title, WIDTH - 2 * PAD, FONT * 1.1)
    canvas.text(title, WIDTH / 2, PAD + FONT * 1.1, "middle", FONT * 1.1, force=True)
    grid = _grid(canvas, frame, x_title, y_title)
    lines = _lines(frame, shown)
    y = frame.bottom + 8 + 3.6 * FONT
    y = _legend(canvas, shown, y)
    for note in notes:
        y += FONT * 1.5
        canvas.text(fit(note, WIDTH - 2 * PAD), PAD, y, force=True)
    height = y + PAD + FONT * 0.5
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
           f'width="{WIDTH}" height="{height:.0f}" font-family="DejaVu Sans, sans-serif" '
           f'role="img"><title>{escape(title)}</title>'
           f'{"".join(grid)}{"".join(lines)}{"".join(canvas.parts)}</svg>')
    return Figure(title, svg, WIDTH, math.ceil(height), tuple(canvas.boxes))


@dataclass(frozen=True, slots=True)
class _Frame:
    """The plot area in SVG coordinates and the ticks of its two axes."""

    x_ticks: list[float]
    y_ticks: list[float]
    left: float
    right: float
    top: float

    @property
    def bottom(self) -> float:
        return self.top + PLOT_H

    def sx(self, x: float) -> float:
        span = (self.x_ticks[-1] - self.x_ticks[0]) or 1
        return self.left + (x - self.x_ticks[0]) / span * (self.right - self.left)

    def sy(self, y: float) -> float:
        span = (self.y_ticks[-1] - self.y_ticks[0]) or 1
        return self.bottom - (y - self.y_ticks[0]) / span * PLOT_H


def _frame(shown: Sequence[Series], y_max: float | None, fraction: bool) -> _Frame:
    """Ticks covering the points (and ``y_max``), and room left of the plot for the
    y labels and right of it for the last x label."""
    xs = [x for s in shown for x, _ in s.points]
    ys = [y for s in shown for _, y in s.points]
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0))
    y_top = max([*ys, *([y_max] if y_max is not None else [])], default=1.0)
    y_ticks = ([0.0, 0.25, 0.5, 0.75, 1.0] if fraction else
               nice_ticks(min(0.0, *ys) if ys else 0.0, y_top * 1.05 if y_top > 0 else 1.0))
    left = PAD + FONT * 1.4 + max(text_width(tick_label(t)) for t in y_ticks) + 6
    right = WIDTH - PAD - text_width(tick_label(x_ticks[-1])) / 2
    return _Frame(x_ticks, y_ticks, left, right, PAD + FONT * 2.4)


def _grid(canvas: _Canvas, frame: _Frame, x_title: str, y_title: str) -> list[str]:
    """The plot's border, grid lines and ticks; their labels and the axis titles go on
    ``canvas`` (x labels only where they fit)."""
    left, right, top, bottom = frame.left, frame.right, frame.top, frame.bottom
    grid = [f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" '
            f'height="{PLOT_H}" fill="none" stroke="#888"/>']
    for tick in frame.y_ticks:
        y = frame.sy(tick)
        grid.append(f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" '
                    f'y2="{y:.1f}" stroke="#eee"/>')
        canvas.text(tick_label(tick), left - 4, y + FONT * 0.35, "end")
    for tick in frame.x_ticks:
        x = frame.sx(tick)
        grid.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom:.1f}" '
                    f'y2="{bottom + 4:.1f}" stroke="#888"/>')
        canvas.text(tick_label(tick), x, bottom + 4 + FONT, "middle")  # thinned
    canvas.text(fit(y_title, PLOT_H), PAD + FONT, top + PLOT_H / 2, "middle", rotate=True,
                force=True)
    canvas.text(fit(x_title, right - left), (left + right) / 2, bottom + 8 + 2.2 * FONT,
                "middle", force=True)
    return grid


def _lines(frame: _Frame, shown: Sequence[Series]) -> list[str]:
    """Each series as a path (steps, or dashed, as asked), with its points marked when
    there are few of them on a plain line."""
    lines = []
    for index, s in enumerate(shown):
        colour = COLOURS[index % len(COLOURS)]
        if not s.points:
            continue
        path = _path([(frame.sx(x), frame.sy(y)) for x, y in s.points], s.step)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        lines.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"'
                     f'{dash}/>')
        if not (s.step or s.dashed) and len(s.points) <= 40:
            lines.extend(f'<circle cx="{frame.sx(x):.1f}" cy="{frame.sy(y):.1f}" r="2.5" '
                         f'fill="{colour}"/>' for x, y in s.points)
    return lines


def _path(points: list[tuple[float, float]], step: bool) -> str:
    out = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for x, y in points[1:]:
        out.append(f"H{x:.1f}V{y:.1f}" if step else f"L{x:.1f},{y:.1f}")
    return "".join(out)


def _legend(canvas: _Canvas, series: Sequence[Series], y: float) -> float:
    """Swatch and name per series in rows that wrap; the last row's baseline."""
    x: float = PAD
    for index, s in enumerate(series):
        width = 22 + text_width(s.name) + 14
        if x + width > WIDTH - PAD and x > PAD:
            x, y = PAD, y + FONT * 1.5
        colour = COLOURS[index % len(COLOURS)]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        canvas.parts.append(f'<line x1="{x:.1f}" x2="{x + 18:.1f}" y1="{y - FONT * 0.35:.1f}" '
                            f'y2="{y - FONT * 0.35:.1f}" stroke="{colour}" stroke-width="2"'
                            f'{dash}/>')
        canvas.text(s.name, x + 22, y, force=True)
        x += width
    return y


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
