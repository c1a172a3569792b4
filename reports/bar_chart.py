"""Horizontal bar charts, on ``charts``' axes, text boxes, legend and notes.

One row per category, one bar per series in it, a value axis at the bottom. The same rules
as every chart in ``charts``: text only where it fits, values that cannot be drawn (not a
finite number, or negative) left out and counted in a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from gptoss_doctor.reports.charts import (
    MAX_SERIES,
    PALETTE,
    WIDTH,
    Axis,
    Canvas,
    Chart,
    Plot,
    axis,
    finish,
    fit,
    legend,
    note_lines,
    number,
    text_box,
    text_width,
    thinned,
)
from gptoss_doctor.reports.terminal_text import plain

BAR_PX = 10  # one bar's height (a pixel of it is the gap to the next series' bar)
GAP_PX = 8  # between two categories


def bars(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
         value_title: str, *, top: float | None = None, percent: bool = False,
         notes: Sequence[str] = ()) -> Chart:
    """Horizontal bars: one row per category, one bar per series in it, a value axis at the
    bottom (0 to ``top``, else to the largest value), a legend of the series."""
    notes = list(notes)
    if len(series) > MAX_SERIES:
        notes.append(f"{len(series) - MAX_SERIES} more series not drawn")
        series = series[:MAX_SERIES]
    hidden = sum(1 for _, vs in series for v in vs if not _drawn(v))
    names = [fit(c, 150) for c in categories]
    layout = _layout(names, series, value_title, top, percent)
    plot = layout.plot
    canvas = Canvas(WIDTH)
    canvas.text(4, 18, fit(value_title, WIDTH - 8))
    _value_ticks(canvas, layout)
    _rows(canvas, layout, categories, names, series)
    canvas.parts.append(f'<path d="M{plot.left:.1f},{plot.top:.1f}V{plot.bottom:.1f}'
                        f'H{plot.right:.1f}" fill="none" stroke="#555"/>')
    if hidden:
        notes.append(f"{hidden} value{'s' if hidden > 1 else ''} not shown (not a number)")
    entries = [(f'<rect x="0" y="-5" width="16" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>',
                name) for i, (name, _) in enumerate(series)]
    bottom = legend(canvas, entries, plot.bottom + 26)
    return finish(canvas, title, note_lines(canvas, notes, bottom))


def _drawn(value: float) -> bool:
    return math.isfinite(value) and value >= 0


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the bars go: the plot area, the value axis (in percent where ``percent``, each
    value times ``scale``), its tick labels, and one category's height."""

    plot: Plot
    xa: Axis
    labels: list[str]
    scale: float
    percent: bool
    row: float


def _layout(names: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
            value_title: str, top: float | None, percent: bool) -> _Layout:
    """Room left of the plot for the longest category name, below it for one row per
    category, right of it for the last tick label."""
    scale = 100.0 if percent else 1.0
    values = [v for _, vs in series for v in vs if _drawn(v)]
    xa = axis([v * scale for v in values] + ([top * scale] if top else []), value_title,
              zero=True)
    left = 10 + max((text_width(n) for n in names), default=0)
    row = BAR_PX * max(len(series), 1) + GAP_PX
    height = max(row * len(names), 40)
    labels = [number(t) + ("%" if percent else "") for t in xa.ticks]
    right = WIDTH - 8 - text_width(labels[-1]) / 2
    return _Layout(Plot(left, 30, right, 30 + height), xa, labels, scale, percent, row)


def _value_ticks(canvas: Canvas, layout: _Layout) -> None:
    """The value axis's grid lines, and the tick labels that clear each other."""
    plot, xa, labels = layout.plot, layout.xa, layout.labels
    for tick in xa.ticks:
        x = plot.x(xa, tick)
        canvas.parts.append(f'<line x1="{x:.1f}" y1="{plot.top:.1f}" x2="{x:.1f}" '
                            f'y2="{plot.bottom + 5:.1f}" stroke="#e3e3e3"/>')
    boxes = [text_box(plot.x(xa, t), plot.bottom + 18, label, "middle")
             for t, label in zip(xa.ticks, labels, strict=True)]
    for i in thinned(list(zip(xa.ticks, labels, strict=True)), boxes):
        canvas.text(plot.x(xa, xa.ticks[i]), plot.bottom + 18, labels[i], "middle")


def _rows(canvas: Canvas, layout: _Layout, categories: Sequence[str], names: Sequence[str],
          series: Sequence[tuple[str, Sequence[float]]]) -> None:
    """Each category's name, then its bars: one per series that has a value to draw."""
    plot = layout.plot
    for c, name in enumerate(names):
        y0 = plot.top + c * layout.row + GAP_PX / 2
        canvas.text(plot.left - 6, y0 + (layout.row - GAP_PX) / 2 + 4, name, "end")
        for s, (series_name, vs) in enumerate(series):
            value = vs[c] if c < len(vs) else math.nan
            if _drawn(value):
                shown = f"{value * layout.scale:.1f}%" if layout.percent else f"{value:g}"
                canvas.parts.append(_bar(layout, s, y0 + s * BAR_PX, value,
                                         f"{categories[c]}, {series_name}: {shown}"))


def _bar(layout: _Layout, index: int, y: float, value: float, tip: str) -> str:
    """Series ``index``'s bar at ``y``, with ``tip`` as its tooltip."""
    left = layout.plot.left
    length = max(layout.plot.x(layout.xa, value * layout.scale) - left, 1.5)  # a 0 shows
    return (f'<rect x="{left:.1f}" y="{y:.1f}" width="{length:.1f}" height="{BAR_PX - 1}" '
            f'fill="{PALETTE[index % len(PALETTE)]}"><title>{escape(plain(tip))}</title>'
            "</rect>")
