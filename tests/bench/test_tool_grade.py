"""The tool-use grader on hand-written harmony completions: every category and quirk."""

from __future__ import annotations

import pytest

from gptoss_doctor.bench import grade, harmony, tool_suite

SUITE = tool_suite.load_suite()
THINK = "<|channel|>analysis<|message|>The user wants this; use the tool.<|end|><|start|>assistant"


def case(case_id: str) -> tool_suite.Case:
    found = tool_suite.case_by_id(SUITE, case_id)
    assert found is not None
    return found


def call(name: str, args: str, *, channel: str = "commentary", close: str = "<|call|>") -> str:
    return f"<|channel|>{channel} to=functions.{name} <|constrain|>json<|message|>{args}{close}"


def final(text: str) -> str:
    return f"<|channel|>final<|message|>{text}<|return|>"


def transcript(*turns: str, end: str = "call") -> grade.Transcript:
    return grade.Transcript(tuple(tuple(harmony.encode(t)) for t in turns), end)


SINGLE = [
    pytest.param("simple-weather-paris", THINK + call("get_weather", '{"city": "Paris"}'),
                 None, (), id="a correct call after reasoning passes"),
    pytest.param("simple-weather-paris", call("get_weather", '{"city": "PARIS, France",'
                                              ' "unit": "celsius"}'),
                 None, (), id="documented alternatives match case-insensitively"),
    pytest.param("simple-weather-paris", THINK + final("It is probably mild."), "no_call", (),
                 id="answering without the tool is no call"),
    pytest.param("simple-weather-paris", "<|channel|>analysis<|message|>Thinking on and on",
                 "no_call", (), id="running out of tokens while reasoning is no call"),
    pytest.param("simple-weather-paris", call("get_time", '{"timezone": "Europe/Paris"}'),
                 "wrong_tool", (), id="calling another tool is the wrong tool"),
    pytest.param("simple-weather-paris", call("get_weather", "{'city': 'Paris'}"),
                 "invalid_json", (), id="single-quoted arguments are invalid JSON"),
    pytest.param("simple-weather-paris", call("get_weather", '{"town": "Paris"}'),
                 "schema_invalid_args", (), id="a missing required argument is schema-invalid"),
    pytest.param("simple-weather-paris", call("get_weather", '{"city": "Paris", "unit": "K"}'),
                 "schema_invalid_args", (), id="a value outside the enum is schema-invalid"),
    pytest.param("simple-weather-paris", call("get_weather", '["Paris"]'),
                 "schema_invalid_args", (), id="an array instead of an object is schema-invalid"),
    pytest.param("simple-weather-paris", call("get_weather", '{"city": "Lyon"}'),
                 "wrong_args", (), id="the wrong city is wrong args"),
    pytest.param("simple-weather-fahrenheit", call("get_weather", '{"city": "Phoenix"}'),
                 "wrong_args", (), id="leaving out an argument the request names is wrong args"),
    pytest.param("simple-currency", call("convert_currency", '{"amount": 250.0, '
                                         '"from_currency": "usd", "to_currency": "EUR"}'),
                 None, (), id="numbers compare by value and codes by letters"),
    pytest.param("simple-weather-paris", "hello world, no harmony here", "unparsable_harmony",
                 (), id="text without headers is unparsable harmony"),
    pytest.param("simple-weather-paris", "<|channel|><|start|><|end|>", "unparsable_harmony",
                 (), id="a broken header is unparsable harmony"),
    pytest.param("simple-weather-paris",
                 ' to=functions.get_weather<|channel|>commentary <|constrain|>json'
                 '<|message|>{"city": "Paris"}<|call|>',
                 None, (), id="the recipient in the role header is the format's own form"),
    pytest.param("simple-weather-paris", call("get_weather", '{"city": "Paris"}',
                                              channel="final"),
                 None, ("call_on_final",), id="a call on the final channel is a quirk"),
    pytest.param("simple-weather-paris",
                 '<|channel|>commentary to=get_weather <|constrain|>json'
                 '<|message|>{"city": "Paris"}<|call|>',
                 None, ("recipient_without_namespace",),
                 id="a recipient without the functions namespace is a quirk"),
    pytest.param("simple-weather-paris", call("get_weather", '{"city": "Paris"}',
                                              channel="analysis"),
                 None, ("call_on_analysis",), id="a call on the analysis channel is a quirk"),
    pytest.param("simple-weather-paris", call("get_weather", '{"city": "Paris"}', close=""),
                 None, ("missing_call_token",), id="a call without its call token is a quirk"),
    pytest.param("multiple-time-among-two", call("get_time", '{"timezone": "Australia/Sydney"}'),
                 None, (), id="choosing the right tool among two passes"),
    pytest.param("multiple-time-among-two", call("get_weather", '{"city": "Sydney"}'),
                 "wrong_tool", (), id="choosing the distractor is the wrong tool"),
]


@pytest.mark.parametrize(("case_id", "text", "failure", "quirks"), SINGLE)
def test_single_call_cases(case_id: str, text: str, failure: str | None,
                           quirks: tuple[str, ...]) -> None:
    result = grade.grade(case(case_id), transcript(text))
    assert (result.failure, result.quirks) == (failure, quirks), result.reason
    assert result.passed is (failure is None)
    assert result.strict_passed is (failure is None and not quirks)


