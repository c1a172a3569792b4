"""The suite's data files, the sampler, and the runner's loop against a scripted engine."""

from __future__ import annotations

from collections.abc import Sequence

import jsonschema
import numpy as np
import pytest

from gptoss_doctor.bench import endpoint_tools, grade, harmony, regrade, tool_run, tool_suite, vocab
from gptoss_doctor.errors import UsageError

SUITE = tool_suite.load_suite()


def test_the_suite_has_120_cases_and_15_in_every_category() -> None:
    assert len(SUITE.cases) >= 120
    counts = {c: sum(case.category == c for case in SUITE.cases) for c in tool_suite.CATEGORIES}
    assert all(n >= 15 for n in counts.values()), counts
    assert len({case.id for case in SUITE.cases}) == len(SUITE.cases)
    assert len(SUITE.sha256) == 64


@pytest.mark.parametrize("case", SUITE.cases + SUITE.on_request, ids=lambda c: c.id)
def test_every_case_is_consistent(case: tool_suite.Case) -> None:
    assert 1 <= len(case.tools) <= 10 and case.prompt  # 10: the many-tools cases
    if case.category == "irrelevance":
        assert not case.expected and case.turn_limit == 1
    elif case.category in ("act", "mcp"):
        assert case.expect and not case.expected and case.turn_limit > 1
        # mcp: the reference server's tools, which the replay runs in-process
        allowed = ("sandbox",) if case.category == "mcp" else ("sandbox", "calculator")
        assert all(t.executor in allowed for t in case.tools)
    else:
        assert case.expected
        assert (len(case.expected) > 1) is (case.category == "parallel")
    for expected in case.expected:
        tool = case.tool(expected.name)
        assert tool is not None, f"{expected.name} is not offered"
        # The first accepted value of every argument makes a call the schema accepts.
        args = {k: example(v[0]) for k, v in expected.args.items() if v[0] is not None}
        jsonschema.validate(args, tool.parameters)
        assert set(expected.args) <= set(tool.parameters["properties"])


def example(accepted: object) -> object:
    """A value an accepted value or rule (``grade._value_matches``) lets through."""
    if not isinstance(accepted, dict):
        return accepted
    if "place" in accepted:
        return accepted["place"][0]
    return "1 + 1" if "evaluates_to" in accepted else "any text"


def test_selecting_categories() -> None:
    chosen = tool_suite.select(SUITE, ("act", "simple"))
    assert {c.category for c in chosen} == {"act", "simple"}
    # mcp cases run only when named (they start MCP servers)
    assert {c.category for c in tool_suite.select(SUITE, ())} == set(tool_suite.CATEGORIES)
    assert {c.category for c in tool_suite.select(SUITE, ("mcp",))} == {"mcp"}
    with pytest.raises(UsageError, match="unknown category"):
        tool_suite.select(SUITE, ("bogus",))


def test_greedy_and_nucleus_sampling() -> None:
    rng = np.random.default_rng(0)
    logits = np.array([0.0, 3.0, 2.9, -5.0])
    assert tool_run.sample(logits, 0.0, 1.0, rng) == 1
    # top_p 0.5 keeps only the most likely token (its probability is ~0.51)
    assert {tool_run.sample(logits, 1.0, 0.5, rng) for _ in range(50)} == {1}
    drawn = [tool_run.sample(logits, 1.0, 1.0, rng) for _ in range(1000)]
    # softmax: p(1) = 0.511, p(2) = 0.462, p(0) = 0.025, p(3) = 0.00002
    assert 430 < drawn.count(1) < 590 and 390 < drawn.count(2) < 540
    assert drawn.count(3) <= 1


