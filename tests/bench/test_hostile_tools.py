"""Hostile tool calls and hostile servers: one bad call never loses the run.

Each attempt goes through the real loops (``tool_run`` with a scripted engine, and
``endpoint_tools`` against the test server) and the real grader: a tool that raises becomes
an error the model reads, an attempt that fails becomes its own failure category, a call
that runs past the attempt's deadline ends it, and limits on calls, argument bytes, stored
text and sandbox writes end an attempt as ``over_limit`` without executing or storing the
excess. Finished attempts are always kept, and ``--regrade`` reproduces every grade.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.bench import (
    endpoint_tools,
    grade,
    harmony,
    regrade,
    results,
    sandbox,
    tool_run,
    tool_suite,
)
from gptoss_doctor.bench.sandbox import Sandbox, ToolFailure, calculate

from openai_server import ServerState, serve

SUITE = tool_suite.load_suite()
GREEDY = tool_run.RunSettings(max_tokens=8000, sampling=tool_run.Sampling(temperature=0.0))
FINAL = "<|channel|>final<|message|>Done.<|return|>"


def regraded(attempts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The attempts graded again, and every difference ``--regrade`` would report."""
    done = regrade.regrade(attempts, SUITE, grade.scores(tool_run.scored(attempts)))
    return done.attempts, done.changes


class Scripted:
    """An engine whose logits spell out scripted completions, one token at a time; it
    raises ``fail_at`` (an exception) at the given sampled token, if set."""

    n_ctx = 16384

    def __init__(self, turns: Sequence[str], fail_at: int | None = None) -> None:
        self.queue = [t for text in turns for t in harmony.encode(text)]
        self.fail_at, self.sampled = fail_at, 0
        self.decoded: list[list[int]] = []

    def reset(self) -> None:
        return

    def decode(self, tokens: Sequence[int]) -> None:
        self.decoded.append(list(tokens))

    def logits(self) -> Any:
        self.sampled += 1
        if self.sampled == self.fail_at:
            raise RuntimeError("the engine fell over")
        row = np.zeros(201088, dtype=np.float32)
        row[self.queue.pop(0) if self.queue else 0] = 100.0
        return row


def case(case_id: str) -> tool_suite.Case:
    found = tool_suite.case_by_id(SUITE, case_id)
    assert found is not None
    return found


def call(name: str, args: dict[str, Any] | str) -> str:
    text = args if isinstance(args, str) else json.dumps(args)
    return f"<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>{text}<|call|>"


def stored(attempts: list[dict[str, Any]]) -> str:
    """The attempts as a results file holds them (this fails on what cannot be saved)."""
    return json.dumps(attempts, indent=2)


# --- 6. any exception inside a tool is the tool's error message, never a crash ---------

HOSTILE_CALLS = [
    pytest.param("act-create-file", call("create_file", '{"path": "a\\u0000b.txt", '
                                         '"content": "x"}'), id="a NUL byte in a path"),
    pytest.param("act-create-file", call("create_file", '{"path": "\\ud800.txt", '
                                         '"content": "x"}'), id="a lone surrogate in a path"),
    pytest.param("act-read-and-copy", call("read_file", '{"path": "a\\u0000"}'),
                 id="a NUL byte in a path to read"),
    pytest.param("act-create-file", call("create_file", '{"path": "ok.txt", '
                                         '"content": "\\udfff"}'),
                 id="a lone surrogate in a file's content"),
    pytest.param("act-calculate-and-answer", call("calculate", {"expression": "-" * 3000 + "1"}),
                 id="a calculator expression deep enough to exhaust the recursion limit"),
    pytest.param("act-calculate-and-answer",
                 call("calculate", {"expression": "(10**64)**64 / 3"}),
                 id="a calculator overflow turning a huge integer into a float"),
    pytest.param("act-calculate-and-answer",
                 call("calculate", {"expression": "((10**64)**64)**2"}),
                 id="a result of more than 4,300 digits, which JSON cannot write"),
    pytest.param("act-calculate-and-answer", call("calculate", {"expression": "(-8) ** 0.5"}),
                 id="a complex result, which JSON cannot write"),
]


