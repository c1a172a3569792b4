"""Charts people read: pure SVG, no JavaScript, no library.

Every chart has axes with ticks and units, a legend, and no text that overlaps other text or
leaves the picture. That holds by construction: text is only ever tick labels (thinned
until neighbours clear each other), the two axis titles, the legend (laid out in rows that
wrap) and notes, each truncated to the room it has with ``…``. Widths are estimated on the
generous side of DejaVu Sans, the widest common sans-serif (``text_width``), so the real
text is never wider than its box; ``tests/reports/test_charts.py`` checks the boxes of every
chart on recorded and adversarial data, and a Chromium test measures the real ones.

A chart is pure data in, an SVG string out (``Chart.svg``); the HTML templates embed it.
Values that are not finite, or not positive on a logarithmic axis, are left out and counted
in a note under the legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from itertools import pairwise

from gptoss_doctor.reports.terminal_text import plain

WIDTH = 640
PLOT_HEIGHT = 220
FONT_PX = 12
LINE_PX = 18  # one row of legend or notes
ASCENT, DESCENT = 0.95, 0.3  # of the font size, around the baseline (DejaVu: 0.93, 0.24)
# Okabe-Ito, readable by people with the common colour-vision deficiencies; markers differ
# too, so series never depend on colour alone.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#7f7f7f")
MARKERS = ("circle", "square", "triangle", "diamond")
MAX_SERIES = len(PALETTE)
LARGEST = 1e300  # beyond, spans and steps overflow a float: such values are not drawn
LEGEND_TEXT_PX = WIDTH - 36  # the longest legend entry (one row), truncated beyond

_NARROW = set("ijlI.,:;'|!` ")
_SEMI = set("frt()[]{}-/\\\"*")
_WIDE = set("mwMW@%")


def text_width(text: str, size: float = FONT_PX) -> float:
    """Width in pixels, estimated at or above DejaVu Sans's advance widths (the widest
    common sans-serif; Chromium's default on Linux) so a box never undersells the text."""
    total = 0.0
    for char in text:
        if char in _NARROW:
            total += 0.34
        elif char in _SEMI:
            total += 0.48
        elif char in _WIDE:
            total += 1.02
        elif char.isascii():
            total += 0.82 if char.isupper() else 0.66
        else:  # CJK, symbols, emoji: up to a full em and a bit
            total += 1.25
    return total * size


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in SVG user units (y grows downwards)."""

    x: float
    y: float
    width: float
    height: float

    def overlaps(self, other: Box) -> bool:
        return (self.x < other.x + other.width and other.x < self.x + self.width
                and self.y < other.y + other.height and other.y < self.y + self.height)

    def inside(self, width: float, height: float) -> bool:
        return (self.x >= 0 and self.y >= 0 and self.x + self.width <= width
                and self.y + self.height <= height)


def text_box(x: float, y: float, text: str, anchor: str = "start",
             size: float = FONT_PX) -> Box:
    """The estimated box of ``text`` drawn at baseline ``(x, y)`` with ``text-anchor``."""
    width = text_width(text, size)
    left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
    return Box(left, y - ASCENT * size, width, (ASCENT + DESCENT) * size)


def fit(text: str, room: float) -> str:
    """``text`` (control characters made visible) cut with ``…`` to fit ``room`` pixels."""
    shown = plain(text)
    if text_width(shown) <= room:
        return shown
    while shown and text_width(shown + "…") > room:
        shown = shown[:-1]
    return shown + "…" if shown else ""


def number(value: float) -> str:
    """A tick label: short, exact for the round numbers ticks fall on (1.5k, 20, 0.05)."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e15 or magnitude < 1e-3:
        return f"{value:.2g}".replace("e+", "e").replace("e-0", "e-")
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


@dataclass(frozen=True, slots=True)
class Axis:
    """A scale from data to ``[0, 1]`` with its ticks."""

    low: float
    high: float
    log: bool
    ticks: tuple[float, ...]
    title: str

    def at(self, value: float) -> float:
        if self.log:
            return (math.log10(value) - math.log10(self.low)) / (
                math.log10(self.high) - math.log10(self.low))
        return (value - self.low) / (self.high - self.low)

    def holds(self, value: float) -> bool:
        slack = (self.high - self.low) * 1e-9  # ticks are multiples of a rounded step
        return math.isfinite(value) and (value > 0 or not self.log) \
            and self.low - slack <= value <= self.high + slack


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)


