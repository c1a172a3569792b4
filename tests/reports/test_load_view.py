"""The load run's terminal table, on a results file recorded here: ``bench speed --endpoint
URL --endpoint URL --sweep --rate 4 --slo ttft_p95=12ms --duration 2 --tests pp16,tg8``
against tests/zero_server.py (8 tokens 10 ms apart) named twice as two replicas; no rate met
the SLO, so the sweep halved down to 1/64 of its start.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from gptoss_doctor.bench import results
from gptoss_doctor.reports import load_view

FIXTURE = (Path(__file__).parents[1] / "fixtures" / "results-publish"
           / "endpoint-load-sweep-zero.json")


def _text(record: dict) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(load_view.load_table(record))
    return console.export_text()


def test_a_sweep_over_replicas_renders_a_row_per_level_and_per_replica() -> None:
    record = results.load(FIXTURE)
    run = record["load"]
    text = _text(record)
    levels = [f"{lv['requested_rate']:g}/s" for lv in run["levels"]]
    assert levels[:2] == ["4/s", "2/s"] and all(f"{name} ✗" in text for name in levels)
    assert text.count("└ r1") == text.count("└ r2") == len(run["levels"])
    assert "no rate met the SLOs, down to 0.0625 req/s" in text
    assert "SLOs ttft_p95=12ms" in text


def test_caption_lines_name_client_bound_levels_drops_and_errors() -> None:
    run = results.load(FIXTURE)["load"]
    level = {**run["levels"][0], "dropped": 3,
             "client": {**run["levels"][0]["client"], "client_bound": True,
                        "reason": "event-loop lag p99 42.1 ms > 20 ms"},
             "total": {**run["levels"][0]["total"], "errors": {"boom": 2}}}
    lines = load_view.caption_lines({**run, "levels": [level], "sweep": None})
    assert lines[1:] == ["4/s: client-bound (event-loop lag p99 42.1 ms > 20 ms)",
                         "4/s: 3 dropped at the cap of 1024 in flight", "4/s: 2× boom"]