@pytest.mark.parametrize(("case_id", "bad"), HOSTILE_CALLS)
def test_a_tool_that_raises_answers_the_model_with_an_error(case_id: str, bad: str) -> None:
    attempts, interrupted = tool_run.run_suite(Scripted([bad, FINAL]), SUITE, [case(case_id)],
                                               GREEDY)
    assert not interrupted and len(attempts) == 1
    attempt = attempts[0]
    assert attempt["end"] == "final", attempt["turns"][-1]
    assert set(attempt["turns"][0]["tool_result"]) == {"error"}
    assert attempt["grade"]["failure"] in grade.FAILURES
    assert attempt["grade"]["failure"] != "engine_error"  # graded, not a crash
    json.loads(stored(attempts))
    again, changes = regraded(attempts)
    assert changes == [] and again[0]["grade"] == attempt["grade"]


def test_a_surrogate_stored_by_one_call_and_read_by_the_next_is_fed_back_safely() -> None:
    turns = [call("kv_set", '{"key": "k", "value": "\\ud800"}'), call("kv_get", {"key": "k"}),
             FINAL]
    attempts, _ = tool_run.run_suite(Scripted(turns), SUITE, [case("act-calculate-and-store")],
                                     GREEDY)
    assert attempts[0]["end"] == "final"
    assert "error" in attempts[0]["turns"][0]["tool_result"]  # not valid text: not stored
    assert attempts[0]["turns"][1]["tool_result"] == {"value": None}


def test_an_attempt_that_fails_is_kept_with_its_category_and_the_run_goes_on() -> None:
    cases = [c for c in SUITE.cases if c.category == "irrelevance"][:3]
    # the engine fails on the second attempt's first token
    engine = Scripted([FINAL] * 2, fail_at=len(harmony.encode(FINAL)) + 1)
    attempts, interrupted = tool_run.run_suite(engine, SUITE, cases, GREEDY)
    assert not interrupted and [a["case"] for a in attempts] == [c.id for c in cases]
    assert [a["end"] for a in attempts] == ["final", "failed", "final"]
    failed = attempts[1]["grade"]
    assert failed["failure"] == "engine_error" and "engine fell over" in failed["reason"]
    assert attempts[0]["grade"]["passed"]
    again, changes = regraded(attempts)
    assert changes == [] and [a["grade"] for a in again] == [a["grade"] for a in attempts]


def _act_attempt(*texts: str, end: str = "final") -> dict[str, Any]:
    turns = [{"prompt_tokens": 0, "completion_ids": harmony.encode(t),
              "completion_text": t, "stopped_on": "<|call|>", "latency_s": 0.0,
              "tool_result": None} for t in texts]
    return {"case": "act-create-file", "category": "act", "attempt": 0, "seed": 0,
            "end": end, "latency_s": 0.0, "live_sandbox_refusals": 0, "turns": turns,
            "grade": {"passed": False, "strict_passed": False, "failure": "wrong_state",
                      "reason": "", "quirks": [], "calls": [], "sandbox_refusals": 0}}


def test_regrade_survives_hostile_and_broken_stored_attempts() -> None:
    nul = _act_attempt(call("create_file", '{"path": "a\\u0000b", "content": "x"}'), FINAL)
    broken = {**_act_attempt(FINAL), "turns": [{"no": "completion"}]}
    fine = _act_attempt(call("create_file", {"path": "notes.txt", "content": "x"}), FINAL)
    again, changes = regraded([nul, broken, fine])
    assert again[0]["grade"]["failure"] == "wrong_state"  # the NUL path wrote nothing
    assert again[1]["grade"]["failure"] == "engine_error"
    assert "could not be graded" in again[1]["grade"]["reason"]
    assert len(again) == 3 and any("engine_error" in c for c in changes)


# --- 9. the calculator's work is bounded before it runs; the deadline covers tools -----

@pytest.mark.parametrize("expression", [
    pytest.param("(((10**64)**64)**64)**64", id="a tower of powers that ran for 28 s"),
    pytest.param("((10**64)**64)**64", id="a power with a quarter-million-digit result"),
    pytest.param("2 ** 1025", id="an integer past 2**1024"),
    pytest.param("9 ** 9 ** 9", id="a right-associated tower"),
    pytest.param("1e308 * 10", id="a float overflow to infinity"),
    pytest.param("1e999", id="an infinite literal"),
    pytest.param("(-8) ** 0.5", id="a complex result"),
    pytest.param("10.0 ** 400", id="a float power out of range"),
    pytest.param("(2 ** 1000) ** 1.5", id="a huge integer raised to a float power"),
    pytest.param("1" + "+1" * 300, id="over 200 syntax-tree nodes"),
    pytest.param("(" * 40 + "1" + "+1)" * 40, id="nested over 32 levels"),
    pytest.param("1" * 501, id="over 500 characters"),
    pytest.param("-" * 3000 + "1", id="unary minus 3000 times"),
    pytest.param("1\x00", id="a NUL byte"),
])
def test_the_calculator_refuses_what_it_cannot_bound(expression: str) -> None:
    with pytest.raises(ToolFailure):
        calculate(expression)


