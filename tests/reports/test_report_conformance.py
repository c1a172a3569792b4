"""The HTML report for conformance runs (a table per server, a comparison across servers)
and for runs of a server gptoss-doctor started itself (``endpoint.served``: what was
served and llama.cpp's memory breakdown beside the doctor's estimate).

The conformance records come from the command run against the scripted test server
(tests/openai_server.py); the ``served`` section is written here in the shape
``app.served.fit_comparison`` produces, with figures of the synthetic 20b shape.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest

from gptoss_doctor.bench import results
from gptoss_doctor.reports import html

from openai_server import ServerState, serve

GIB = 1024**3


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("conf") / "conformance.json"
    state = ServerState(script=[{"role": "assistant", "content": "Hello there.",
                                 "reasoning_content": "Think about it."}])
    with serve(state) as url:
        done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "conformance",
                               "--endpoint", url, "-o", str(out)], capture_output=True,
                              text=True, timeout=300, check=False)
    assert done.returncode in (0, 1), done.stderr
    return results.load(out)


def _served(record: dict[str, Any], disagree: bool) -> dict[str, Any]:
    served = copy.deepcopy(record)
    doctor = {"host": int(12.1 * GIB), "gpu": 0}
    served["endpoint"]["served"] = {
        "engine": "llama-server", "version": "2026.10.11549", "n_parallel": 2, "load_s": 3.5,
        "fit": {"llama_cpp": {"devices": [{"name": "Host", "self_bytes": int(12.4 * GIB),
                                           "model_bytes": int(12 * GIB),
                                           "context_bytes": int(0.3 * GIB),
                                           "compute_bytes": int(0.1 * GIB)}],
                              "host": int(12.4 * GIB), "gpu": 0, "notes": ["no changes needed"]},
                "doctor": doctor, "tolerance": 0.1,
                "disagreements": ["host: llama.cpp 12.40 GiB, the doctor 9.00 GiB"]
                if disagree else [], "estimate": None}}
    return served


def test_one_conformance_run_gets_its_table_and_command(record: dict[str, Any]) -> None:
    page = html.render([record])
    assert "server conformance report" in page
    assert "reasoning returned in its own field" in page
    assert f"gptoss-doctor bench conformance --endpoint {record['endpoint']['url']}" in page


def test_several_servers_are_compared_check_by_check(record: dict[str, Any]) -> None:
    other = copy.deepcopy(record)
    other["conformance"]["checks"][0]["status"] = "fail"
    page = html.render([record, _served(other, False)])
    assert "Server conformance comparison" in page
    rows = html.conformance_rows([html.Run("a", record), html.Run("b", other)])
    assert [v["status"] for v in rows[0]["verdicts"]] == [
        record["conformance"]["checks"][0]["status"], "fail"]
    assert "gptoss-doctor bench conformance --engine llama-server" in page


@pytest.mark.parametrize("disagree", [False, True])
def test_a_served_run_shows_what_was_served_and_both_memory_figures(
        record: dict[str, Any], disagree: bool) -> None:
    page = html.render([_served(record, disagree)])
    assert "llama-server 2026.10.11549, started by gptoss-doctor on loopback: 2 slots" in page
    assert "llama.cpp's own breakdown: host 12.40 GiB" in page
    assert "the doctor's estimate for the same settings: host 12.10 GiB" in page
    assert ("more than 10% apart" in page) is disagree
    assert ("(within 10%)" in page) is not disagree
