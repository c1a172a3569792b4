"""Load runs (``bench speed --endpoint`` with --rate, --sweep, replicas) against real servers:
the zero-work streaming server (tests/zero_server.py), llama.cpp's own server through
xllamacpp (``gptoss-doctor serve``) and llama-cpp-python's server, on the tiny synthetic
gpt-oss. No test asserts a duration: counts, structure and the schema only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from gptoss_doctor.bench import load, load_plan, results, synth
from gptoss_doctor.bench.endpoint import Endpoint
from gptoss_doctor.bench.endpoint_speed import Shape

from conftest import llama_cpp_python_server as llama_cpp_server
from zero_server import ZeroConfig, running


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "speed", *args],
                          capture_output=True, text=True, timeout=600, check=False)


def _idle(zero: object) -> None:
    """Wait until the zero server has finished every stream it started (a stream the client
    gave up on still runs to its end there), so that none is cut at shutdown."""
    for _ in range(200):
        if zero.state.running == 0:  # type: ignore[attr-defined]
            return
        time.sleep(0.05)


def _load(path: Path) -> dict:
    record = results.load(path)
    jsonschema.validate(record, results.schema())
    return record


def test_an_open_loop_level_sends_every_scheduled_request_and_keeps_warmup_out(
        tmp_path: Path) -> None:
    out = tmp_path / "rate.json"
    with running(ZeroConfig(tokens=8)) as (url, zero):
        done = bench("--endpoint", url, "--rate", "20,40", "--arrivals", "constant",
                     "--requests", "30", "--warmup", "5", "--tests", "pp16,tg8",
                     "--slo", "ttft_p99=30s,itl_mean=10s", "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert zero.state.requests == 1 + 2 * 35  # the warm-up request, then two levels
    record = _load(out)
    run = record["load"]
    assert run["mode"] == "rate" and run["arrivals"] == "constant" and run["requests"] == 30
    assert [lv["requested_rate"] for lv in run["levels"]] == [20.0, 40.0]
    for level in run["levels"]:
        total = level["total"]
        assert (level["sent"], level["warmup"], level["dropped"]) == (30, 5, 0)
        assert total["ok"] == 30 and total["output_tokens"] == 30 * 8
        assert total["ttft_s"]["n"] == 30 and total["itl_s"]["n"] == 30 * 7
        assert level["slo_met"] is True and total["goodput_rps"] is not None
        assert [s["index"] for s in level["samples"]] == list(range(5, 35))
        assert level["server"][0]["available"] is True
    assert "SLOs ttft_p99=30s, itl_mean=10s" in " ".join(done.stdout.split())


def test_replicas_share_the_load_round_robin_with_figures_each(tmp_path: Path) -> None:
    out = tmp_path / "replicas.json"
    with running(ZeroConfig(tokens=4)) as (a, zero_a), running(ZeroConfig(tokens=4)) as (
            b, zero_b):
        done = bench("--endpoint", a, "--endpoint", b, "--concurrency", "4", "--requests",
                     "20", "--tests", "pp8,tg4", "--json", "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert zero_a.state.requests == zero_b.state.requests == 1 + 10
    level = _load(out)["load"]["levels"][0]
    assert level["mode"] == "concurrency" and level["concurrency"] == 4
    assert [r["requests"] for r in level["replicas"]] == [10, 10]
    assert [r["url"] for r in level["replicas"]] == [f"{a}/v1", f"{b}/v1"]
    assert sum(r["output_tokens"] for r in level["replicas"]) == level["total"]["output_tokens"]


def test_the_cap_drops_and_counts_what_it_could_not_send() -> None:
    profile = load.Profile("rate", load_plan.Arrivals("constant"), 0, requests=12, cap=3)
    with running(ZeroConfig(tokens=20, delay_s=0.05)) as (url, zero):
        endpoint = Endpoint(f"{url}/v1", None, 30.0)
        ran = asyncio.run(load.run_level([endpoint], "zero", [Shape(8, 20)], profile,
                                         rate=200.0, metrics=False))
        _idle(zero)
    level = load.summarize(ran, profile, [endpoint], (), rate=200.0, streams=None)
    assert level.dropped > 0 and level.dropped + level.sent == 12
    assert level.max_outstanding <= 3 and zero.state.requests == level.sent


def test_a_request_past_its_deadline_is_counted_as_timed_out() -> None:
    profile = load.Profile("concurrency", load_plan.Arrivals("constant"), 0, requests=2)
    with running(ZeroConfig(tokens=30, delay_s=0.05)) as (url, zero):
        endpoint = Endpoint(f"{url}/v1", None, 0.5)
        ran = asyncio.run(load.run_level([endpoint], "zero", [Shape(8, 30)], profile,
                                         streams=2, metrics=False))
        _idle(zero)
    level = load.summarize(ran, profile, [endpoint], load_plan.parse_slos("e2e_p50=60s"),
                           rate=None, streams=2)
    assert level.total.timed_out == 2 and level.total.ok == 0 and level.slo_met is False
    assert level.slo_values == {"e2e_p50=60s": None}  # infinite: written as None


@pytest.mark.parametrize(("flags", "says"), [
    (("--slo", "ttft_p95=fast"), "--slo"),
    (("--rate", "0"), "--rate"),
    (("--sweep",), "--sweep needs --slo"),
    (("--rate", "1", "--concurrency", "2"), "give one"),
    (("--sweep", "--slo", "ttft_p95=1s", "--concurrency", "2"), "give one"),
    (("--duration", "5", "--requests", "3"), "not both"),
    (("--arrivals", "bursty", "--rate", "1"), "--arrivals"),
    (("--warmup", "soon", "--rate", "1"), "--warmup"),
    (("--workload", "nope", "--rate", "1"), "workload"),
])
def test_bad_load_flags_are_one_usage_line_before_any_request(
        flags: tuple[str, ...], says: str) -> None:
    with running(ZeroConfig(tokens=2)) as (url, zero):
        done = bench("--endpoint", url, *flags)
        assert zero.state.requests == 0
    assert done.returncode == 2 and says in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2 and "Traceback" not in done.stderr


def test_load_flags_need_an_endpoint_and_tools_takes_one() -> None:
    done = bench("--synthetic", "tiny", "--rate", "2")
    assert done.returncode == 2 and "--rate" in done.stderr
    tools = subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "tools",
                            "--endpoint", "http://127.0.0.1:9/v1", "--endpoint",
                            "http://127.0.0.1:8/v1"], capture_output=True, text=True,
                           timeout=120, check=False)
    assert tools.returncode == 2 and "--endpoint once" in tools.stderr


def test_the_closed_loop_sweep_without_load_flags_is_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "old.json"
    with running(ZeroConfig(tokens=4)) as (url, _zero):
        done = bench("--endpoint", url, "--concurrency", "1,2", "--reps", "2", "--tests",
                     "pp8,tg4", "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = _load(out)
    assert "load" not in record and [lv["streams"] for lv in record["concurrency"]] == [1, 2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_synthetic("tiny", tmp_path_factory.mktemp("m") / "tiny.gguf").path


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[str]) -> None:
    for _ in range(600):  # loading takes seconds; poll instead of assuming how many
        assert process.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(f"{url}/models") as reply:
                json.loads(reply.read())
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer")


SERVE = """
import sys, time
from pathlib import Path
from gptoss_doctor.bench import engines
from gptoss_doctor.bench.engine import serving
from gptoss_doctor.load_settings import LoadSettings
with serving(engines.adapter("llama-server")).serve(
        Path(sys.argv[1]), LoadSettings(n_ctx=2048, n_threads=2), 2, parse_chat=False) as s:
    print(s.url, flush=True)
    time.sleep(3600)