def axis(values: Sequence[float], title: str, log: bool = False,
         zero: bool = False, count: int = 5) -> Axis:
    """An axis covering ``values`` (those it can show) on round ticks; a sensible one for
    no value or a single one. ``zero``: a linear axis starts at 0."""
    shown = [v for v in values if math.isfinite(v) and abs(v) <= LARGEST and (v > 0 or not log)]
    if log:
        low = min(shown, default=1.0)
        high = max(shown, default=10.0)
        lo, hi = math.floor(math.log10(low)), math.ceil(math.log10(high))
        if hi == lo:  # one value, or all equal: a decade either side
            lo, hi = lo - 1, hi + 1
        lo, hi = max(lo, -300), min(hi, 300)
        stride = max(1, math.ceil((hi - lo) / 8))
        ticks = [10.0 ** p for p in range(lo, hi + 1, stride)]
        if hi - lo <= 2:
            ticks = sorted({t * m for t in ticks for m in (1, 2, 5)
                            if 10.0 ** lo <= t * m <= 10.0 ** hi})
        return Axis(10.0 ** lo, 10.0 ** hi, True, tuple(ticks), title)
    low, high = min(shown, default=0.0), max(shown, default=1.0)
    if zero:
        low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= abs(high) * 1e-9 or high == low:
        pad = abs(high) * 0.5 or 1.0
        low, high = (low if zero and low == 0 else low - pad), high + pad
    step = _nice_step(high - low, count)
    start, stop = math.floor(low / step) * step, math.ceil(high / step) * step
    ticks = [start + i * step for i in range(round((stop - start) / step) + 1)]
    return Axis(start, stop, False, tuple(_clean(t, step) for t in ticks), title)


def _clean(value: float, step: float) -> float:
    digits = max(0, -math.floor(math.log10(step)) + 2) if step < 1 else 0
    rounded = round(value, digits)
    return 0.0 if rounded == 0 else rounded


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    tip: str = ""  # a tooltip (SVG <title>), also read by screen readers


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: tuple[Point, ...]
    connect: bool = False  # a line through the points, in this order


@dataclass(frozen=True, slots=True)
class Reference:
    """A straight line ``y = slope · x`` (a roofline, or y = x), drawn dashed."""

    name: str
    slope: float


@dataclass(frozen=True, slots=True)
class Chart:
    """One picture: its SVG, and its title and description for the page around it."""

    title: str
    svg: str
    width: int
    height: int


@dataclass
class Canvas:
    """A chart being drawn: its SVG parts, and the box of every text so far (``free``)."""

    width: int
    parts: list[str] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)

    def text(self, x: float, y: float, text: str, anchor: str = "start",
             css: str = "") -> Box:
        box = text_box(x, y, text, anchor)
        self.boxes.append(box)
        klass = f' class="{css}"' if css else ""
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>'
                          f"{escape(text)}</text>")
        return box

    def free(self, box: Box, height: float) -> bool:
        return box.inside(self.width, height) and not any(box.overlaps(b) for b in self.boxes)


def _marker(kind: str, x: float, y: float, color: str, tip: str) -> str:
    title = f"<title>{escape(plain(tip))}</title>" if tip else ""
    if kind == "square":
        shape = f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7"'
    elif kind == "triangle":
        shape = f'<polygon points="{x:.1f},{y - 4.5:.1f} {x - 4:.1f},{y + 3:.1f} ' \
                f'{x + 4:.1f},{y + 3:.1f}"'
    elif kind == "diamond":
        shape = f'<polygon points="{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y:.1f} ' \
                f'{x:.1f},{y + 4.5:.1f} {x - 4.5:.1f},{y:.1f}"'
    else:
        shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5"'
    if not title:
        return f'{shape} fill="{color}"/>'
    return f'{shape} fill="{color}">{title}</{shape.split()[0][1:]}>'


