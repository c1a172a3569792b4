"""`bench speed|tools --endpoint` end to end against a local OpenAI-compatible test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.bench import results, tool_suite

from openai_server import ServerState, serve

KEY = "sk-endpoint-test-7f3a"


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", *args],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, **(env or {})})


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one error line (progress notes may precede it); never a traceback."""
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == lines[0]
    return lines[0]


def test_speed_with_a_key_at_two_levels(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    state = ServerState(api_key=KEY)
    with serve(state) as url:
        done = bench("speed", "--endpoint", url, "--api-key-env", "MY_KEY", "--tests",
                     "pp32,tg8", "--reps", "2", "--concurrency", "1,2", "-o", str(out),
                     env={"MY_KEY": KEY})
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    assert record["status"] == "complete" and record["config"]["engine"] == "endpoint"
    assert [(lv["streams"], lv["ok"]) for lv in record["concurrency"]] == [(1, 2), (2, 4)]
    assert [t["name"] for t in record["tests"]] == ["pp32", "tg8"]
    assert record["endpoint"]["api_key_env"] == "MY_KEY" and record["endpoint"]["api_key_sent"]
    assert record["key_properties"]["method"] == "endpoint"
    # 1 discovery + 2 native LM Studio probes + warm-up + 2 + 4 requests, all with the key
    assert state.authorizations == [f"Bearer {KEY}"] * len(state.authorizations)
    assert len(state.authorizations) == 10
    for text in (done.stdout, done.stderr, out.read_text()):
        assert KEY not in text


@pytest.mark.parametrize(("state", "args", "env", "expected", "code"), [
    pytest.param(ServerState(api_key=KEY), (), {}, "the server answered 401: it needs an API "
                 "key", 1, id="401 without a key"),
    pytest.param(ServerState(api_key=KEY), ("--api-key-env", "MY_KEY"), {"MY_KEY": "wrong"},
                 "the server answered 401: the API key was refused", 1, id="401 wrong key"),
    pytest.param(ServerState(), ("--model", "gpt-oss-120b"), {},
                 "the server does not serve 'gpt-oss-120b' (it serves: openai/gpt-oss-20b)",
                 1, id="a model the server does not serve"),
    pytest.param(ServerState(mode="error500"), (), {}, "the warm-up request failed: the "
                 "server answered 500: CUDA out of memory", 1, id="5xx at once"),
    pytest.param(ServerState(), ("--api-key-env", "UNSET_VAR"), {},
                 "--api-key-env UNSET_VAR: that environment variable is not set", 2,
                 id="a key variable that is not set"),
    pytest.param(ServerState(), ("--threads", "4"), {}, "--threads set the in-process engine",
                 2, id="an in-process option"),
    pytest.param(ServerState(), ("--depths", "0,4096"), {}, "--depths are for in-process",
                 2, id="depths"),
    pytest.param(ServerState(), ("--engine", "mlx"), {}, "--engine set the in-process engine",
                 2, id="an engine"),
])
def test_endpoint_errors_are_one_line_and_write_nothing(
        tmp_path: Path, state: ServerState, args: tuple[str, ...], env: dict[str, str],
        expected: str, code: int) -> None:
    out = tmp_path / "speed.json"
    with serve(state) as url:
        done = bench("speed", "--endpoint", url, "--tests", "pp16,tg4", "-o", str(out), *args,
                     env=env)
    assert done.returncode == code
    assert expected in one_line(done)
    assert "wrong" not in done.stderr
    assert not out.exists()


def test_connection_refused_is_one_line(tmp_path: Path) -> None:
    with serve(ServerState()) as url:
        pass
    done = bench("speed", "--endpoint", url, "-o", str(tmp_path / "x.json"))
    assert done.returncode == 1
    assert one_line(done) == (f"gptoss-doctor: error: cannot connect to {url}/models: "
                              "connection refused (is the server running, and is this its "
                              "address and port?)")


def test_requests_that_fail_midway_are_kept_and_marked(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    # warm-up and the first timed request succeed, then every stream drops
    with serve(ServerState(mode="drop", fail_after=2)) as url:
        done = bench("speed", "--endpoint", url, "--tests", "pp16,tg8", "--reps", "3",
                     "-o", str(out))
    assert done.returncode == 1
    assert "2 request(s) failed (kept and marked in the results)" in done.stderr
    record = results.load(out)
    assert record["status"] == "partial"
    level = record["concurrency"][0]
    assert (level["requests"], level["ok"]) == (3, 1)
    assert level["errors"] == {f"{record['endpoint']['url']}/chat/completions: the server "
                               "closed the connection mid-response": 2}
    assert record["tests"][1]["status"] == "ok" and "2 request(s) failed" in \
        record["tests"][1]["reason"]


def _call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def test_tools_graded_from_the_servers_tool_calls(tmp_path: Path) -> None:
    out = tmp_path / "tools.json"
    script = [
        # act-create-file: a call, then the answer after the tool result
        _call("create_file", {"path": "todo.txt", "content": "buy milk"}),
        {"role": "assistant", "content": "Created todo.txt.",
         "reasoning_content": "The file is written."},
        # act-file-in-folder: an escape attempt, refused by the sandbox
        _call("create_file", {"path": "../outside.txt", "content": "x"}),
    ]
    state = ServerState(script=script)
    with serve(state) as url:
        done = bench("tools", "--endpoint", url, "--category", "act", "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    by_case = {a["case"]: a for a in record["attempts"]}
    acts = [c.id for c in tool_suite.load_suite().cases if c.category == "act"]
    assert list(by_case) == acts  # every act case completed and was graded
    first = by_case["act-create-file"]
    assert first["grade"]["passed"] and first["end"] == "final"
    assert [t["parsed_by"] for t in first["turns"]] == ["server", "server"]
    assert not (tmp_path / "outside.txt").exists()
    assert by_case["act-file-in-folder"]["grade"]["sandbox_refusals"] == 1
    assert record["config"]["renderer"] == "server"
    assert record["key_properties"]["renderer"] == "server"
    # the tool result went back as a tool message answering the call's id
    follow_up = state.bodies[1]["messages"]
    assert follow_up[-2]["tool_calls"][0]["id"] == "call_1"
    assert follow_up[-1] == {"role": "tool", "tool_call_id": "call_1",
                             "content": json.dumps({"ok": True, "path": "todo.txt"})} \
        or follow_up[-1]["tool_call_id"] == "call_1"
    assert state.bodies[0]["tools"][0]["type"] == "function"
    assert state.bodies[0]["reasoning_effort"] == "low"
    # regrading the stored server turns reproduces every grade
    again = bench("tools", "--regrade", str(out))
    assert again.returncode == 0, again.stderr
    assert "every grade reproduced" in again.stderr


def test_tools_with_every_request_failing_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "tools.json"
    with serve(ServerState(mode="hang", hang_s=5)) as url:
        done = bench("tools", "--endpoint", url, "--category", "irrelevance", "--timeout",
                     "0.5", "-o", str(out))
    assert done.returncode == 1
    assert one_line(done).startswith("gptoss-doctor: error: no request was answered: ")
    assert "no answer within the attempt's 0.5 s" in one_line(done)
    assert not out.exists()


def test_tools_through_the_responses_api(tmp_path: Path) -> None:
    out = tmp_path / "tools.json"
    state = ServerState(responses=[
        [{"type": "reasoning", "content": [{"type": "reasoning_text", "text": "Write it."}]},
         {"type": "function_call", "call_id": "fc_1", "name": "create_file",
          "arguments": json.dumps({"path": "todo.txt", "content": "buy milk"})}],
        [{"type": "message", "role": "assistant",
          "content": [{"type": "output_text", "text": "Created todo.txt."}]}],
    ])
    with serve(state) as url:
        done = bench("tools", "--endpoint", url, "--api", "responses", "--category", "act",
                     "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    first = record["attempts"][0]
    assert first["case"] == "act-create-file" and first["grade"]["passed"], first["grade"]
    assert record["config"]["api"] == record["endpoint"]["api"] == "responses"
    assert record["key_properties"]["api"] == "responses"
    sent = state.bodies[1]
    assert sent["instructions"] and sent["tools"][0]["type"] == "function"
    assert sent["input"][-2] == {"type": "function_call", "call_id": "fc_1",
                                 "name": "create_file", "arguments": json.dumps(
                                     {"path": "todo.txt", "content": "buy milk"})}
    assert sent["input"][-1]["type"] == "function_call_output"
    assert sent["input"][-1]["call_id"] == "fc_1"


def test_a_server_without_the_responses_api_is_one_line(tmp_path: Path) -> None:
    with serve(ServerState()) as url:
        done = bench("tools", "--endpoint", url, "--api", "responses", "--category",
                     "irrelevance", "-o", str(tmp_path / "x.json"))
    assert done.returncode == 1
    line = one_line(done)
    assert "the server answered 404" in line and "try --api chat" in line

