"""Line charts in SVG, no JavaScript: axes with round ticks, paths (plain, dashed or steps),
a legend that wraps, notes.

Layout is by construction: every text item gets a box, estimated on the wide side
(``text_width``), placed where no other box is and inside the picture; ``Figure.boxes``
keeps them for the tests (tests/reports/test_serving_view.py). Labels from outside are
made plain (``clean``) and cut to the room they have (``fit``). ``reports.serving_view``
draws a load run's charts with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

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
