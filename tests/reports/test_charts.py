"""Charts: every text box inside the picture and clear of every other, on recorded and on
adversarial data; axes with ticks, legends, and what could not be drawn said in a note.

Boxes are estimated from the SVG itself (each ``<text>``'s position, anchor and string,
``charts.text_box``); ``test_publish_browser.py`` measures the real ones in Chromium.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from itertools import combinations
from typing import Any

import pytest

from gptoss_doctor.bench import results
from gptoss_doctor.reports import charts, figures
from gptoss_doctor.reports.bar_chart import bars
from gptoss_doctor.reports.charts import Point, Reference, Series, scatter
from gptoss_doctor.reports.html import render

from conftest import FIXTURES

SVG = "{http://www.w3.org/2000/svg}"
RECORDED = sorted([*FIXTURES.glob("results/*.json"), *FIXTURES.glob("results-energy/*.json"),
                   *FIXTURES.glob("results-publish/*.json")])


def texts(svg: str) -> tuple[tuple[float, float], list[tuple[str, charts.Box]]]:
    """The viewBox size and each text's string and estimated box."""
    root = ET.fromstring(svg)
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    found = []
    for node in root.iter(f"{SVG}text"):
        text = node.text or ""
        found.append((text, charts.text_box(float(node.attrib["x"]), float(node.attrib["y"]),
                                            text, node.attrib.get("text-anchor", "start"))))
    return (width, height), found


def assert_readable(chart: charts.Chart) -> None:
    (width, height), boxes = texts(chart.svg)
    assert (width, height) == (chart.width, chart.height)
    for text, box in boxes:
        assert box.inside(width, height), f"{text!r} leaves the picture: {box}"
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"
    root = ET.fromstring(chart.svg)
    for mark in root.iter(f"{SVG}circle"):  # data marks stay in the picture too
        assert 0 <= float(mark.attrib["cx"]) <= width and 0 <= float(mark.attrib["cy"]) <= height


def labels(chart: charts.Chart) -> list[str]:
    return [text for text, _ in texts(chart.svg)[1]]


def recorded() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, results.load(path)) for path in RECORDED]


def every_figure(runs: list[tuple[str, dict[str, Any]]]) -> list[charts.Chart]:
    made: list[charts.Chart | None] = [figures.bandwidth_chart(runs),
                                       figures.prediction_chart(runs),
                                       figures.depth_compare_chart(runs),
                                       figures.concurrency_chart(runs), figures.tool_chart(runs)]
    for label, record in runs:
        made += [*figures.depth_charts(record), figures.concurrency_chart([(label, record)]),
                 figures.tool_chart([(label, record)])]
    return [chart for chart in made if chart is not None]


def test_every_chart_of_the_recorded_runs_is_readable() -> None:
    made = every_figure(recorded())
    kinds = {chart.title for chart in made}
    assert {"Generation speed against memory bandwidth", "Tool-use scores per category",
            "Throughput against latency as streams are added",
            "Generation against context depth"} <= kinds
    for chart in made:
        assert_readable(chart)


def test_the_single_run_reports_depth_chart_has_scales_and_no_clipped_labels() -> None:
    """The report's depth chart used to print "pp64 29" past the right edge, with labels on
    top of each other and no axis scale (issue 18)."""
    record = results.load(FIXTURES / "results" / "synthetic-20b-cpu-2threads.json")
    made = figures.depth_charts(record)
    assert [c.title for c in made] == ["Prompt processing against context depth",
                                      "Generation against context depth"]
    for chart in made:
        assert_readable(chart)
        shown = labels(chart)
        assert "0" in shown and "600" in shown  # depth ticks; recorded depths are 0 and 512
        assert any("tokens per second" in s for s in shown)
        assert any("context depth" in s for s in shown)
    assert "pp64" in labels(made[0]) and "tg16" in labels(made[1])  # the legends
    page = render([record])
    assert page.count('class="chart"') == 2 and "pp64 29" not in page


def _series(points: list[tuple[float, float]], name: str = "runs") -> Series:
    return Series(name, tuple(Point(x, y, f"{x}, {y}") for x, y in points), connect=True)


ADVERSARIAL = [
    pytest.param([_series([(1.0, 1.0)])], id="one point"),
    pytest.param([_series([(i * 0.37 % 50, (i * 7.1) % 1000) for i in range(2000)])],
                 id="two thousand points"),
    pytest.param([_series([(1e-300, 1e300), (1e300, 1e-300)])], id="huge and tiny values"),
    pytest.param([_series([(-1.7e308, 1.7e308), (1.7e308, -1.7e308), (1.0, 2.0)])],
                 id="the largest floats"),
    pytest.param([_series([(0.0, 0.0), (0.0, 0.0)])], id="only zeros"),
    pytest.param([_series([(math.nan, 1.0), (1.0, math.inf), (2.0, -5.0), (3.0, 4.0)])],
                 id="NaN infinite and negative values"),
    pytest.param([_series([(5.0, 5.0)], "x" * 500), _series([(1, 2)], "名前" * 80),
                  _series([(2, 3)], "<script>\u202e\x1b[31m")], id="long and hostile names"),
    pytest.param([_series([(i, i * j) for i in range(5)], f"series {j}") for j in range(20)],
                 id="more series than colours"),
    pytest.param([], id="no series at all"),
]


