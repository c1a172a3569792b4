"""HTML reports from recorded results files: content, escaping, comparison, bad input."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.probe.model import GpuInfo
from gptoss_doctor.reports.html import render

from conftest import FIXTURES

RESULTS = FIXTURES / "results"
TWENTY_B = RESULTS / "synthetic-20b-cpu-2threads.json"
TINY = RESULTS / "synthetic-tiny-cpu.json"
SMOL = RESULTS / "smollm2-cpu-2threads.json"
TOOLS = RESULTS / "synthetic-tiny-tools.json"  # bench tools --synthetic tiny --max-tokens 32
# bench speed --endpoint against tests/openai_server.py posing as LM Studio (with a key)
ENDPOINT = RESULTS / "endpoint-lmstudio-fake.json"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def embedded(page: str) -> list[dict[str, Any]]:
    match = re.search(r'<script type="application/json" id="gptoss-results">(.*?)</script>',
                      page, re.S)
    assert match, "the source records are embedded"
    data: list[dict[str, Any]] = json.loads(match.group(1))
    return data


def test_single_run_report_shows_the_numbers_and_the_synthetic_banner() -> None:
    record = load(TINY)
    page = render([record])
    assert "Synthetic weights" in page and "not the released model" in page
    for test in record["tests"]:
        assert f"<th scope=\"row\">{test['name']}</th>" in page
        assert f"{test['mean_ts']:.2f} ± {test['stddev_ts']:.2f}" in page
    assert "<polyline" in page and "against context depth" in page  # the depth sweep chart
    assert "time to first token" in page
    assert "% of it" in page  # roofline
    assert "gptoss-doctor bench speed --synthetic tiny --tests pp64,tg16 --reps 3" in page
    assert "--depths 0,256,512" in page
    assert "No tool-use results in this file" in page
    assert embedded(page) == [record]


def test_a_real_model_has_no_banner_and_says_why_chat_was_skipped() -> None:
    page = render([load(SMOL)])
    assert "Synthetic weights" not in page
    assert "Not measured: llama model" in page


def test_nothing_in_the_page_can_reach_the_network() -> None:
    page = render([load(TWENTY_B), load(SMOL)])
    assert "default-src 'none'" in page
    body = page.split('<script type="application/json"')[0]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", body)
    assert "url(" not in body and "<script src" not in page and "<link" not in page


def test_model_output_and_every_string_is_escaped() -> None:
    record = load(SMOL)
    evil = '<script>alert("x")</script>'
    record["model"]["name"] = evil
    record["tests"][0]["reason"] = evil
    record["tests"][0]["status"] = "failed"
    page = render([record])
    assert evil not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert embedded(page)[0]["model"]["name"] == evil  # the data survives intact
    assert "\\u003cscript" in page


def _faster_copy(record: dict[str, Any], factor: float, gpu: str) -> dict[str, Any]:
    other = copy.deepcopy(record)
    other["machine"]["gpus"] = [dataclasses.asdict(GpuInfo(
        vendor="nvidia", name=gpu, source="nvml", vram_total_bytes=25757220864,
        vram_free_bytes=25756172288, driver_version="550.107.02"))]
    for test in other["tests"]:
        test["mean_ts"] *= factor
        test["samples_ts"] = [s * factor for s in test["samples_ts"]]
    return other


def test_comparison_shows_speedups_against_the_baseline() -> None:
    base = load(SMOL)
    gpu = _faster_copy(base, 2.0, "NVIDIA GeForce RTX 4090")
    page = render([base, gpu], baseline=0)
    assert "comparison of 2 runs" in page
    assert "(2.00×)" in page and "(1.00×)" in page
    assert "#2 NVIDIA GeForce RTX 4090 · llama.cpp" in page
    assert page.count("<svg") >= 2  # one bar chart per test
    assert "Not comparable" not in page


def test_runs_of_different_models_are_shown_apart_with_the_reason() -> None:
    page = render([load(SMOL), load(TWENTY_B)])
    assert "Not comparable with the first group (different model sha256)" in page


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "report", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_report_command_writes_one_file(tmp_path: Path) -> None:
    out = tmp_path / "cmp.html"
    done = _cli(str(SMOL), str(TWENTY_B), str(TINY), str(TOOLS), "-o", str(out),
                "--baseline", str(TINY))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "comparison of 4 runs" in page and "Preflight verdict on this machine" in page
    assert len(embedded(page)) == 4 and "Tool-use comparison" not in page  # one tools run


@pytest.mark.parametrize(("make", "message"), [
    pytest.param(lambda p: p.write_text("not json"), "not a JSON results file", id="not JSON"),
    pytest.param(lambda p: p.write_text('{"kind": "gptoss-doctor/doctor"}'),
                 "not a gptoss-doctor results file", id="the doctor's own JSON"),
    pytest.param(lambda p: p.write_text(json.dumps({"foo": 1})),
                 "not a gptoss-doctor results file", id="another tool's file"),
])
def test_bad_input_gives_one_line_exit_two_and_no_html(tmp_path: Path, make: Any,
                                                       message: str) -> None:
    bad = tmp_path / "bad.json"
    make(bad)
    out = tmp_path / "r.html"
    done = _cli(str(bad), "-o", str(out))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".r.html*"))


def test_no_files_and_a_foreign_baseline_are_usage_errors(tmp_path: Path) -> None:
    done = _cli("-o", str(tmp_path / "x.html"))
    assert done.returncode == 2 and "at least one results file" in done.stderr
    done = _cli(str(SMOL), "--baseline", str(TINY), "-o", str(tmp_path / "x.html"))
    assert done.returncode == 2 and "is not one of the results files" in done.stderr
    assert not (tmp_path / "x.html").exists()


def test_bars_never_put_incomparable_runs_side_by_side() -> None:
    page = render([load(SMOL), load(TWENTY_B)])
    assert "<svg role=\"img\" aria-labelledby=\"bar-" not in page
    assert "(1.00×)" not in page  # a group of one has no speedup to show


def test_tool_use_report_shows_scores_cases_and_the_command() -> None:
    record = load(TOOLS)
    page = render([record])
    assert "gpt-oss tool-use report" in page and "Synthetic weights" in page
    assert "prompts rendered and parsed by openai-harmony" in page
    for name, score in record["scores"]["by_category"].items():
        failures = ", ".join(f"{f} {n}" for f, n in score["failures"].items())
        assert f"<th scope=\"row\">{name}</th><td class=\"num\">{score['cases']}</td>" in page
        assert failures in page
    for attempt in record["attempts"]:
        assert f"<th scope=\"row\">{attempt['case']}</th>" in page
    assert ("gptoss-doctor bench tools --synthetic tiny --repeats 2 --reasoning low "
            "--max-tokens 32 --temperature 1.0 --top-p 1.0 --seed 0") in page
    assert "No tool-use results" not in page and "<h3>Speed</h3>" not in page
    assert embedded(page) == [record]


def test_model_output_in_tool_use_results_is_escaped() -> None:
    record = load(TOOLS)
    evil = '<script>alert("tool")</script>'
    record["attempts"][0]["turns"][0]["completion_text"] = evil
    record["attempts"][0]["grade"]["reason"] = evil
    page = render([record])
    assert evil not in page and "&lt;script&gt;alert(&#34;tool&#34;)&lt;/script&gt;" in page


def test_tool_use_and_speed_runs_are_compared_apart() -> None:
    tools, other = load(TOOLS), load(TOOLS)
    other["config"]["reasoning"] = "high"
    other["key_properties"]["reasoning"] = "high"
    page = render([load(TINY), tools, other])
    assert "<h2>Speed comparison</h2>" in page and "<h2>Tool-use comparison</h2>" in page
    assert "Not comparable with the first group (different reasoning)" in page
    same = render([tools, load(TOOLS)])
    assert "Not comparable" not in same and "<h2>Speed comparison</h2>" not in same


def test_an_endpoint_run_shows_the_server_the_sweep_and_no_key() -> None:
    record = load(ENDPOINT)
    page = render([record])
    assert "endpoint (fake-openai/1.0" in page and "LM Studio: gguf MXFP4, loaded" in page
    assert "API key from $FIXTURE_KEY (not stored)" in page and "sk-" not in page
    assert "<h3>Concurrency</h3>" in page
    for level in record["concurrency"]:
        assert f"<td class=\"num\">{level['ok']}/{level['requests']}</td>" in page
    assert "prompt tokens / TTFT" in page  # each test says how it was measured
    assert ("gptoss-doctor bench speed --endpoint " + record["endpoint"]["url"]
            + " --model openai/gpt-oss-20b --api-key-env FIXTURE_KEY") in page
    assert "--concurrency 1,2" in page and "--threads" not in page


def test_a_remote_endpoint_does_not_pass_the_client_off_as_the_server(tmp_path: Path) -> None:
    record = load(ENDPOINT)
    record["endpoint"] = {**record["endpoint"], "url": "https://gpu-box.example:8000/v1",
                          "host_class": "remote", "model_id": "<b>gpt-oss</b>"}
    page = render([record])
    assert "#1 gpu-box.example:8000 · endpoint" in page
    assert "its hardware is unknown. The machine below ran the client." in page
    assert "<b>gpt-oss</b>" not in page and "&lt;b&gt;gpt-oss&lt;/b&gt;" in page
    source = tmp_path / "remote.json"
    source.write_text(json.dumps(record))
    out = tmp_path / "remote.html"
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "report", str(source), "-o",
                           str(out)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Preflight verdict on this machine" not in out.read_text()


def test_the_page_shows_predicted_and_measured_generation_and_prompt_speed() -> None:
    record = load(TWENTY_B)
    record["roofline"].update(predicted_tokens_per_s=21.5, tg_ratio_to_predicted={"tg128": 0.77},
                              predicted_prompt_tokens_per_s=96.0,
                              pp_ratio_to_predicted={"pp512": 1.31})
    page = render([record])
    assert "The doctor predicted 21.5 t/s" in page and "tg128 measured 0.77× that" in page
    assert "For prompts it predicted 96.0 t/s" in page and "pp512 measured 1.31× that" in page
