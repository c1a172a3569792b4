"""`bench tools --category mcp` and `--mcp-config` end to end, the reference server over
streamable HTTP, and the mcp cases forced through a real engine (``tests/forced.py``).

Hostile configurations are refused before any model loads (one line, exit 2). The runs on
the tiny synthetic gpt-oss are also marked with the engine they use: ``bench tools`` on
llama.cpp's own server (``xllamacpp``: the in-process loop, turns sampled by the server),
the forced completions on llama.cpp's and MLX's decode loops.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gptoss_doctor.bench import mcp_client, results, synth, tool_run, tool_suite
from gptoss_doctor.bench.mcp_config import REFERENCE, ServerSpec
from gptoss_doctor.bench.mcp_suite import McpToolbox
from gptoss_doctor.bench.sandbox import MAX_WRITTEN_BYTES

from conftest import FIXTURES
from forced import Forced

pytestmark = pytest.mark.mcp

COMPLETIONS = json.loads((FIXTURES / "mcp" / "completions.json").read_text(encoding="utf-8"))
MISBEHAVING = FIXTURES / "mcp" / "misbehaving.py"


def tools(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "tools", *args],
                          capture_output=True, text=True, timeout=900, check=False)


def config(tmp_path: Path, servers: Any) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(servers if isinstance(servers, str) else json.dumps(servers),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize(("content", "says"), [
    pytest.param("{not json", "mcp.json", id="text that is not JSON"),
    pytest.param({"servers": {}}, "no \"mcpServers\" object", id="no mcpServers"),
    pytest.param({"mcpServers": {"a": {"args": ["x"]}}}, "needs either \"command\" or \"url\"",
                 id="a server without a command"),
    pytest.param({"mcpServers": {"a": {"command": "x", "url": "http://h/mcp"}}},
                 "needs either", id="a server with a command and a url"),
    pytest.param({"mcpServers": {"a": {"command": "x", "shell": True}}}, "unknown key 'shell'",
                 id="an unknown key"),
    pytest.param({"mcpServers": {"a": {"command": "x", "args": "--all"}}},
                 "\"args\" must be a list of strings", id="args given as one string"),
    pytest.param({"mcpServers": {"a": {"url": "file:///etc/passwd"}}}, "http:// or https://",
                 id="a url that is not http"),
    pytest.param({"mcpServers": {"a": {"url": "http://h/sse", "type": "sse"}}},
                 "transport 'sse' is not supported", id="an SSE-only server"),
    pytest.param({"mcpServers": {"a": {"command": "x", "disabled": True}}},
                 "no enabled MCP server", id="every server disabled"),
])
def test_a_hostile_configuration_is_one_line_before_any_model_loads(
        tmp_path: Path, content: Any, says: str) -> None:
    done = tools("--synthetic", "tiny", "--mcp-config", str(config(tmp_path, content)))
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and done.stderr.count("\n") <= 2, done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("gptoss-bench-*"))


def test_a_secret_in_a_configuration_is_never_shown(tmp_path: Path) -> None:
    hf = {"url": "http://h/mcp", "headers": {"Authorization": "Bearer s3cr3t-tok"}}
    path = config(tmp_path, {"mcpServers": {"hf": hf, "b": {"command": "x", "bogus": 1}}})
    done = tools("--synthetic", "tiny", "--mcp-config", str(path))
    assert done.returncode == 2 and "unknown key 'bogus'" in done.stderr
    assert "s3cr3t" not in done.stderr + done.stdout


@pytest.mark.parametrize(("args", "says"), [
    pytest.param(("--synthetic", "tiny", "--mcp-config"), ".lmstudio/mcp.json",
                 id="LM Studio's mcp.json when it is missing"),
    pytest.param(("--synthetic", "tiny", "--mcp-config", "x.json", "--category", "simple"),
                 "add --category mcp", id="a config without the mcp cases"),
    pytest.param(("--endpoint", "http://127.0.0.1:9/v1", "--category", "mcp"),
                 "in-process engine", id="the mcp cases over a server's own tool parsing"),
])
def test_usage_errors(args: tuple[str, ...], says: str) -> None:
    done = tools(*args)
    assert done.returncode == 2 and says in done.stderr, done.stderr


@pytest.fixture
def http_reference(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The reference server on streamable HTTP (a free loopback port), its root folder."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = tmp_path / "root"
    server = subprocess.Popen([sys.executable, "-m", "gptoss_doctor.bench.mcp_reference",
                               "--http", str(port), "--root", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", root
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_reference_server_over_streamable_http(http_reference: tuple[str, Path]) -> None:
    url, root = http_reference
    (root / "out").symlink_to(root.parent)  # a link that leads out of the sandbox
    with mcp_client.connect([ServerSpec("ref-http", "test", url=url)], 20.0) as live:
        assert {f.name for f in live.functions} == {"create_file", "read_file", "list_files",
                                                    "delete_file", "kv_set", "kv_get"}
        assert live.call("create_file", {"path": "a/b.txt", "content": "hé"}) == \
            {"written": "a/b.txt", "bytes": 3}
        assert (root / "a" / "b.txt").read_text(encoding="utf-8") == "hé"
        assert live.call("read_file", {"path": "a/b.txt"}) == {"content": "hé"}
        for path, why in [("../x.txt", "leaves the working folder"),
                          ("/etc/passwd", "not a relative path"),
                          ("out/x.txt", "symbolic link")]:
            assert why in live.call("create_file", {"path": path, "content": "x"})["error"]
        huge = live.call("create_file", {"path": "big.txt", "content": "x" * MAX_WRITTEN_BYTES})
        assert f"over {MAX_WRITTEN_BYTES} bytes" in huge["error"]
        assert live.call("kv_set", {"key": "k", "value": "v"}) == {"stored": True}
        assert live.call("kv_get", {"key": "k"}) == {"value": "v"}
        assert live.record()["calls_by_server"] == {"ref-http": 8}
    assert not (root.parent / "x.txt").exists() and not (root / "big.txt").exists()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_synthetic("tiny", tmp_path_factory.mktemp("m") / "tiny.gguf").path


@pytest.mark.xllamacpp
def test_the_mcp_category_on_the_tiny_model_then_regrade(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "tools.json"
    done = tools("--model", str(tiny), "--engine", "llama-server", "--category", "mcp",
                 "--max-tokens", "8", "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    jsonschema.validate(record, results.schema())
    mcp = tool_suite.select(tool_suite.load_suite(), ("mcp",))
    assert [a["case"] for a in record["attempts"]] == [c.id for c in mcp]
    assert set(record["scores"]["by_category"]) == {"mcp"}
    assert record["config"]["suite"]["mcp"]["servers"] == [
        {"name": REFERENCE, "transport": "stdio", "source": "reference"}]
    for attempt in record["attempts"]:  # random weights: failures, but each one ran
        assert attempt["end"] != "failed" and attempt["mcp"]["servers"] == [REFERENCE]
    regraded = tools("--regrade", str(out))
    assert regraded.returncode == 0 and "every grade reproduced" in regraded.stderr


@pytest.mark.xllamacpp
def test_a_configured_server_that_crashes_loses_no_run(tmp_path: Path, tiny: Path) -> None:
    path = config(tmp_path, {"mcpServers": {"flaky": {
        "command": sys.executable, "args": [str(MISBEHAVING), "crash-at-start"]}}})
    out = tmp_path / "tools.json"
    done = tools("--model", str(tiny), "--engine", "llama-server", "--mcp-config", str(path),
                 "--max-tokens", "4", "-o", str(out))
    assert done.returncode == 1, done.stderr  # failed attempts
    record = results.load(out)
    jsonschema.validate(record, results.schema())
    attempts = record["attempts"]
    assert len(attempts) == len(tool_suite.select(tool_suite.load_suite(), ("mcp",)))
    assert all(a["grade"]["failure"] == "engine_error" for a in attempts)
    lines = [line for line in done.stderr.splitlines() if "'flaky' did not start" in line]
    assert len(lines) >= len(attempts)  # one per attempt (and the summary's first error)
    assert record["config"]["suite"]["mcp"]["servers"][1] == {
        "name": "flaky", "transport": "stdio", "source": str(path)}


@pytest.fixture(scope="module")
def tiny_mlx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gptoss_doctor.bench import mlx_engine

    return Path(mlx_engine.write_synthetic(tmp_path_factory.mktemp("mlx") / "tiny").path)


def decode_engine(name: str, request: pytest.FixtureRequest) -> Any:
    """A real engine with a decode loop on the tiny synthetic gpt-oss."""
    if name == "llama.cpp":
        from gptoss_doctor.bench.llama_engine import LlamaEngine
        from gptoss_doctor.load_settings import LoadSettings

        return LlamaEngine(request.getfixturevalue("tiny"), LoadSettings(n_ctx=4096,
                                                                          n_threads=2))
    from gptoss_doctor.bench import mlx_engine

    return mlx_engine.MlxEngine(request.getfixturevalue("tiny_mlx"), n_ctx=4096)


@pytest.mark.parametrize("engine_name", [
    pytest.param("llama.cpp", marks=pytest.mark.llama, id="llama.cpp"),
    pytest.param("mlx", marks=pytest.mark.mlx, id="mlx")])
@pytest.mark.parametrize("entry", COMPLETIONS["passing"], ids=lambda e: e["case"])
def test_every_mcp_case_forced_through_a_real_engine_passes(
        entry: dict[str, Any], engine_name: str, request: pytest.FixtureRequest) -> None:
    suite = tool_suite.load_suite()
    case = tool_suite.case_by_id(suite, entry["case"])
    assert case is not None
    engine = decode_engine(engine_name, request)
    try:
        forced = Forced(engine, entry["turns"])
        attempt = tool_run.run_attempt(forced, suite, case, tool_run.RunSettings(
            max_tokens=128, sampling=tool_run.Sampling(temperature=0.0)), 0,
            toolbox=McpToolbox())
    finally:
        engine.close()
    assert attempt["end"] == "final" and attempt["grade"]["passed"], attempt["grade"]
    assert sum(attempt["mcp"]["calls_by_server"].values()) == len(entry["turns"]) - 1
    last = attempt["turns"][-1]  # one reset, then every turn only appended to the cache
    assert forced.positions == [last["prompt_tokens"] + len(last["completion_ids"]) - 1]
