"""Charts of results records: which numbers each picture shows, and how they are named.

``reports.charts`` draws; this module picks the data out of results records (already
loaded and validated by ``bench.results.load``): depth curves of one run, an endpoint's
concurrency curve (throughput against latency), tool-use scores per category, and over
many runs generation speed against memory bandwidth with each model's roofline, and the
doctor's prediction against the measurement.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from statistics import median
from typing import Any

from gptoss_doctor.reports.bar_chart import bars
from gptoss_doctor.reports.charts import Chart, Point, Reference, Series, scatter

KIND_NAMES = {"pp": "prompt processing", "tg": "generation"}
_GPT_OSS = re.compile(r"gpt-oss-[0-9a-z]+")


def depth_charts(record: dict[str, Any]) -> list[Chart]:
    """One chart per test kind (pp, tg) measured at more than one depth."""
    found: dict[str, dict[str, list[Point]]] = {}
    for test in record.get("tests", []):
        if test.get("mean_ts") is None or test.get("depth") is None:
            continue
        name = f"{test['kind']}{test['n_tokens']}"
        tip = f"{test['name']}: {test['mean_ts']:.2f} t/s"
        found.setdefault(test["kind"], {}).setdefault(name, []).append(
            Point(float(test["depth"]), float(test["mean_ts"]), tip))
    charts = []
    for kind, series in found.items():
        lines = [Series(name, tuple(sorted(points, key=lambda p: p.x)), connect=True)
                 for name, points in series.items() if len(points) > 1]
        if lines:
            what = KIND_NAMES.get(kind, kind)
            charts.append(scatter(
                f"{what.capitalize()} against context depth", lines,
                "context depth (tokens already in the cache)",
                f"{what} (tokens per second, t/s)", x_zero=True, y_zero=True))
    return charts


def concurrency_chart(runs: Sequence[tuple[str, dict[str, Any]]]) -> Chart | None:
    """Aggregate throughput against median request latency, one curve per run and shape
    (each point a concurrency level); None when no run has levels."""
    series: list[Series] = []
    for label, record in runs:
        shapes: dict[str, list[Point]] = {}
        for level in record.get("concurrency") or []:
            if level.get("aggregate_ts") is None or level.get("e2e_p50_s") is None:
                continue
            tip = (f"{label}, {level['shape']}, {level['streams']} streams: "
                   f"{level['aggregate_ts']:.1f} t/s in all, {level['e2e_p50_s']:.3f} s median")
            shapes.setdefault(level["shape"], []).append(
                Point(float(level["e2e_p50_s"]), float(level["aggregate_ts"]), tip))
        series.extend(Series(f"{label} · {shape}" if len(runs) > 1 else shape,
                             tuple(points), connect=True) for shape, points in shapes.items())
    if not series:
        return None
    return scatter("Throughput against latency as streams are added", series,
                   "median request latency (seconds)",
                   "aggregate generation, all streams (tokens per second, t/s)", y_zero=True,
                   notes=["Each point is one concurrency level; more streams move right."])


def tool_chart(runs: Sequence[tuple[str, dict[str, Any]]]) -> Chart | None:
    """pass@k per category: for one run pass@k and pass^k, for several pass@k of each."""
    tools = [(label, r) for label, r in runs if r.get("suite") == "tools" and r.get("scores")]
    if not tools:
        return None
    categories = list(dict.fromkeys(c for _, r in tools for c in r["scores"]["by_category"]))

    def column(record: dict[str, Any], key: str) -> list[float]:
        scores = record["scores"]["by_category"]
        return [_number(scores[c][key]) if c in scores else math.nan for c in categories]

    if len(tools) == 1:
        record = tools[0][1]
        k = record["config"].get("repeats", "k")
        series = [(f"pass@{k}: passed at least once", column(record, "pass_at_k")),
                  (f"pass^{k}: passed every time", column(record, "pass_hat_k"))]
    else:
        series = [(f"{label} pass@k", column(record, "pass_at_k")) for label, record in tools]
    return bars("Tool-use scores per category", categories, series,
                "cases passed (percent of the category)", top=1.0, percent=True)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def measured_tg(record: dict[str, Any]) -> float | None:
    """The generation rate at depth 0 (the first tg test run there), or None."""
    for test in record.get("tests", []):
        if test.get("kind") == "tg" and not test.get("depth") and test.get("mean_ts"):
            return float(test["mean_ts"])
    return None


def _model(record: dict[str, Any]) -> str:
    """The model's name, one per model: "gpt-oss-20b" whether the file called it that or
    "gpt-oss-20b (synthetic random weights)" (synthetic or not is in the run's table)."""
    model = str(record.get("key_properties", {}).get("model") or "unknown model")
    named = _GPT_OSS.match(model)
    return named.group(0) if named else model


def _by_size(by_model: dict[str, list[Point]]) -> list[str]:
    """Models with the most runs first, so a model keeps its colour from chart to chart."""
    return sorted(by_model, key=lambda m: (-len(by_model[m]), m))


def bandwidth_chart(runs: Sequence[tuple[str, dict[str, Any]]]) -> Chart | None:
    """Generation speed against memory bandwidth, a series per model, with each model's
    roofline: bandwidth / bytes read per token (the median the runs of that model report)."""
    by_model: dict[str, list[Point]] = {}
    per_token: dict[str, list[float]] = {}
    missing = 0
    for label, record in runs:
        roofline, tg = record.get("roofline"), measured_tg(record)
        if not roofline or tg is None or not roofline.get("bandwidth_bytes_per_s"):
            missing += 1
            continue
        model = _model(record)
        gbps = roofline["bandwidth_bytes_per_s"] / 1e9
        by_model.setdefault(model, []).append(
            Point(gbps, tg, f"{label}: {tg:.1f} t/s at {gbps:.0f} GB/s"))
        if roofline.get("bytes_per_token"):
            per_token.setdefault(model, []).append(float(roofline["bytes_per_token"]))
    if not by_model:
        return None
    order = _by_size(by_model)
    series = [Series(f"{m} ({len(by_model[m])} run{'s' if len(by_model[m]) > 1 else ''})",
                     tuple(by_model[m])) for m in order]
    references = [Reference(f"{m} roofline ({median(per_token[m]) / 1e9:.3g} GB a token)",
                            1e9 / median(per_token[m])) for m in order if m in per_token]
    notes = [f"{missing} run{'s' if missing > 1 else ''} without a bandwidth figure or a tg "
             "test at depth 0 not shown"] if missing else []
    return scatter("Generation speed against memory bandwidth", series,
                   "memory bandwidth (GB/s)", "generation at depth 0 (tokens per second, t/s)",
                   log=True, references=references, notes=notes)


def prediction_chart(runs: Sequence[tuple[str, dict[str, Any]]]) -> Chart | None:
    """Measured generation against the doctor's prediction for that machine and settings,
    with the line where they are equal."""
    by_model: dict[str, list[Point]] = {}
    for label, record in runs:
        predicted = (record.get("roofline") or {}).get("predicted_tokens_per_s")
        tg = measured_tg(record)
        if predicted and tg is not None:
            by_model.setdefault(_model(record), []).append(
                Point(float(predicted), tg, f"{label}: predicted {predicted:.1f}, "
                      f"measured {tg:.1f} t/s"))
    if not by_model:
        return None
    series = [Series(m, tuple(by_model[m])) for m in _by_size(by_model)]
    return scatter("Measured generation against the doctor's prediction", series,
                   "predicted generation (tokens per second, t/s)",
                   "measured generation at depth 0 (t/s)", log=True,
                   references=[Reference("measured = predicted", 1.0)],
                   notes=["Above the dashed line: faster than predicted."])


def depth_compare_chart(runs: Sequence[tuple[str, dict[str, Any]]]) -> Chart | None:
    """Generation against depth, one curve per run (its first tg test measured at more
    than one depth); None when no run has such a curve."""
    series = []
    for label, record in runs:
        curves: dict[str, list[Point]] = {}
        for test in record.get("tests") or []:
            if test.get("kind") == "tg" and test.get("mean_ts") is not None:
                curves.setdefault(f"tg{test['n_tokens']}", []).append(Point(
                    float(test.get("depth") or 0), float(test["mean_ts"]),
                    f"{label}, {test['name']}: {test['mean_ts']:.2f} t/s"))
        name, points = next(((n, p) for n, p in curves.items() if len(p) > 1), ("", []))
        if points:
            series.append(Series(f"{label} · {name}", tuple(sorted(points, key=lambda p: p.x)),
                                 connect=True))
    if not series:
        return None
    return scatter("Generation against context depth, run by run", series,
                   "context depth (tokens already in the cache)",
                   "generation (tokens per second, t/s)", x_zero=True, y_zero=True)
