"""The ``mcp`` category through the real loop, the real MCP SDK and the reference server.

Hand-written completions (``tests/fixtures/mcp/completions.json``) are fed turn by turn by
a scripted turn engine (``crafted.ScriptedTurns``), so the tool loop, the reference server
started per attempt over stdio, and the grade are the real ones. The misbehaving servers
are ``tests/fixtures/mcp/misbehaving.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.app.feedback import Silent
from gptoss_doctor.bench import grade, tool_run, tool_suite
from gptoss_doctor.bench.mcp_config import REFERENCE, ServerSpec
from gptoss_doctor.bench.mcp_suite import McpToolbox
from gptoss_doctor.bench.sandbox import fresh_sandbox

from conftest import FIXTURES
from crafted import ScriptedTurns

pytestmark = pytest.mark.mcp

SUITE = tool_suite.load_suite()
COMPLETIONS = json.loads((FIXTURES / "mcp" / "completions.json").read_text(encoding="utf-8"))
MISBEHAVING = FIXTURES / "mcp" / "misbehaving.py"
SETTINGS = tool_run.RunSettings(max_tokens=4096, sampling=tool_run.Sampling(temperature=0.0))


def case(case_id: str) -> tool_suite.Case:
    found = tool_suite.case_by_id(SUITE, case_id)
    assert found is not None, case_id
    return found


def misbehaving(mode: str) -> ServerSpec:
    return ServerSpec("flaky", "test", sys.executable, (str(MISBEHAVING), mode))


def attempt(case_id: str, turns: list[str], toolbox: McpToolbox) -> dict[str, Any]:
    return tool_run.run_attempt(ScriptedTurns(turns), SUITE, case(case_id), SETTINGS, 0,
                                toolbox=toolbox)


def test_the_mcp_category_has_eight_cases_that_run_only_when_named() -> None:
    mcp = tool_suite.select(SUITE, ("mcp",))
    assert len(mcp) >= 8 and {c.category for c in mcp} == {"mcp"}
    assert not any(c.category == "mcp" for c in tool_suite.select(SUITE, ()))
    assert {c.id for c in completions_cases()} == {c.id for c in mcp}


def completions_cases() -> list[tool_suite.Case]:
    return [case(entry["case"]) for entry in COMPLETIONS["passing"]]


@pytest.mark.parametrize("entry", COMPLETIONS["passing"], ids=lambda e: e["case"])
def test_every_mcp_case_passes_with_a_careful_completion(entry: dict[str, Any]) -> None:
    done = attempt(entry["case"], entry["turns"], McpToolbox())
    assert done["end"] == "final" and done["grade"]["passed"], done["grade"]
    calls = [t for t in done["turns"] if t["tool_result"] is not None]
    assert done["mcp"]["calls_by_server"] == {REFERENCE: len(calls)}
    assert set(done["mcp"]["functions"]) == {t.name for t in case(entry["case"]).tools}
    # The reference server answered each call as the in-process tools do (the replay
    # that grades the attempt relies on it).
    with fresh_sandbox(case(entry["case"]).setup) as sandbox:
        for turn in calls:
            parsed = grade.pending_calls(tool_run.harmony.parse_completion(
                turn["completion_ids"]))[0]
            assert turn["tool_result"] == grade.respond(case(entry["case"]), sandbox, parsed)


@pytest.mark.parametrize("entry", COMPLETIONS["failing"], ids=lambda e: e["id"])
def test_wrong_completions_fail_with_the_named_failure(entry: dict[str, Any]) -> None:
    done = attempt(entry["case"], entry["turns"], McpToolbox())
    assert not done["grade"]["passed"]
    assert done["grade"]["failure"] == entry["failure"], done["grade"]


def test_a_path_outside_the_sandbox_is_refused_by_the_server() -> None:
    entry = next(e for e in COMPLETIONS["failing"] if e["id"] == "escape-then-give-up")
    done = attempt(entry["case"], entry["turns"], McpToolbox())
    assert "refused" in done["turns"][0]["tool_result"]["error"]
    assert done["grade"]["sandbox_refusals"] == 1


def test_a_configured_server_adds_its_tools_and_its_calls_are_counted() -> None:
    turns = ['<|channel|>commentary to=functions.echo <|constrain|>json<|message|>'
             '{"text": "hi"}<|call|>',
             *next(e["turns"] for e in COMPLETIONS["passing"] if e["case"] == "mcp-kv-copy")]
    done = attempt("mcp-kv-copy", turns, McpToolbox([misbehaving("ok")]))
    assert done["grade"]["passed"], done["grade"]
    assert done["turns"][0]["tool_result"] == "hi"
    assert done["mcp"]["calls_by_server"] == {"flaky": 1, REFERENCE: 2}
    assert done["mcp"]["functions"]["echo"] == ["flaky", "echo"]


def test_a_clashing_tool_name_is_made_unique_and_routed_to_its_server() -> None:
    # the misbehaving server is named like a reference tool: its echo tool does not clash,
    # so name a second reference-like server to clash on kv_get instead
    clash = ServerSpec("other", "test", sys.executable,
                       ("-m", "gptoss_doctor.bench.mcp_reference"))
    turns = ['<|channel|>commentary to=functions.other__kv_set <|constrain|>json<|message|>'
             '{"key": "home_city", "value": "Lima"}<|call|>',
             *next(e["turns"] for e in COMPLETIONS["passing"] if e["case"] == "mcp-kv-copy")]
    done = attempt("mcp-kv-copy", turns, McpToolbox([clash]))
    assert done["mcp"]["functions"]["kv_set"] == [REFERENCE, "kv_set"]
    assert done["mcp"]["functions"]["other__kv_set"] == ["other", "kv_set"]
    assert done["mcp"]["calls_by_server"] == {"other": 1, REFERENCE: 2}
    assert done["grade"]["passed"], done["grade"]  # the other server's store is not graded


@pytest.mark.parametrize(("mode", "says"), [
    pytest.param("crash-at-start", "did not start", id="a server that crashes at start"),
    pytest.param("chatty-crash", "did not start",
                 id="a server that writes 8 MiB on stderr and crashes"),
    pytest.param("hang-at-start", "did not start", id="a server that never answers"),
    pytest.param("crash-mid-call", "failed on 'echo'", id="a server that dies mid-call"),
    pytest.param("hang-mid-call", "did not answer 'echo' within 2 s",
                 id="a server that hangs on a call"),
    pytest.param("malformed", "cannot read", id="a server that answers malformed results"),
])
def test_a_failing_server_fails_its_attempts_with_one_line_each_and_the_run_goes_on(
        mode: str, says: str) -> None:
    feedback = Silent()
    toolbox = McpToolbox([misbehaving(mode)], timeout_s=2.0, note=feedback.note)
    echo = '<|channel|>commentary to=functions.echo <|constrain|>json<|message|>' \
        '{"text": "hi"}<|call|>'
    scripts = {"mcp-kv-remember": [echo, *next(e["turns"] for e in COMPLETIONS["passing"]
                                               if e["case"] == "mcp-kv-remember")],
               "mcp-kv-copy": [echo, *next(e["turns"] for e in COMPLETIONS["passing"]
                                           if e["case"] == "mcp-kv-copy")]}
    cases = [case(c) for c in scripts]

    attempts, interrupted = tool_run.run_cases(
        lambda c, k: tool_run.run_attempt(ScriptedTurns(scripts[c.id]), SUITE, c, SETTINGS, k,
                                          toolbox=toolbox), cases, 1)
    assert not interrupted and [a["case"] for a in attempts] == list(scripts)
    assert len(feedback.notes) == 2  # one line per attempt
    for done, note in zip(attempts, feedback.notes, strict=True):
        assert done["end"] == "failed" and done["grade"]["failure"] == "engine_error"
        assert says in done["grade"]["reason"] and "'flaky'" in done["grade"]["reason"]
        assert note.startswith(done["case"] + ": ") and "\n" not in note
    if "crash" in mode:  # the last line it wrote (of its stderr, only a tail is kept)
        assert "its last words: misbehaving: " in attempts[0]["grade"]["reason"]


def test_without_a_toolbox_an_mcp_case_fails_with_its_reason() -> None:
    done = tool_run.run_attempt(ScriptedTurns([]), SUITE, case("mcp-write-note"), SETTINGS, 0)
    assert done["end"] == "failed" and "needs MCP servers" in done["grade"]["reason"]


def test_the_reference_server_runs_alone_from_the_command_line(tmp_path: Path) -> None:
    # its --setup file is hostile input too
    bad = tmp_path / "setup.json"
    bad.write_text('{"files": {"a": 1}}', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor.bench.mcp_reference",
                           "--setup", str(bad)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "'files' must map names to text" in done.stderr


INTERRUPTED_RUN = """
import sys
sys.path.insert(0, {tests!r})
from crafted import ScriptedTurns
from gptoss_doctor.bench import tool_run, tool_suite
from gptoss_doctor.bench.mcp_config import ServerSpec
from gptoss_doctor.bench.mcp_suite import McpToolbox
suite = tool_suite.load_suite()
case = tool_suite.case_by_id(suite, "mcp-kv-copy")
server = ServerSpec("flaky", "test", sys.executable, ({script!r}, "hang-mid-call"),
                    (("MISBEHAVING_PIDFILE", {pidfile!r}),))
echo = '<|channel|>commentary to=functions.echo <|constrain|>json<|message|>{{}}<|call|>'
attempts, interrupted = tool_run.run_cases(
    lambda c, k: tool_run.run_attempt(ScriptedTurns([echo]), suite, c,
                                      tool_run.RunSettings(), k,
                                      toolbox=McpToolbox([server], timeout_s=600)),
    [case, case], 1)
print("interrupted" if interrupted else "finished", len(attempts))
"""


def test_ctrl_c_stops_every_server_and_keeps_the_finished_attempts(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    code = INTERRUPTED_RUN.format(tests=str(FIXTURES.parent), script=str(MISBEHAVING),
                                  pidfile=str(pidfile))
    run = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # the hanging server has started (and then gets its call)
            if pidfile.exists() and pidfile.read_text(encoding="utf-8"):
                break
            time.sleep(0.1)
        server = int(pidfile.read_text(encoding="utf-8"))
        time.sleep(2.0)
        assert run.poll() is None  # still waiting on the hanging call
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert out.strip() == "interrupted 0", err
    for _ in range(100):  # the SDK ends the process (and its group) on the way out
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the hanging MCP server outlived the interrupted run")
