"""Missing-parameter cases must ask (bench/grade.py ``asks_for``; the whole loop is
checked on the crafted completions, tests/bench/test_grader_crafted.py)."""

from __future__ import annotations

from gptoss_doctor.bench import grade, tool_suite


def test_a_question_naming_the_missing_value_asks() -> None:
    words = ("city", "location", "where")
    assert grade.asks_for("Which city would you like the weather for?", words)
    assert grade.asks_for("WHERE are you？", words)  # full-width question mark, case-folded
    assert not grade.asks_for("The city is lovely.", words)  # no question
    assert not grade.asks_for("Anything else I can do?", words)  # a question, not for it
    assert not grade.asks_for("Do you like ferocity?", words)  # whole words only


def test_every_missing_parameter_case_says_what_to_ask_for() -> None:
    suite = tool_suite.load_suite()
    asking = [c for c in suite.cases if c.asks_for]
    assert len(asking) == 7 and all(c.category == "irrelevance" for c in asking)
    assert all(c.id.startswith("irrelevance-missing-") for c in asking)
