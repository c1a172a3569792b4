"""Multi-turn tool use with and without the reasoning sent back between calls
(``--reasoning-back/--no-reasoning-back``; OpenAI's guidance for gpt-oss keeps it).

In-process: a scripted turn engine writes hand-written harmony turns through the real loop
and records every prompt it is fed, so the next prompt can be read. Over HTTP: the
scripted test server (tests/openai_server.py) records every request body.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from gptoss_doctor.bench import (
    endpoint,
    endpoint_tools,
    grade,
    harmony,
    results,
    tool_run,
    tool_suite,
)

from openai_server import ServerState, serve

THOUGHT = "Paris first, then Tokyo."
TURNS = (
    f"<|channel|>analysis<|message|>{THOUGHT}<|end|><|start|>assistant<|channel|>commentary "
    'to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>',
    "<|channel|>analysis<|message|>Now Tokyo.<|end|><|start|>assistant to=functions.get_weather"
    '<|channel|>commentary json<|message|>{"city": "Tokyo"}<|call|>',
    "<|channel|>final<|message|>Paris is sunny and so is Tokyo.<|return|>")


class Recording:
    """A turn engine writing ``TURNS`` and keeping every prompt it was fed."""

    def __init__(self) -> None:
        self.prompts: list[list[int]] = []
        self.turns = [harmony.encode(t) for t in TURNS]
        self.tokens: list[int] = []

    def generation(self) -> Recording:
        return self

    def feed(self, prompt: Sequence[int]) -> bool:
        self.prompts.append(list(prompt))
        self.tokens = list(prompt)
        return True

    def generate(self, max_tokens: int, sampling: tool_run.Sampling, rng: np.random.Generator,
                 deadline: float, clock: Callable[[], float]) -> tuple[list[int], str]:
        tokens = self.turns.pop(0)
        return tokens, tool_run.STOP_NAMES[tokens[-1]]


def _case() -> tool_suite.Case:
    case = tool_suite.case_by_id(tool_suite.load_suite(), "parallel-weather-two-cities")
    assert case is not None and case.turn_limit >= 3
    return case


@pytest.mark.parametrize("back", [True, False])
def test_in_process_the_analysis_stays_in_the_prompt_only_when_asked(back: bool) -> None:
    engine = Recording()
    attempt = tool_run.run_attempt(engine, tool_run_suite(), _case(), tool_run.RunSettings(
        reasoning_back=back, sampling=tool_run.Sampling(temperature=0)), 0)
    assert attempt["end"] == "final" and attempt["grade"]["passed"], attempt["grade"]
    second, third = (harmony.decode(p) for p in engine.prompts[1:3])
    assert (THOUGHT in second) is back
    assert ("Now Tokyo." in third) is back
    # the calls themselves are always there, in the form the model wrote them
    assert "to=functions.get_weather <|constrain|>json" in second
    assert "assistant to=functions.get_weather<|channel|>commentary json" in third


def tool_run_suite() -> tool_suite.Suite:
    return tool_suite.load_suite()


def test_only_analysis_is_dropped() -> None:
    preamble = harmony.encode(
        "<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>"
        "commentary to=functions.get_weather <|constrain|>json<|message|>{}<|call|>")
    assert tool_run.without_analysis(preamble) == preamble  # shown to the user: kept
    bare = harmony.encode("<|channel|>commentary to=functions.get_weather <|constrain|>json"
                          "<|message|>{}<|call|>")
    assert tool_run.without_analysis(bare) == bare


def _server_turns() -> list[dict[str, Any]]:
    def call(city: str, index: int) -> dict[str, Any]:
        return {"role": "assistant", "content": "", "reasoning_content": f"Look up {city}.",
                "tool_calls": [{"id": f"c{index}", "type": "function", "function": {
                    "name": "get_weather", "arguments": f'{{"city": "{city}"}}'}}]}

    return [call("Paris", 1), call("Tokyo", 2),
            {"role": "assistant", "content": "Sunny in both."}]


@pytest.mark.parametrize("back", [True, False])
def test_over_http_the_reasoning_goes_back_as_reasoning_content_only_when_asked(
        back: bool) -> None:
    state = ServerState(script=_server_turns())
    with serve(state) as url:
        attempt = endpoint_tools.run_attempt(
            endpoint.Endpoint(url), state.model, tool_run_suite(), _case(),
            tool_run.RunSettings(reasoning_back=back), 0)
    assert attempt["grade"]["passed"], attempt["grade"]
    sent = [m for m in state.bodies[2]["messages"] if m["role"] == "assistant"]
    assert [m.get("reasoning_content") for m in sent] == (
        ["Look up Paris.", "Look up Tokyo."] if back else [None, None])
    assert [t.get("reasoning_sent_back") for t in attempt["turns"]] == [back, back, None]


def test_the_responses_api_sends_a_reasoning_item_back() -> None:
    shape = endpoint_tools.APIS["responses"]
    message = {"content": "", "reasoning": "Look up Paris.", "tool_calls": []}
    call = grade.Call("functions.get_weather", "get_weather", '{"city": "Paris"}')
    items = shape.replies(message, [call], ["c1"], [{"sky": "sun"}], True)
    assert items[0] == {"type": "reasoning", "summary": [], "content": [
        {"type": "reasoning_text", "text": "Look up Paris."}]}
    assert [i["type"] for i in shape.replies(message, [call], ["c1"], [{}], False)] == [
        "function_call", "function_call_output"]


def test_an_endpoint_run_without_reasoning_back_is_known_by_its_turns() -> None:
    said = {"content": "", "reasoning": "Look up Paris.", "tool_calls": []}
    record: dict[str, Any] = {"config": {}, "attempts": [{"turns": [
        {"message": said, "reasoning_sent_back": False}, {"message": said}]}]}
    assert results.reasoning_back(record) is False
    record["attempts"][0]["turns"][0]["reasoning_sent_back"] = True
    assert results.reasoning_back(record) is True
    # nothing to send: whatever the setting, nothing was dropped
    quiet = {**said, "reasoning": ""}
    assert results.reasoning_back({"config": {}, "attempts": [{"turns": [
        {"message": quiet, "reasoning_sent_back": False}]}]}) is True
    assert results.reasoning_back({"config": {"reasoning_back": False}, "attempts": []}) \
        is False