def thinned(labels: list[tuple[float, str]], boxes: list[Box]) -> list[int]:
    """Indexes of tick labels to draw: every k-th, the smallest k whose boxes clear."""
    for stride in range(1, len(labels) + 1):
        kept = list(range(0, len(labels), stride))
        if all(not boxes[a].overlaps(boxes[b]) for a, b in pairwise(kept)):
            return kept
    return [0]


@dataclass(frozen=True, slots=True)
class Plot:
    """The plot area in SVG coordinates; ``x`` and ``y`` place an axis value in it."""

    left: float
    top: float
    right: float
    bottom: float

    def x(self, axis: Axis, value: float) -> float:
        return self.left + (self.right - self.left) * axis.at(value)

    def y(self, axis: Axis, value: float) -> float:
        return self.bottom - (self.bottom - self.top) * axis.at(value)


def _axes(canvas: Canvas, xa: Axis, ya: Axis) -> Plot:
    """Frame, grid, ticks and axis titles; the plot area they leave."""
    y_labels = [number(t) for t in ya.ticks]
    x_texts = [number(t) for t in xa.ticks]
    left = max(10 + max(text_width(label) for label in y_labels) + 6,
               4 + text_width(x_texts[0]) / 2 if x_texts else 0)
    right = WIDTH - 8 - text_width(x_texts[-1]) / 2 if x_texts else WIDTH - 8
    plot = Plot(left, 40, right, 40 + PLOT_HEIGHT)
    canvas.text(4, 20, fit(ya.title, WIDTH - 8))
    parts = canvas.parts
    y_boxes = [text_box(left - 6, plot.y(ya, t) + 4, label, "end")
               for t, label in zip(ya.ticks, y_labels, strict=True)]
    y_kept = set(thinned(list(zip(ya.ticks, y_labels, strict=True)), y_boxes))
    for i, (tick, label) in enumerate(zip(ya.ticks, y_labels, strict=True)):
        y = plot.y(ya, tick)
        parts.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" '
                     'stroke="#e3e3e3"/>')
        if i in y_kept:
            canvas.text(left - 6, y + 4, label, "end")
    xs = [plot.x(xa, t) for t in xa.ticks]
    x_boxes = [text_box(x, plot.bottom + 20, label, "middle")
               for x, label in zip(xs, x_texts, strict=True)]
    x_kept = set(thinned(list(zip(xa.ticks, x_texts, strict=True)), x_boxes))
    for i, (x, label) in enumerate(zip(xs, x_texts, strict=True)):
        parts.append(f'<line x1="{x:.1f}" y1="{plot.bottom:.1f}" x2="{x:.1f}" '
                     f'y2="{plot.bottom + 5:.1f}" stroke="#555"/>')
        if i in x_kept and canvas.free(x_boxes[i], math.inf):
            canvas.text(x, plot.bottom + 20, label, "middle")
    parts.append(f'<path d="M{left:.1f},{plot.top:.1f}V{plot.bottom:.1f}H{right:.1f}" '
                 'fill="none" stroke="#555"/>')
    centre = (left + right) / 2
    canvas.text(centre, plot.bottom + 38, fit(xa.title, 2 * min(centre, WIDTH - centre) - 8),
                "middle")
    return plot


def legend(canvas: Canvas, entries: list[tuple[str, str]], top: float) -> float:
    """Entries ``(swatch SVG at 0,0, name)`` in rows that wrap; the y below them."""
    x, y = 4.0, top + FONT_PX
    for swatch, name in entries:
        label = fit(name, LEGEND_TEXT_PX)
        width = 20 + text_width(label) + 16
        if x > 4 and x + width > WIDTH - 4:
            x, y = 4.0, y + LINE_PX
        canvas.parts.append(f'<g transform="translate({x:.1f},{y - 4:.1f})">{swatch}</g>')
        canvas.text(x + 20, y, label)
        x += width
    return y + DESCENT * FONT_PX + 6


def note_lines(canvas: Canvas, notes: Sequence[str], top: float) -> float:
    """``notes`` one a line from ``top`` down; the y below them."""
    y = top
    for note in notes:
        y += LINE_PX
        canvas.text(4, y, fit(note, WIDTH - 8), css="note")
    return y + DESCENT * FONT_PX + 4


