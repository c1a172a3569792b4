"""The ``llama-server`` engine: llama.cpp's own server in-process through xllamacpp (the
PyPI CPU wheel). The log parsers and the fit comparison are pure; the end-to-end runs are
marked ``xllamacpp``: speed over HTTP with a concurrency sweep, tools through raw
``/completion`` and through the server's own parsing, the smoke test, and the registry.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from gptoss_doctor.app.served import fit_comparison
from gptoss_doctor.bench import engines, results, synth, tool_run
from gptoss_doctor.bench.engine import serving
from gptoss_doctor.bench.records import FitDevice
from gptoss_doctor.bench.xllamacpp_engine import fit_summary, parse_fit_log
from gptoss_doctor.load_settings import LoadSettings

MIB = 1024 * 1024
# What llama.cpp logs while fitting and loading (one GPU row, the host, the repack buffer).
FIT_LOG = """\
0.03.012.198 I common_memory_breakdown_print: | memory breakdown [MiB] | total   free    \
self   model   context   compute    unaccounted |
0.03.012.199 I common_memory_breakdown_print: |   - CUDA0 (RTX 3060)   | 12288 = 900 + \
(11000 = 10000 +     600 +     400) +         388 |
0.03.012.199 I common_memory_breakdown_print: |   - Host               |                   \
1870 =  1860 +       0 +      10                |
0.03.012.200 I common_memory_breakdown_print: |   - CPU_REPACK         |                    \
0 =     0 +       0 +       0                |
0.03.325.409 I common_params_fit_impl: projected to use 17 MiB of host memory vs. 24105 MiB \
of total host memory
0.03.325.454 I common_params_fit_impl: will leave 24087 >= 1024 MiB of system memory, no \
changes needed
"""


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", *args],
                          capture_output=True, text=True, timeout=900, check=False)


def test_the_memory_breakdown_is_read_per_device() -> None:
    devices = parse_fit_log(FIT_LOG)
    assert devices == (FitDevice("CUDA0 (RTX 3060)", 11000 * MIB, 10000 * MIB, 600 * MIB,
                                 400 * MIB),
                       FitDevice("Host", 1870 * MIB, 1860 * MIB, 0, 10 * MIB),
                       FitDevice("CPU_REPACK", 0, 0, 0, 0))
    assert fit_summary(FIT_LOG) == (
        "projected to use 17 MiB of host memory vs. 24105 MiB of total host memory",
        "will leave 24087 >= 1024 MiB of system memory, no changes needed")


def test_llama_cpps_fit_sits_beside_the_doctors_estimate_and_disagreement_is_reported() -> None:
    settings = LoadSettings(n_ctx=4096, n_gpu_layers=0, n_threads=2)
    ours = fit_comparison("20b", settings, (), ())["doctor"]
    assert ours is not None and ours["gpu"] == 0 and ours["host"] > 10 * 1024**3
    close = (FitDevice("Host", ours["host"] + MIB, 0, 0, 0),)
    assert fit_comparison("20b", settings, close, ())["disagreements"] == []
    far = (FitDevice("Host", ours["host"] // 2, 0, 0, 0),)
    (line,) = fit_comparison("20b", settings, far, ())["disagreements"]
    assert line.startswith("host: llama.cpp")
    unknown = fit_comparison(None, settings, close, ())
    assert unknown["doctor"] is None and unknown["disagreements"] == []


def test_the_engine_is_registered_serves_and_is_never_picked_by_auto(tmp_path: Path) -> None:
    adapter = engines.adapter("llama-server")
    assert "llama-server" in engines.names() and serving(adapter) is not None
    assert serving(engines.adapter("llama.cpp")) is None
    assert engines.adapter("auto", tmp_path / "m.gguf").name == "llama.cpp"


def test_concurrency_stays_refused_for_an_engine_that_does_not_serve(tmp_path: Path) -> None:
    done = bench("speed", "--engine", "llama.cpp", "--model", str(tmp_path / "m.gguf"),
                 "--concurrency", "2")
    assert done.returncode == 2 and "--concurrency" in done.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_synthetic("tiny", tmp_path_factory.mktemp("m") / "tiny.gguf").path


@pytest.mark.xllamacpp
def test_speed_over_the_served_model_with_two_slots(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "speed.json"
    done = bench("speed", "--engine", "llama-server", "--model", str(tiny), "--tests",
                 "pp16,tg4", "--reps", "1", "--concurrency", "1,2", "--threads", "2",
                 "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    jsonschema.validate(record, results.schema())
    assert [level["streams"] for level in record["concurrency"]] == [1, 2]
    assert all(level["ok"] == level["requests"] for level in record["concurrency"])
    served = record["endpoint"]["served"]
    assert served["engine"] == "llama-server" and served["n_parallel"] == 2
    assert record["config"]["threads"] == 2 and record["config"]["flash_attn"] is True
    assert any(d["name"] == "Host" for d in served["fit"]["llama_cpp"]["devices"])
    page = tmp_path / "r.html"
    assert bench_report(out, page).returncode == 0 and page.stat().st_size > 0


def bench_report(source: Path, page: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "report", str(source),
                           "-o", str(page)], capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.mark.xllamacpp
def test_tools_through_raw_completions_rendered_with_harmony(tmp_path: Path, tiny: Path
                                                              ) -> None:
    out = tmp_path / "tools.json"
    done = bench("tools", "--engine", "llama-server", "--model", str(tiny), "--category",
                 "simple", "--max-tokens", "8", "--threads", "2", "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    jsonschema.validate(record, results.schema())
    assert record["config"]["engine"] == "llama-server"
    assert record["config"]["renderer"] == "openai-harmony"
    assert record["llama_cpp_fit"]["devices"]
    for attempt in record["attempts"]:  # random weights: graded failures, never errors
        assert attempt["end"] in tool_run.END_REASONS and attempt["end"] != "failed"
        assert all(1 <= len(t["completion_ids"]) <= 8 for t in attempt["turns"])


@pytest.mark.xllamacpp
def test_tools_through_the_servers_own_parsing_say_so(tmp_path: Path, tiny: Path) -> None:
    """Random weights give no harmony the server can parse: every request fails, in one
    line, instead of a traceback."""
    done = bench("tools", "--engine", "llama-server", "--model", str(tiny), "--api", "chat",
                 "--category", "irrelevance", "--max-tokens", "8", "-o",
                 str(tmp_path / "t.json"))
    assert done.returncode == 1 and "error:" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.xllamacpp
def test_smoke_test_and_speed_on_smollm2(tmp_path: Path, smollm_gguf: Path) -> None:
    adapter = engines.adapter("llama-server")
    smoke = adapter.smoke_test(smollm_gguf, LoadSettings(n_ctx=512, n_threads=2))
    assert smoke.generated_tokens > 0 and smoke.text
    assert any(d.name == "Host" and d.model_bytes > 0 for d in smoke.llama_cpp_memory)
    out = tmp_path / "speed.json"
    done = bench("speed", "--engine", "llama-server", "--model", str(smollm_gguf), "--tests",
                 "pp32,tg8", "--reps", "2", "--threads", "2", "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["model"]["architecture"] == "llama"
    assert record["endpoint"]["served"]["fit"]["doctor"] is None  # not a gpt-oss shape


@pytest.mark.xllamacpp
def test_serve_answers_on_the_chosen_port_until_ctrl_c(tiny: Path) -> None:
    import signal
    import socket
    import threading
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "gptoss_doctor", "serve", "--model",
                               str(tiny), "--port", str(port), "--ctx", "1024", "--threads",
                               "2"], stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stderr or ()), daemon=True)
    reader.start()
    models: object = None
    try:
        # the server answers before the command has said where: wait for both
        for _ in range(300):  # loading takes seconds; poll instead of assuming how many
            if models is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models") as reply:
                        models = json.loads(reply.read())
                except OSError:
                    pass
            if models is not None and any(f"127.0.0.1:{port}/v1" in ln for ln in list(lines)):
                break
            time.sleep(0.5)
        assert str(tiny) in json.dumps(models)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)
        reader.join(timeout=30)
        server.stderr.close()
    stderr = "".join(lines)
    assert server.returncode == 130 and f"127.0.0.1:{port}/v1" in stderr