@pytest.mark.parametrize(("expression", "value"), [
    pytest.param("2 ** 1000", 2 ** 1000, id="a 302-digit power is still exact"),
    pytest.param("(2 ** 512) * (2 ** 511)", 2 ** 1023, id="a product just under the limit"),
    pytest.param("((1 + 2) * (3 + 4)) ** 2", 441, id="nested parentheses"),
    pytest.param("2 ** -2", 0.25, id="a negative exponent"),
    pytest.param("-" * 20 + "1", 1, id="repeated signs within the depth limit"),
])
def test_the_calculator_still_does_arithmetic(expression: str, value: float) -> None:
    assert calculate(expression) == value


class Clock:
    """A fake clock; a slow tool moves it past the attempt's deadline."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def slow_tools(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """Every tool call takes 1000 s of the fake clock."""
    clock = Clock()
    real = grade.answer

    def slow(executor: str, mock: Any, box: Sandbox | None, name: str,
             args: dict[str, Any]) -> Any:
        clock.now += 1000.0
        return real(executor, mock, box, name, args)

    monkeypatch.setattr(grade, "answer", slow)
    yield clock


def test_a_tool_call_that_passes_the_deadline_ends_the_attempt(slow_tools: Clock) -> None:
    clock = slow_tools
    engine = Scripted([call("create_file", {"path": "notes.txt", "content": "x"}), FINAL])
    settings = tool_run.RunSettings(max_tokens=200, timeout_s=300,
                                    sampling=tool_run.Sampling(temperature=0.0))
    attempt = tool_run.run_attempt(engine, SUITE, case("act-create-file"), settings, 0,
                                   clock=clock)
    assert attempt["end"] == "timeout" and attempt["grade"]["failure"] == "timeout"
    assert len(attempt["turns"]) == 1  # no turn after the deadline
    assert attempt["turns"][0]["tool_result"]["written"] == "notes.txt"


def _chat_call(name: str, arguments: str, index: int = 0) -> dict[str, Any]:
    return {"id": f"c{index}", "type": "function",
            "function": {"name": name, "arguments": arguments}}


def _served(script: list[dict[str, Any]], case_ids: Sequence[str], timeout_s: float = 60.0,
            clock: Any = None) -> tuple[list[dict[str, Any]], ServerState]:
    state = ServerState(script=script)
    settings = tool_run.RunSettings(max_tokens=200, timeout_s=timeout_s)
    extra = {} if clock is None else {"clock": clock}
    with serve(state) as url:
        endpoint = ep.Endpoint(url, timeout_s=30.0)
        attempts, interrupted = endpoint_tools.run_suite(
            endpoint, state.model, SUITE, [case(c) for c in case_ids], settings, **extra)
    assert not interrupted
    return attempts, state


def test_the_endpoint_loop_answers_no_call_after_the_deadline(slow_tools: Clock) -> None:
    clock = slow_tools
    calls = [_chat_call("create_file", json.dumps({"path": f"f{i}.txt", "content": "x"}), i)
             for i in range(3)]
    attempts, state = _served([{"role": "assistant", "content": "", "tool_calls": calls}],
                              ["act-create-file"], timeout_s=300, clock=clock)
    assert attempts[0]["end"] == "timeout"
    assert len(attempts[0]["turns"][0]["tool_result"]) == 1  # the first call ran, no other
    assert len(state.bodies) == 1  # no request after the deadline


def test_the_endpoint_loop_feeds_tool_errors_back_and_keeps_going() -> None:
    nul = _chat_call("create_file", '{"path": "a\\u0000b.txt", "content": "x"}')
    script = [{"role": "assistant", "content": "\ud800", "tool_calls": [nul]},
              {"role": "assistant", "content": "Done."}]
    attempts, state = _served(script, ["act-create-file", "irrelevance-haiku"])
    assert [a["end"] for a in attempts] == ["final", "final"]
    tool_message = state.bodies[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "NUL" in json.loads(tool_message["content"])[
        "error"]
    json.loads(stored(attempts))


# --- 11. limits on calls, argument bytes, stored text and sandbox writes ----------------

def _fat_calls(n: int, content_bytes: int) -> list[dict[str, Any]]:
    return [_chat_call("create_file", json.dumps({"path": f"f{i}.txt",
                                                  "content": "x" * content_bytes}), i)
            for i in range(n)]


@pytest.mark.parametrize(("message", "reason"), [
    pytest.param({"content": "", "tool_calls": _fat_calls(300, 20_000)}, "tool calls",
                 id="300 calls of 20 kB in one reply"),
    pytest.param({"content": "", "tool_calls": _fat_calls(17, 10)}, "tool calls",
                 id="17 small calls in one reply"),
    pytest.param({"content": "", "tool_calls": _fat_calls(1, 20_000)}, "bytes of arguments",
                 id="one call with 20 kB of arguments"),
    pytest.param({"content": "x" * 300_000}, "bytes of text",
                 id="a 300 kB answer"),
])
def test_replies_over_a_limit_are_their_own_failure_and_are_not_stored_whole(
        message: dict[str, Any], reason: str) -> None:
    attempts, state = _served([{"role": "assistant", **message}], ["act-create-file"])
    attempt = attempts[0]
    assert attempt["end"] == "over_limit" and attempt["grade"]["failure"] == "over_limit"
    assert reason in attempt["grade"]["reason"]
    assert attempt["turns"][0]["tool_result"] is None  # nothing was executed
    assert len(state.bodies) == 1
    assert len(stored(attempts)) < 2 * 1024 * 1024
    again, changes = regraded(attempts)
    assert changes == [] and again[0]["grade"] == attempt["grade"]


def test_the_sandbox_write_budget_ends_the_attempt_over_limit() -> None:
    per_turn = {"role": "assistant", "content": "",
                "tool_calls": _fat_calls(16, 14 * 1024)}
    attempts, state = _served([per_turn] * 8, ["act-create-file"])
    attempt = attempts[0]
    assert (attempt["end"], attempt["grade"]["failure"]) == ("over_limit", "over_limit")
    written = 16 * 14 * 1024 * (len(state.bodies) - 1)
    assert written <= sandbox.MAX_WRITTEN_BYTES < written + 16 * 14 * 1024
    again, changes = regraded(attempts)
    assert changes == [] and again[0]["grade"] == attempt["grade"]


def test_one_in_process_call_with_too_large_arguments_is_over_limit() -> None:
    big = call("create_file", {"path": "big.txt", "content": "lorem ipsum " * 2000})
    attempts, _ = tool_run.run_suite(Scripted([big, FINAL]), SUITE, [case("act-create-file")],
                                     GREEDY)
    assert attempts[0]["end"] == "over_limit"
    assert attempts[0]["grade"]["failure"] == "over_limit"
    assert attempts[0]["turns"][0]["tool_result"] is None


def test_over_limit_is_a_category_in_the_grader_and_the_schema() -> None:
    assert {"over_limit", "engine_error"} <= set(grade.FAILURES)
    attempt_schema = results.schema()["$defs"]["attempt"]["properties"]
    assert attempt_schema["end"]["enum"] == list(tool_run.END_REASONS)
    assert set(attempt_schema["grade"]["properties"]["failure"]["enum"]) == {
        *grade.FAILURES, None}


def test_the_sandbox_bounds_what_one_attempt_writes_and_one_read_returns(tmp_path: Path) -> None:
    box = Sandbox(tmp_path / "work")
    chunk = "y" * (16 << 10)
    for _ in range(sandbox.MAX_WRITTEN_BYTES // len(chunk)):
        assert "error" not in box.call("create_file", {"path": "same.txt", "content": chunk})
    assert box.over_limit is None
    refused = box.call("kv_set", {"key": "k", "value": "v"})
    assert "write" in refused["error"] and box.over_limit is not None
    assert "k" not in box.kv
    (box.root / "big.txt").write_text("z" * 100_000)
    read = box.call("read_file", {"path": "big.txt"})
    assert read["truncated"] is True and len(read["content"]) == sandbox.MAX_READ_BYTES


def test_the_readme_lists_every_failure_category() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Tool use"):readme.index("## MLX")]
    assert all(failure in section for failure in grade.FAILURES)