@pytest.mark.parametrize("series", ADVERSARIAL)
@pytest.mark.parametrize("log", [False, True], ids=["linear axes", "log axes"])
def test_scatter_stays_readable_on_adversarial_data(series: list[Series], log: bool) -> None:
    chart = scatter("t" * 300, series, "x axis " * 40, "y axis " * 40, log=log,
                    references=[Reference("roofline " * 30, 2.0), Reference("y = x", 1.0)],
                    notes=["a note " * 50])
    assert_readable(chart)
    assert "<script>" not in chart.svg and "\x1b" not in chart.svg and "\u202e" not in chart.svg


def test_points_an_axis_cannot_show_are_counted_in_a_note() -> None:
    bad = [_series([(math.nan, 1.0), (1.0, math.inf), (2.0, -5.0), (3.0, 4.0), (4.0, 8.0)])]
    assert "2 points not shown (not a finite number)" in labels(scatter("t", bad, "x", "y"))
    assert "3 points not shown (not a finite positive number)" in labels(
        scatter("t", bad, "x", "y", log=True))
    many = [_series([(1, j)], f"s{j}") for j in range(12)]
    assert "4 more series not drawn" in labels(scatter("t", many, "x", "y"))


def test_ticks_are_round_numbers_covering_the_data() -> None:
    axis = charts.axis([3.0, 97.0], "t/s")
    assert axis.ticks[0] <= 3.0 and axis.ticks[-1] >= 97.0 and len(axis.ticks) <= 7
    assert all(t == round(t) for t in axis.ticks)
    log = charts.axis([12.0, 3400.0], "GB/s", log=True)
    assert log.ticks == (10.0, 100.0, 1000.0, 10000.0)
    assert charts.number(1500.0) == "1.5k" and charts.number(0.05) == "0.05"
    assert charts.number(2e20) == "2e20"


@pytest.mark.parametrize("values", [
    pytest.param([[0.0, 1.0, 0.5]], id="zero to full"),
    pytest.param([[math.nan, 2.0, -1.0]], id="NaN and negative"),
    pytest.param([[0.1 * i for i in range(3)]] * 12, id="more series than colours"),
])
def test_bars_stay_readable(values: list[list[float]]) -> None:
    chart = bars("scores", ["simple", "a category with a very long name " * 4, "名前" * 30],
                 [(f"run {i} " * 20, v) for i, v in enumerate(values)],
                 "cases passed (percent)", top=1.0, percent=True)
    assert_readable(chart)
    assert "100%" in labels(chart) and "0%" in labels(chart)


def test_the_estimate_is_never_narrower_than_dejavu_sans() -> None:
    """DejaVu Sans advance widths (units per em 2048) of the widest glyphs of each class."""
    dejavu = {"m": 1995, "W": 2025, "0": 1303, "a": 1255, "i": 569, " ": 651, "r": 842,
              "M": 1767, "w": 1675, "%": 1946, "@": 2048}
    for char, units in dejavu.items():
        assert charts.text_width(char, 2048) >= units, char


def test_the_chart_json_of_a_record_does_not_leak_into_the_svg() -> None:
    record = json.loads((FIXTURES / "results" / "synthetic-tiny-cpu.json").read_text())
    record["tests"][0]["name"] = "<img src=x onerror=alert(1)>"
    for chart in figures.depth_charts(record):
        assert "<img" not in chart.svg


def test_the_geometry_check_catches_what_the_old_depth_chart_did() -> None:
    """The old chart's labels: "pp64 31.0" on top of "pp64 29", "tg16 13" past the edge."""
    overlapping = charts.Chart("old", '<svg xmlns="http://www.w3.org/2000/svg" '
                               'viewBox="0 0 640 260"><text x="500" y="60">pp64 31.0</text>'
                               '<text x="510" y="64">pp64 29</text></svg>', 640, 260)
    with pytest.raises(AssertionError, match="overlaps"):
        assert_readable(overlapping)
    clipped = charts.Chart("old", '<svg xmlns="http://www.w3.org/2000/svg" '
                           'viewBox="0 0 640 260"><text x="595" y="90">tg16 13</text></svg>',
                           640, 260)
    with pytest.raises(AssertionError, match="leaves the picture"):
        assert_readable(clipped)