PARIS = call("get_weather", '{"city": "Paris"}')
TOKYO = call("get_weather", '{"city": "Tokyo"}')
PARALLEL = [
    pytest.param((PARIS, TOKYO, final("Mild in both.")), None, id="both calls pass"),
    pytest.param((TOKYO, PARIS, final("Mild in both.")), None, id="order does not matter"),
    pytest.param((PARIS, final("Paris is mild.")), "missing_calls", id="one of two is missing"),
    pytest.param((PARIS, TOKYO, PARIS, final("x")), "extra_calls", id="a third call is extra"),
    pytest.param((PARIS, PARIS, final("x")), "wrong_args", id="the same city twice is wrong"),
    pytest.param((PARIS, call("get_time", '{"timezone": "Asia/Tokyo"}')), "wrong_tool",
                 id="a call to another tool is the wrong tool"),
    pytest.param((PARIS, call("get_weather", '{"city": Tokyo}')), "invalid_json",
                 id="one invalid JSON call fails the case"),
    pytest.param((final("I can't check."),), "no_call", id="no calls at all"),
]


@pytest.mark.parametrize(("turns", "failure"), PARALLEL)
def test_parallel_calls_match_in_any_order(turns: tuple[str, ...], failure: str | None) -> None:
    result = grade.grade(case("parallel-weather-two-cities"), transcript(*turns, end="final"))
    assert result.failure == failure, result.reason


IRRELEVANT = [
    pytest.param(THINK + final("Leaves drift and fall"), None, id="a plain answer passes"),
    pytest.param(call("get_weather", '{"city": "Autumn"}'), "called_when_irrelevant",
                 id="calling the offered tool fails"),
    pytest.param("<|channel|>analysis<|message|>Hmm", "no_answer",
                 id="stopping before any answer fails"),
]


@pytest.mark.parametrize(("text", "failure"), IRRELEVANT)
def test_irrelevance(text: str, failure: str | None) -> None:
    result = grade.grade(case("irrelevance-haiku"), transcript(text))
    assert result.failure == failure, result.reason


READ = call("read_file", '{"path": "greeting.txt"}')
WRITE = call("create_file", '{"path": "shout.txt", "content": "HELLO THERE"}')
ESCAPE = call("create_file", '{"path": "../shout.txt", "content": "HELLO THERE"}')
ACT = [
    pytest.param((READ, WRITE, final("Done.")), "final", None, 0, id="read then write passes"),
    pytest.param((READ, ESCAPE, WRITE, final("Done.")), "final", None, 1,
                 id="a refused escape is counted but the case can still pass"),
    pytest.param((READ, ESCAPE, final("Done.")), "final", "wrong_state", 1,
                 id="writing only outside the sandbox leaves the wrong state"),
    pytest.param((READ, WRITE), "turn_limit", "turn_limit", 0,
                 id="no final answer within the turn limit"),
    pytest.param((READ, WRITE, "<|channel|>analysis<|message|>and"), "timeout", "timeout", 0,
                 id="a loop that runs out of time"),
    pytest.param((READ, WRITE, "<|channel|>analysis<|message|>so"), "no_answer", "no_answer",
                 0, id="the right state without an answer is no answer"),
    pytest.param((final("I wrote it."),), "final", "no_call", 0,
                 id="claiming success without calling fails"),
    pytest.param((READ, "junk <|message|>"), "unparsable", "unparsable_harmony", 0,
                 id="an unparsable turn fails"),
]


@pytest.mark.parametrize(("turns", "end", "failure", "refusals"), ACT)
def test_act_cases_are_judged_on_the_replayed_state(turns: tuple[str, ...], end: str,
                                                    failure: str | None, refusals: int) -> None:
    result = grade.grade(case("act-read-and-copy"), transcript(*turns, end=end))
    assert (result.failure, result.sandbox_refusals) == (failure, refusals), result.reason


def test_act_final_answer_must_hold_the_computed_number() -> None:
    calc = call("calculate", '{"expression": "987 * 654 + 321"}')
    right = grade.grade(case("act-calculate-and-answer"),
                        transcript(calc, final("The result is 645,819."), end="final"))
    wrong = grade.grade(case("act-calculate-and-answer"),
                        transcript(calc, final("The result is 645,818."), end="final"))
    assert right.passed and not wrong.passed and wrong.failure == "wrong_state"


def test_scores_pass_at_k_and_pass_hat_k_by_hand() -> None:
    def attempt(case_id: str, category: str, passed: bool, failure: str | None = None,
                quirks: tuple[str, ...] = ()) -> grade.Scored:
        return grade.Scored(case_id, category, passed, passed and not quirks,
                            None if passed else failure, quirks, 2.0)

    attempts = [attempt("a", "simple", True), attempt("a", "simple", True, quirks=("q",)),
                attempt("b", "simple", True), attempt("b", "simple", False, "wrong_args"),
                attempt("c", "simple", False, "no_call"), attempt("c", "simple", False,
                                                                  "no_call"),
                attempt("d", "act", True), attempt("d", "act", True)]
    result = grade.scores(attempts)
    simple = result["by_category"]["simple"]
    assert simple["cases"] == 3 and simple["attempts"] == 6
    assert simple["pass_at_k"] == round(2 / 3, 4)  # a and b pass at least once
    assert simple["pass_hat_k"] == round(1 / 3, 4)  # only a passes every time
    assert simple["pass_rate"] == 0.5 and simple["strict_pass_rate"] == round(2 / 6, 4)
    assert simple["failures"] == {"no_call": 2, "wrong_args": 1}
    assert simple["quirks"] == {"q": 1}
    overall = result["overall"]
    assert (overall["cases"], overall["pass_at_k"], overall["pass_hat_k"]) == (4, 0.75, 0.5)
    assert overall["mean_latency_s"] == 2.0