"""


@pytest.fixture(scope="module")
def llama_server(tiny: Path) -> Iterator[str]:
    """llama.cpp's server (xllamacpp, in a process of its own: it takes over file
    descriptor 2) with 2 slots and its /metrics, chat parsing off as for speed runs (random
    weights produce no harmony it could parse)."""
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(tiny)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://"), "llama-server did not start"
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)
        if server.stdout is not None:
            server.stdout.close()


@pytest.mark.xllamacpp
def test_open_loop_and_a_sweep_against_llama_cpps_server(tmp_path: Path, llama_server: str
                                                         ) -> None:
    out = tmp_path / "sweep.json"
    done = bench("--endpoint", llama_server, "--sweep", "--rate", "0.5", "--requests", "4",
                 "--slo", "e2e_p50=60s", "--tests", "pp16,tg8", "--timeout", "120",
                 "-o", str(out))
    assert done.returncode in (0, 1), done.stderr
    run = _load(out)["load"]
    sweep = run["sweep"]
    assert sweep["tried"] == [lv["requested_rate"] for lv in run["levels"]]
    assert sweep["tried"][:2] == [0.5, 1.0]
    ok = [lv for lv in run["levels"] if lv["total"]["ok"]]
    assert ok and all(lv["total"]["ttft_s"]["n"] == lv["total"]["ok"] for lv in ok)
    assert any(lv["total"]["itl_s"]["n"] > 0 for lv in ok)
    # llama.cpp's server runs with --metrics here: its own queue figures sit beside ours
    assert run["levels"][0]["server"][0]["available"] is True
    assert run["levels"][0]["server"][0]["server"] == "llama.cpp"


@pytest.fixture(scope="module")
def llama_cpp_python_server(tiny: Path, tmp_path_factory: pytest.TempPathFactory
                            ) -> Iterator[str]:
    log = tmp_path_factory.mktemp("log") / "server.log"
    with llama_cpp_server(tiny, log, n_ctx=2048) as url:
        yield url


@pytest.mark.llama
@pytest.mark.server
def test_open_loop_against_llama_cpp_pythons_server(tmp_path: Path,
                                                    llama_cpp_python_server: str) -> None:
    out = tmp_path / "rate.json"
    done = bench("--endpoint", llama_cpp_python_server, "--rate", "1", "--arrivals",
                 "poisson", "--requests", "4", "--warmup", "1", "--tests", "pp16,tg8",
                 "--workload", "prefix:32", "-o", str(out))
    assert done.returncode in (0, 1), done.stderr
    level = _load(out)["load"]["levels"][0]
    assert level["sent"] + level["dropped"] == 4 and level["warmup"] == 1
    assert level["total"]["ok"] + level["total"]["failed"] + level["total"]["timed_out"] == 4
    # llama-cpp-python's server has no /metrics: said, not an error
    assert level["server"][0]["available"] is False
    samples = [s for s in level["samples"] if s["error"] is None]
    assert samples, level["samples"]
    assert all(s["prompt_tokens"] > 32 for s in samples), samples


def test_a_shared_prefix_is_the_same_text_in_every_request_and_the_rest_is_fresh(
        tmp_path: Path) -> None:
    with running(ZeroConfig(tokens=2)) as (url, zero):
        done = bench("--endpoint", url, "--rate", "50", "--requests", "6", "--tests",
                     "pp8,tg2", "--workload", "prefix:40", "-o", str(tmp_path / "p.json"))
        assert done.returncode == 0, done.stderr
        prompts = [b["messages"][0]["content"] for b in zero.state.bodies[1:]]  # after warm-up
    words = [p.split(" ") for p in prompts]
    assert len(prompts) == 6 and all(len(w) == len(words[0]) for w in words)
    assert len({" ".join(w[:41]) for w in words}) == 1  # the 40 shared words (and a "")
    assert len({" ".join(w[41:]) for w in words}) == 6  # the 8 fresh ones differ


def test_a_chat_workload_draws_its_lengths_per_request(tmp_path: Path) -> None:
    with running(ZeroConfig(tokens=2)) as (url, zero):
        done = bench("--endpoint", url, "--rate", "50", "--requests", "12", "--workload",
                     "chat", "-o", str(tmp_path / "c.json"))
        assert done.returncode == 0, done.stderr
        asked = [b["max_tokens"] for b in zero.state.bodies[1:]]
    assert len(asked) == 12 and len(set(asked)) > 1


def test_the_load_seed_names_the_schedule(tmp_path: Path) -> None:
    runs = []
    for seed in ("0", "0", "1"):
        out = tmp_path / f"seed{len(runs)}.json"
        with running(ZeroConfig(tokens=1)) as (url, _zero):
            done = bench("--endpoint", url, "--rate", "100", "--requests", "8",
                         "--load-seed", seed, "-o", str(out))
        assert done.returncode == 0, done.stderr
        level = _load(out)["load"]["levels"][0]
        runs.append([s["scheduled_s"] for s in level["samples"]])
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_a_level_whose_requests_all_time_out_is_saved_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "late.json"
    with running(ZeroConfig(delay_s=0.05)) as (url, zero):  # max_tokens tokens, 50 ms apart
        done = bench("--endpoint", url, "--rate", "10", "--requests", "3", "--tests",
                     "pp8,tg30", "--timeout", "0.6", "--slo", "e2e_p50=1s", "-o", str(out))
        _idle(zero)
    assert done.returncode == 1 and "3 request(s) failed" in done.stderr
    level = _load(out)["load"]["levels"][0]
    assert level["total"]["timed_out"] == 3 and level["total"]["ok"] == 0
    assert level["slo_met"] is False and level["slo_values"] == {"e2e_p50=1s": None}