def finish(canvas: Canvas, title: str, height: float) -> Chart:
    """The chart: ``canvas``'s parts in an SVG ``height`` tall, titled ``title``."""
    tall = math.ceil(height)
    label = escape(plain(title))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
           f'aria-label="{label}" width="{WIDTH}" height="{tall}" '
           f'viewBox="0 0 {WIDTH} {tall}" font-family="DejaVu Sans, system-ui, sans-serif" '
           f'font-size="{FONT_PX}"><title>{label}</title>{"".join(canvas.parts)}</svg>')
    return Chart(plain(title), svg, WIDTH, tall)


def _swatch(index: int, line: bool = False, dashed: bool = False) -> str:
    color = PALETTE[index % len(PALETTE)]
    if line or dashed:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        mark = "" if dashed else _marker(MARKERS[index % len(MARKERS)], 8, 0, color, "")
        return f'<line x1="0" y1="0" x2="16" y2="0" stroke="{color}" stroke-width="2"{dash}/>' \
               + mark
    return _marker(MARKERS[index % len(MARKERS)], 8, 0, color, "")


def scatter(title: str, series: Sequence[Series], x_title: str, y_title: str, *,
            log: bool = False, x_zero: bool = False, y_zero: bool = False,
            references: Sequence[Reference] = (), notes: Sequence[str] = ()) -> Chart:
    """Points (joined in their order where ``connect``), reference lines, axes and a legend.

    At most ``MAX_SERIES`` series are drawn (the rest are counted in a note); points an axis
    cannot show (not finite, or not positive on a log axis) are counted too.
    """
    notes = list(notes)
    if len(series) > MAX_SERIES:
        notes.append(f"{len(series) - MAX_SERIES} more series not drawn")
        series = series[:MAX_SERIES]
    xs = [p.x for s in series for p in s.points]
    ys = [p.y for s in series for p in s.points]
    xa = axis(xs, x_title, log, x_zero)
    ya = axis(ys, y_title, log, y_zero)
    canvas = Canvas(WIDTH)
    plot = _axes(canvas, xa, ya)
    hidden = 0
    for index, one in enumerate(series):
        color, marker = PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)]
        shown = [p for p in one.points if xa.holds(p.x) and ya.holds(p.y)]
        hidden += len(one.points) - len(shown)
        coords = [(plot.x(xa, p.x), plot.y(ya, p.y), p.tip) for p in shown]
        if one.connect and len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)  # in the given order
            canvas.parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                                'stroke-width="2"/>')
        canvas.parts.extend(_marker(marker, x, y, color, tip) for x, y, tip in coords)
    entries = [(_swatch(i, line=s.connect), s.name) for i, s in enumerate(series)]
    for index, ref in enumerate(references):
        segment = _reference(plot, xa, ya, ref.slope)
        if segment:
            canvas.parts.append(
                f'<line x1="{segment[0]:.1f}" y1="{segment[1]:.1f}" x2="{segment[2]:.1f}" '
                f'y2="{segment[3]:.1f}" stroke="{PALETTE[index % len(PALETTE)]}" '
                'stroke-width="1.5" stroke-dasharray="5 3"/>')
        entries.append((_swatch(index, dashed=True),
                        ref.name + ("" if segment else " (outside the axes)")))
    if hidden:
        notes.append(f"{hidden} point{'s' if hidden > 1 else ''} not shown "
                     "(not a finite" + (" positive" if xa.log else "") + " number)")
    bottom = legend(canvas, entries, plot.bottom + 46)
    return finish(canvas, title, note_lines(canvas, notes, bottom))


def _reference(plot: Plot, xa: Axis, ya: Axis,
               slope: float) -> tuple[float, float, float, float] | None:
    """Where ``y = slope · x`` crosses the plot area, in SVG coordinates; None if nowhere."""
    if not math.isfinite(slope) or slope <= 0:
        return None
    low = max(xa.low, ya.low / slope)
    high = min(xa.high, ya.high / slope)
    if not low < high or (xa.log and low <= 0):
        return None
    return (plot.x(xa, low), plot.y(ya, low * slope), plot.x(xa, high),
            plot.y(ya, high * slope))
