"""Hand-written completions through the real loop: the grader agrees with a careful human.

The dataset is ``tests/fixtures/crafted/completions.json`` (``tests/crafted.py`` runs it
and prints the agreement figure); every rule behind an expected verdict is in
docs/tool-grading.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_doctor.bench import harmony, tool_run, tool_suite, vocab

from crafted import ScriptedTurns, entries, run

ENTRIES = entries()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["id"])
def test_the_grader_agrees_with_the_hand_verdict(entry: dict[str, Any]) -> None:
    outcome = run(entry)
    assert not outcome.false_pass, outcome
    assert outcome.agrees, outcome


def test_the_crafted_set_covers_every_kind_the_issue_lists() -> None:
    kinds = {e["kind"] for e in ENTRIES}
    assert {"standard", "role_header_recipient", "quirk_call_on_analysis",
            "quirk_call_on_final", "quirk_recipient_without_namespace",
            "quirk_missing_call_token", "call_end_then_answer", "second_call_same_turn",
            "forged_tool_reply", "tool_not_used", "semantic_variant", "answer_on_commentary",
            "wrong_args"} <= kinds
    cases = {e["case"] for e in ENTRIES}
    assert cases == {c.id for c in tool_suite.load_suite().cases}


def test_a_call_ended_by_return_is_fed_back_closed_by_call_alone() -> None:
    suite = tool_suite.load_suite()
    case = tool_suite.case_by_id(suite, "act-calculate-and-answer")
    assert case is not None
    call = ('<|channel|>commentary to=functions.calculate <|constrain|>json'
            '<|message|>{"expression": "987 * 654 + 321"}<|return|>')
    closed = tool_run.as_call(harmony.encode(call))
    assert closed[-1] == vocab.CALL_ID and vocab.RETURN_ID not in closed
    assert harmony.decode(closed).endswith('321"}<|call|>')
    engine = ScriptedTurns([call, "<|channel|>final<|message|>645819<|return|>"])
    attempt = tool_run.run_attempt(engine, suite, case, tool_run.RunSettings(), 0)
    assert attempt["grade"]["passed"] and attempt["grade"]["quirks"] == ["missing_call_token"]