class ScriptedEngine:
    """An engine whose logits spell out scripted completions, one token at a time."""

    n_vocab = vocab.N_VOCAB

    def __init__(self, turns: Sequence[str], n_ctx: int = 8192) -> None:
        self.queue = [t for text in turns for t in harmony.encode(text)]
        self.n_ctx = n_ctx
        self.resets = 0
        self.decoded: list[list[int]] = []

    def reset(self) -> None:
        self.resets += 1

    def decode(self, tokens: Sequence[int]) -> None:
        self.decoded.append(list(tokens))

    def logits(self) -> np.ndarray:
        row = np.zeros(self.n_vocab, dtype=np.float32)
        row[self.queue.pop(0) if self.queue else 0] = 100.0
        return row


GREEDY = tool_run.RunSettings(max_tokens=200, sampling=tool_run.Sampling(temperature=0.0))


def call(name: str, args: str) -> str:
    return f"<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>{args}<|call|>"


def test_act_loop_runs_real_tools_and_feeds_results_back() -> None:
    case = tool_suite.case_by_id(SUITE, "act-read-and-copy")
    assert case is not None
    engine = ScriptedEngine([
        call("read_file", '{"path": "greeting.txt"}'),
        call("create_file", '{"path": "../x.txt", "content": "HELLO THERE"}'),
        call("create_file", '{"path": "shout.txt", "content": "HELLO THERE"}'),
        "<|channel|>final<|message|>Done.<|return|>"])
    attempt = tool_run.run_attempt(engine, SUITE, case, GREEDY, 0)
    assert attempt["end"] == "final" and len(attempt["turns"]) == 4
    assert attempt["grade"]["passed"] is True and attempt["grade"]["sandbox_refusals"] == 1
    assert attempt["live_sandbox_refusals"] == 1  # the replay saw what the live run saw
    assert attempt["turns"][0]["tool_result"] == {"content": "hello there"}
    assert "refused" in attempt["turns"][1]["tool_result"]["error"]
    assert attempt["turns"][0]["completion_ids"][-1] == vocab.CALL_ID
    assert attempt["turns"][0]["completion_text"].startswith("<|channel|>commentary")
    # Each later turn only appends the tool result: the cache is reset once per attempt.
    assert engine.resets == 1
    prompt_sizes = [t["prompt_tokens"] for t in attempt["turns"]]
    assert prompt_sizes == sorted(prompt_sizes) and len(set(prompt_sizes)) == 4
    second_prompt = engine.decoded[len(attempt["turns"][0]["completion_ids"])]
    assert second_prompt[0] == vocab.CALL_ID and len(second_prompt) < 40


def test_single_turn_case_stops_after_the_call() -> None:
    case = tool_suite.case_by_id(SUITE, "simple-time-tokyo")
    assert case is not None
    engine = ScriptedEngine([call("get_time", '{"timezone": "Asia/Tokyo"}'), "ignored"])
    attempt = tool_run.run_attempt(engine, SUITE, case, GREEDY, 0)
    assert (attempt["end"], attempt["grade"]["passed"]) == ("call", True)
    assert len(attempt["turns"]) == 1 and attempt["turns"][0]["tool_result"] is None


def test_parallel_case_answers_with_mock_results() -> None:
    case = tool_suite.case_by_id(SUITE, "parallel-stocks")
    assert case is not None
    engine = ScriptedEngine([call("get_stock_price", '{"symbol": "GOOGL"}'),
                             call("get_stock_price", '{"symbol": "MSFT"}'),
                             "<|channel|>final<|message|>Both fetched.<|return|>"])
    attempt = tool_run.run_attempt(engine, SUITE, case, GREEDY, 0)
    assert attempt["grade"]["passed"] is True and attempt["end"] == "final"
    # the mock answers about the symbol it was asked for
    assert attempt["turns"][0]["tool_result"] == {"symbol": "GOOGL", "price": 187.2,
                                                  "currency": "USD"}


