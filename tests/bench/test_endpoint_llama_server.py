"""`bench --endpoint` against llama-cpp-python's own OpenAI-compatible server on 127.0.0.1.

The server is the real one (``python -m llama_cpp.server``) serving SmolLM2-135M and the tiny
synthetic gpt-oss; it is started with ``--interrupt_requests False`` because by default a new
request cuts the stream in progress (the sweep then reports those requests as failed).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_doctor.bench import grade, results, synth, tool_suite
from gptoss_doctor.reports import html

from conftest import llama_cpp_python_server, quiet

# The server is llama-cpp-python's own: both marks, so `-m "not llama"` leaves it out too.
pytestmark = [pytest.mark.llama, pytest.mark.server]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_synthetic("tiny", tmp_path_factory.mktemp("m") / "tiny.gguf").path


def _serve(model: Path, log: Path) -> Iterator[str]:
    with llama_cpp_python_server(model, log) as url:
        yield url


@pytest.fixture(scope="module")
def tiny_server(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tiny, tmp_path_factory.mktemp("log") / "server.log")


@pytest.fixture(scope="module")
def smollm_server(smollm_gguf: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[str]:
    yield from _serve(smollm_gguf, tmp_path_factory.mktemp("log") / "server.log")


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", *args],
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.parametrize("server", ["smollm_server", "tiny_server"])
def test_speed_at_concurrency_one_and_four(tmp_path: Path, server: str,
                                           request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(server)
    out = tmp_path / "speed.json"
    done = bench("speed", "--endpoint", url, "--tests", "pp64,tg16", "--reps", "2",
                 "--concurrency", "1,4", "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    levels = record["concurrency"]
    assert [(lv["streams"], lv["requests"], lv["ok"]) for lv in levels] == [(1, 2, 2),
                                                                            (4, 8, 8)]
    # llama-cpp-python's server sends no usage in streams: the o200k tokenizer counted
    assert {s["token_source"] for lv in levels for s in lv["samples"]} == {"counted"}
    assert all(t["status"] == "ok" and t["mean_ts"] > 0 for t in record["tests"])
    assert record["endpoint"]["host_class"] == "local"
    # the served model id is the GGUF's path: its facts (and hash) are read from the file
    assert record["model"]["sha256"] is not None
    assert record["model"]["synthetic"] is (server == "tiny_server")
    # every stream's every repetition is there, and each level's figures agree with its
    # samples (no claim about speed: how four streams compare with one is a benchmark's)
    for level in levels:
        samples = level["samples"]
        assert sorted((s["stream"], s["rep"]) for s in samples) == [
            (stream, rep) for stream in range(level["streams"]) for rep in range(2)]
        assert level["generated_tokens"] == sum(s["completion_tokens"] for s in samples)
        assert all(0 < s["ttft_s"] <= s["e2e_s"] for s in samples)
        ttfts = [s["ttft_s"] for s in samples]
        assert min(ttfts) <= level["ttft_p50_s"] <= level["ttft_p95_s"] <= max(ttfts)


def test_tool_suite_end_to_end_then_the_report_beside_an_in_process_run(
        tmp_path: Path, tiny: Path, tiny_server: str) -> None:
    out = tmp_path / "tools.json"
    done = bench("tools", "--endpoint", tiny_server, "--max-tokens", "24", "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    cases = len(tool_suite.load_suite().cases)
    assert len(record["attempts"]) == cases  # every case completed and was graded
    # random weights: only "answer without calling" (irrelevance) can pass
    assert all(a["grade"]["failure"] in grade.FAILURES for a in record["attempts"]
               if a["category"] != "irrelevance")
    assert record["scores"]["overall"]["attempts"] == cases
    assert record["config"]["tool_parsing"] == {"server": sum(
        len(a["turns"]) for a in record["attempts"])}
    in_process = tmp_path / "in-process.json"
    done = bench("speed", "--model", str(tiny), "--tests", "pp64,tg16", "--reps", "2",
                 "--no-chat", "-o", str(in_process))
    assert done.returncode == 0, done.stderr
    over_http = tmp_path / "endpoint.json"
    done = bench("speed", "--endpoint", tiny_server, "--tests", "pp64,tg16", "--reps", "2",
                 "-o", str(over_http))
    assert done.returncode == 0, done.stderr
    records = [quiet(results.load(p)) for p in (in_process, over_http, out)]
    page = html.render(records)
    # same file, same tests: one table, with the differences labelled
    [(group, reason)] = html.groups([html.Run(html.label_for(r, i), r)
                                     for i, r in enumerate(records[:2])])
    assert len(group) == 2 and reason is None
    assert "Differences within this table — method: in-process, endpoint" in page
    assert "(over HTTP: pp from TTFT)" in page
    assert "tool calls parsed by server" in page


def test_its_lack_of_a_responses_api_is_one_line(tmp_path: Path, tiny_server: str) -> None:
    done = bench("tools", "--endpoint", tiny_server, "--api", "responses", "--category",
                 "irrelevance", "-o", str(tmp_path / "x.json"))
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "404" in errors[0] and "try --api chat" in errors[0]
    assert not (tmp_path / "x.json").exists()
