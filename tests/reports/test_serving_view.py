"""Serving charts: every text box inside the picture and clear of the others (estimated
widths, reports/line_chart.py), on ordinary and adversarial runs; hostile names escaped;
a saved ``load`` section read however broken."""

from __future__ import annotations

import math
import re
from itertools import combinations

import pytest

from gptoss_doctor.reports import line_chart
from gptoss_doctor.reports import serving_view as sv

SLOS = [sv.SloLine("ttft_p95", 2.0), sv.SloLine("itl_p95", 0.1)]


def levels(count: int, scale: float = 1.0, name: str = "") -> list[sv.Level]:
    out = []
    for i in range(1, count + 1):
        rate = i * 0.5 * scale
        ttft = tuple(0.05 * scale * (1 + (j * 7919 % 97) / 20) * i for j in range(200))
        out.append(sv.Level(f"{name}{rate:g}/s", rate, min(rate, 3 * scale),
                            min(rate, 2.5 * scale) * 0.9,
                            {"ttft_p95": 0.4 * i * scale, "itl_p95": 0.02 * i * scale},
                            ttft, ((0.5, 0.01 * i), (0.9, 0.02 * i), (0.95, 0.03 * i),
                                   (0.99, 0.08 * i))))
    return out


def check(figure: sv.Figure) -> None:
    assert figure.svg.startswith("<svg") and "<script" not in figure.svg.lower()
    view = re.search(r'viewBox="0 0 (\d+) (\d+)"', figure.svg)
    assert view is not None
    width, height = float(view.group(1)), float(view.group(2))
    assert figure.boxes, "a chart has text"
    for box in figure.boxes:
        assert box.x0 >= 0 and box.x1 <= width and box.y0 >= 0 and box.y1 <= height, box
    for a, b in combinations(figure.boxes, 2):
        assert not a.overlaps(b), (a, b)
    assert figure.svg.count("<text") == len(figure.boxes)


@pytest.mark.parametrize(("data", "by_rate"), [
    pytest.param(levels(6), True, id="a six-level rate sweep"),
    pytest.param(levels(1), True, id="one level"),
    pytest.param(levels(20), True, id="twenty levels, eight distributions drawn"),
    pytest.param(levels(5, 1e6), True, id="huge values"),
    pytest.param(levels(5, 1e-6), False, id="tiny values at concurrency levels"),
    pytest.param(levels(3, name="<script>alert(1)</script>\x1b[31m" + "w" * 200), True,
                 id="hostile long level names"),
    pytest.param([sv.Level("0/s", 0.0, 0.0, 0.0, {"ttft_p95": 0.0}, (0.0, 0.0),
                           ((0.5, 0.0),))], True, id="all zeros"),
    pytest.param([sv.Level("a", 1.0, math.nan, math.inf, {"ttft_p95": math.nan},
                           (math.nan, math.inf, 1.0), ())], True, id="NaN and infinities"),
])
def test_every_chart_keeps_its_text_inside_and_apart(data: list[sv.Level], by_rate: bool
                                                     ) -> None:
    figures = sv.figures(data, SLOS, by_rate)
    assert len(figures) == 5 or not all(lv.itl_percentiles_s for lv in data)
    for figure in figures:
        check(figure)


def test_each_slo_has_its_chart_with_its_limit_dashed_and_named_in_the_legend() -> None:
    ttft, itl = sv.latency_charts(levels(4), SLOS, True)
    for figure, name in ((ttft, "SLO: ttft p95 ≤ 2000 ms"), (itl, "SLO: itl p95 ≤ 100 ms")):
        assert figure.svg.count('stroke-dasharray="6 4"') == 2  # the line and its swatch
        assert name in figure.svg
        check(figure)


def test_without_slos_goodput_is_said_missing() -> None:
    data = [sv.Level("1/s", 1.0, 1.0, None)]
    figure = sv.throughput_chart(data, True)
    assert "no goodput: the run had no --slo" in figure.svg
    check(figure)


def test_twenty_levels_say_which_share_is_drawn() -> None:
    per_level = [(lv.label, sv.empirical_cdf(lv.ttft_samples_s)) for lv in levels(20)]
    figure = sv.cdf_chart("TTFT", per_level)
    assert "8 of 20 levels shown" in figure.svg
    assert figure.svg.count("<path") == 8  # one curve per level drawn


def test_empirical_cdf_rises_to_one_over_finite_values() -> None:
    assert sv.empirical_cdf([3.0, 1.0, math.nan, 2.0]) == [(1.0, 1 / 3), (2.0, 2 / 3),
                                                          (3.0, 1.0)]


@pytest.mark.parametrize(("low", "high"), [(0, 1), (0, 7.3), (0.001, 0.0042), (0, 1e6),
                                           (5, 5), (0, 3e300)])
def test_nice_ticks_cover_the_range_in_round_steps(low: float, high: float) -> None:
    ticks = line_chart.nice_ticks(low, high)
    assert ticks[0] <= low and (ticks[-1] >= high or high <= low)
    assert 2 <= len(ticks) <= 12


def test_a_saved_load_section_is_read_and_broken_fields_left_out() -> None:
    good = {"mode": "rate", "requested_rate": 2, "total": {
        "completed_rps": 1.9, "goodput_rps": 1.5, "ttft_s": {"p95": 0.3},
        "itl_s": {"p50": 0.01, "p90": 0.02, "p95": 0.03, "p99": "x"}},
        "samples": [{"ttft_s": 0.2}, {"ttft_s": None}, "junk", {"ttft_s": True}]}
    load = {"mode": "rate", "slos": ["ttft_p95=2s", "itl_p95=100ms", "bad", "x=nanms"],
            "levels": [good, {"mode": "rate"}, "junk", {**good, "requested_rate": 1}]}
    level = sv.level_of(good)
    assert level is not None and level.x == 2 and level.throughput_rps == 1.9
    assert level.ttft_samples_s == (0.2,) and len(level.itl_percentiles_s) == 3
    assert [s.key for s in sv.slo_lines(load["slos"])] == ["ttft_p95", "itl_p95"]
    figures = sv.from_load(load)
    assert len(figures) == 5
    for figure in figures:
        check(figure)
    assert sv.from_load({"levels": "nope"}) == [] and sv.from_load(None) == []


def test_the_html_report_shows_a_load_runs_charts_in_its_endpoint_section() -> None:
    from pathlib import Path

    from gptoss_doctor.bench import results
    from gptoss_doctor.reports import html

    fixture = Path(__file__).parents[1] / "fixtures" / "results" / "endpoint-lmstudio-fake.json"
    record = results.load(fixture)
    level = {"mode": "rate", "requested_rate": 1.5, "total": {
        "completed_rps": 1.4, "goodput_rps": 1.2, "ttft_s": {"p95": 0.5},
        "itl_s": {"p50": 0.02, "p90": 0.03, "p95": 0.04, "p99": 0.09}},
        "samples": [{"ttft_s": 0.3}, {"ttft_s": 0.5}]}
    page = html.render([{**record, "load": {"mode": "rate", "slos": ["ttft_p95=1s"],
                                           "levels": [level]}}])
    # throughput, the one SLO's latency, the TTFT and ITL distributions
    assert page.count("<svg") - html.render([record]).count("<svg") == 4
    assert "Throughput and goodput" in page and "SLO: ttft p95 ≤ 1000 ms" in page