def test_token_limit_timeout_and_full_context_end_the_attempt() -> None:
    case = tool_suite.case_by_id(SUITE, "act-create-file")
    assert case is not None
    rambling = "<|channel|>analysis<|message|>" + "word " * 300
    limited = tool_run.run_attempt(ScriptedEngine([rambling]), SUITE, case,
                                   tool_run.RunSettings(max_tokens=20), 0)
    assert limited["end"] == "no_answer" and limited["turns"][0]["stopped_on"] == "max_tokens"
    assert len(limited["turns"][0]["completion_ids"]) == 20
    ticks = iter(range(10_000))
    timed = tool_run.run_attempt(ScriptedEngine([rambling]), SUITE, case,
                                 tool_run.RunSettings(max_tokens=500, timeout_s=50), 0,
                                 clock=lambda: float(next(ticks)))
    assert timed["end"] == "timeout" and timed["grade"]["failure"] == "timeout"
    full = tool_run.run_attempt(ScriptedEngine([rambling], n_ctx=64), SUITE, case, GREEDY, 0)
    assert full["end"] == "context_full" and full["grade"]["failure"] in ("unparsable_harmony",
                                                                          "no_call")


def test_regrade_reproduces_and_reports_changes() -> None:
    cases = [c for c in SUITE.cases if c.id in ("simple-time-tokyo", "irrelevance-haiku")]
    engine = ScriptedEngine([call("get_time", '{"timezone": "Asia/Tokyo"}'),
                             call("get_weather", '{"city": "Oslo"}')])
    attempts, interrupted = tool_run.run_suite(engine, SUITE, cases, GREEDY)
    assert not interrupted and [a["grade"]["passed"] for a in attempts] == [True, False]
    scores = grade.scores(tool_run.scored(attempts))
    same = regrade.regrade(attempts, SUITE, scores)
    assert same.changes == [] and [a["grade"] for a in same.attempts] == [
        a["grade"] for a in attempts]
    tampered = [{**attempts[0], "grade": {**attempts[0]["grade"], "passed": False,
                                          "failure": "wrong_args"}}, attempts[1]]
    changes = regrade.regrade(tampered, SUITE, scores).changes
    assert changes == ["simple-time-tokyo #0: passed False -> True; failure 'wrong_args' -> None"]


class Interrupting(ScriptedEngine):
    """Ctrl-C arrives at the eighth sampled token: during the second attempt."""

    def __init__(self, turns: Sequence[str]) -> None:
        super().__init__(turns)
        self.sampled = 0

    def logits(self) -> np.ndarray:
        self.sampled += 1
        if self.sampled == 8:
            raise KeyboardInterrupt
        return super().logits()


def test_ctrl_c_keeps_the_finished_attempts() -> None:
    cases = [c for c in SUITE.cases if c.category == "irrelevance"][:3]
    engine = Interrupting(["<|channel|>final<|message|>Hi<|return|>"] * 3)
    attempts, interrupted = tool_run.run_suite(engine, SUITE, cases, GREEDY)
    assert interrupted is True
    # the first attempt (five tokens) finished and was graded; the second was cut off
    assert [(a["case"], a["grade"]["passed"]) for a in attempts] == [(cases[0].id, True)]


def test_earlier_turns_reach_the_prompt_and_the_server() -> None:
    case = tool_suite.case_by_id(SUITE, "simple-weather-from-history")
    assert case is not None and case.history[0][0] == "user"
    text = harmony.decode(harmony.tool_prompt(SUITE.instructions, [], case.prompt, "low",
                                              case.history))
    assert ("<|start|>user<|message|>I'm travelling to Lisbon next week.<|end|>"
            "<|start|>assistant<|channel|>final<|message|>Lisbon is lovely") in text
    assert text.endswith(f"<|start|>user<|message|>{case.prompt}<|end|><|start|>assistant")
    messages = endpoint_tools.ChatApi().start(SUITE, case)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    long = tool_suite.case_by_id(SUITE, "multiple-weather-long-history")
    assert long is not None and len(long.history) >= 40 and len(long.tools) == 10
