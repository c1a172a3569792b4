"""Energy per token and run conditions in the HTML report and the terminal lines: a
throttled or contended run is flagged and shown apart from clean ones; no power source is
an explicit "not measured"."""

from __future__ import annotations

import html
from typing import Any

from gptoss_doctor.app import conditions, energy
from gptoss_doctor.bench import results
from gptoss_doctor.probe.trace import TraceSources, replay
from gptoss_doctor.reports import tables
from gptoss_doctor.reports.html import render
from gptoss_doctor.serde import to_json

from conftest import FIXTURES

TINY = FIXTURES / "results" / "synthetic-tiny-cpu.json"


def _with_trace(name: str) -> dict[str, Any]:
    """The recorded tiny-model run, as if measured while ``name`` was replayed: each test's
    timed windows are placed inside the trace."""
    record = results.load(TINY)
    trace = replay(TraceSources.load(FIXTURES / "power" / name))
    from gptoss_doctor.bench.speed import TestResult

    tests = [TestResult(t["name"], t["kind"], t["n_tokens"], t["depth"], t["status"],
                        t["reason"], tuple(t["durations_s"]), tuple(t["samples_ts"]),
                        t["mean_ts"], t["stddev_ts"]) for t in record["tests"]]
    windows = [(t.name, 0.1 + 0.4 * i, 0.4 + 0.4 * i) for i, t in enumerate(tests)]
    return {**record, "energy": to_json(energy.report(trace, tests, windows)),
            "conditions": to_json(conditions.judge(trace))}


def test_a_measured_run_shows_joules_per_token_and_its_sources() -> None:
    page = html.unescape(render([_with_trace("nvml-h100-clean.json")]))
    assert "Energy and conditions" in page and "J/token" in page
    assert "nvml:0 NVIDIA H100 80GB HBM3 (energy counter)" in page
    assert "Not throttled. Not contended." in page and "Not a clean run" not in page


def test_a_throttled_run_is_flagged_with_its_evidence() -> None:
    page = html.unescape(render([_with_trace("nvml-h100-thermal-throttle.json")]))
    assert "Not a clean run: #1" in page and "was throttled" in page
    assert "HW thermal slowdown in 4 of 11 readings" in page


def test_no_power_source_says_not_measured_and_why() -> None:
    page = html.unescape(render([_with_trace("rapl-unreadable.json")]))
    assert "Energy not measured: " in page and "root only since Linux 5.10" in page


def test_a_contended_run_stands_apart_from_a_clean_one() -> None:
    page = html.unescape(render([_with_trace("nvml-h100-clean.json"),
                                 _with_trace("ci-2core-busy-neighbour.json")]))
    assert "(contended run): shown apart" in page
    assert "was contended" in page
    assert "Least free RAM during the run: " in page  # recorded on the CI machine


def test_an_older_file_without_these_blocks_renders_as_before() -> None:
    page = render([results.load(TINY)])
    assert "Energy and conditions" not in page and "Not a clean run" not in page


def test_terminal_lines() -> None:
    assert tables.honesty_lines(_with_trace("nvml-h100-thermal-throttle.json"))[1].startswith(
        "conditions: throttled: nvml:0 NVIDIA H100 80GB HBM3: SW thermal slowdown")
    clean = tables.honesty_lines(_with_trace("nvml-h100-clean.json"))
    assert clean[0].startswith("energy: pp") and "J/token" in clean[0]
    assert clean[1] == "conditions: not throttled, not contended"
    unknown = tables.honesty_lines(_with_trace("rapl-unreadable.json"))
    assert unknown[0].startswith("energy: not measured: ")
    assert tables.honesty_lines(results.load(TINY)) == ()


def test_a_local_endpoint_run_shows_its_sweep_energy() -> None:
    record = results.load(FIXTURES / "results" / "endpoint-lmstudio-fake.json")
    trace = replay(TraceSources.load(FIXTURES / "power" / "nvml-h100-clean.json"))
    record = {**record, "energy": to_json(energy.sweep_report(trace, 600)),
              "conditions": to_json(conditions.judge(trace, neighbours=False))}
    page = html.unescape(render([record]))
    assert "Energy of the whole sweep per generated token" in page
    assert "the server is another process on this machine" in page


def test_the_reproduce_command_keeps_the_cooldown() -> None:
    from gptoss_doctor.reports.html import reproduce_command

    record = results.load(TINY)
    assert "--cooldown" not in reproduce_command(record)
    cooled = {**record, "config": {**record["config"], "cooldown_s": 30.0}}
    assert reproduce_command(cooled).endswith("--cooldown 30")
