"""The requests behind ``bench conformance``: what each check reads (``Probes``).

About 16 small requests to an OpenAI-compatible server: a reasoning answer (plain and
streamed), a call (plain and streamed), a tool result sent back, and the reasoning effort
through each API. A tiny synthetic model writes random tokens, so the requests *force* what
it writes where the server allows it (llama.cpp's extensions, ignored by servers without
them): a GBNF ``grammar`` with token-id literals (``<[200005]>`` is ``<|channel|>``) makes
the model write an exact analysis + final answer, and for calls a grammar writes the call
with its recipient in the role header; where a server refuses a custom grammar beside
``tools`` (llama.cpp), ``tool_choice: "required"`` (its own call grammar, which writes the
recipient in the role header too) plus a ``logit_bias`` on the call's tokens picks the exact
call. Where the server shows the prompt it rendered (llama.cpp's ``/apply-template``), the
tool-result and effort probes ask for it. Everything a server sends is hostile: bodies and
streams are bounded by ``bench.endpoint`` and kept evidence is cut to ``EVIDENCE_CHARS``
(docs/conformance.md, "Forcing a random-weight model").
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.bench import sse

CHANNEL, MESSAGE, END, START, CONSTRAIN, CALL, RETURN = (200005, 200008, 200007, 200006,
                                                         200003, 200012, 200002)
EFFORTS = ("low", "medium", "high")
EVIDENCE_CHARS = 160
TOOL_NAME = "get_weather"
ANALYSIS, FINAL = "Think about it.", "Hello there."
ARGUMENTS = {"location": "Paris"}
TOOL = {"type": "function", "function": {
    "name": TOOL_NAME, "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "enum": ["Paris"]}}, "required": ["location"]}}}
SYSTEM = "Think before you answer. Use the tools when they help."
REASONING_BACK = "The user wants the weather, so call the tool."
TOOL_OUTPUT = '{"temperature_c": 21, "sky": "clear"}'
# GBNF with token-id literals: exactly an analysis message, then the final answer.
REASON_GRAMMAR = (f'root ::= <[{CHANNEL}]> "analysis" <[{MESSAGE}]> "{ANALYSIS}" <[{END}]> '
                  f'<[{START}]> "assistant" <[{CHANNEL}]> "final" <[{MESSAGE}]> "{FINAL}"')
# Exactly a call with the recipient in the role header (the prompt ends "<|start|>assistant").
CALL_GRAMMAR = (f'root ::= " to=functions.{TOOL_NAME}" <[{CHANNEL}]> "commentary json" '
                f'<[{MESSAGE}]> "{{\\"location\\": \\"Paris\\"}}"')
# The call's own tokens (o200k): "comment" "ary" " json" <|message|> '{"' "location" '":'
# ' "' "Paris" '"}' <|call|>; the server's grammar writes " to=functions.get_weather".
CALL_BIAS = {str(t): 60 for t in (12606, 815, 5701, MESSAGE, 10848, 7693, 1243, 392, 72782,
                                  18583, CALL)}


@dataclass(frozen=True, slots=True)
class Answer:
    """One request's outcome: HTTP status (0: no answer), JSON body, or the error line."""

    status: int
    body: dict[str, Any] | None = None
    error: str | None = None


@dataclass(slots=True)
class Streamed:
    """A streamed chat completion, field by field: how many deltas carried each."""

    status: int = 0
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    call_deltas: int = 0
    finish: str | None = None
    error: str | None = None


def cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS] + "…"


async def _post(endpoint: ep.Endpoint, url: str, body: dict[str, Any]) -> Answer:
    async with ep.async_client(endpoint, 1) as client, ep.exchange(
            client, endpoint, url, body) as response:
        data, more = await ep.read_body(response, ep.MAX_BODY_BYTES)
    text = endpoint.redact(data.decode("utf-8", "replace"))
    if response.status_code >= 400 or more:
        return Answer(response.status_code, None, cut(sse.error_text(text)) if not more
                      else "an answer over the size limit")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return Answer(response.status_code, None, f"not JSON: {cut(text)!r}")
    return Answer(response.status_code, parsed if isinstance(parsed, dict) else None,
                  None if isinstance(parsed, dict) else "JSON that is not an object")


def post(endpoint: ep.Endpoint, url: str, body: dict[str, Any]) -> Answer:
    """POST ``body``; any answer, error statuses included (a refusal is evidence)."""
    try:
        return asyncio.run(_post(endpoint, url, body))
    except ep.EndpointError as exc:
        return Answer(0, None, cut(exc.message))


async def _stream(endpoint: ep.Endpoint, body: dict[str, Any]) -> Streamed:
    result = Streamed()
    url = f"{endpoint.base_url}/chat/completions"
    async with ep.async_client(endpoint, 1) as client, ep.exchange(
            client, endpoint, url, {**body, "stream": True}) as response:
        result.status = response.status_code
        if response.status_code >= 400:
            said, _ = await ep.read_body(response, ep.MAX_ERROR_BYTES)
            result.error = cut(sse.error_text(endpoint.redact(said.decode("utf-8", "replace"))))
            return result
        lines = sse.LineSplitter()
        try:
            async for data in response.aiter_bytes():
                for line in lines.feed(data):
                    _take(line, result)
            for line in lines.close():
                _take(line, result)
        except sse.EventStreamError as exc:  # kept with the status it came under
            result.error = cut(endpoint.redact(exc.message))
    return result


def _take(line: str, result: Streamed) -> None:
    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
        return
    chunk = sse.parse_event(line[5:].strip())
    content, reasoning, finish = sse.delta_text(chunk)
    if content:
        result.content.append(content)
    if reasoning:
        result.reasoning.append(reasoning)
    result.finish = finish or result.finish
    choices = chunk.get("choices")
    delta = choices[0].get("delta") if isinstance(choices, list) and choices \
        and isinstance(choices[0], dict) else None
    calls = delta.get("tool_calls") if isinstance(delta, dict) else None
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        result.call_deltas += 1
        index = call["index"] if isinstance(call.get("index"), int) else 0
        slot = result.calls.setdefault(index, {"name": "", "arguments": ""})
        function: dict[str, Any] = call["function"] if isinstance(call.get("function"),
                                                                   dict) else {}
        slot["name"] += str(function.get("name") or "")
        slot["arguments"] += str(function.get("arguments") or "")


def stream(endpoint: ep.Endpoint, body: dict[str, Any]) -> Streamed:
    try:
        return asyncio.run(_stream(endpoint, body))
    except (ep.EndpointError, sse.EventStreamError) as exc:
        return Streamed(error=cut(exc.message))


@dataclass(frozen=True, slots=True)
class Probes:
    """Every answer the checks read, in the order they were asked."""

    reason: Answer
    reason_stream: Streamed
    call: Answer
    call_stream: Streamed
    tool_result: Answer
    rendered_tool_result: Answer | None  # /apply-template, where the server has it
    effort: dict[str, dict[str, Answer]]  # api -> effort -> answer (rendered or plain)
    rendered: bool  # effort answers are rendered prompts (else plain completions)
    forced: bool = True  # the requests forced what the model wrote (False: --unforced)


def _chat(model: str, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": messages, "max_tokens": 64, "temperature": 0,
            **extra}


def _call_messages() -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What is the weather in Paris?"}]


def _tool_result_messages() -> list[dict[str, Any]]:
    return [*_call_messages(),
            {"role": "assistant", "content": "", "reasoning_content": REASONING_BACK,
             "tool_calls": [{"id": "call_1", "type": "function", "function": {
                 "name": TOOL_NAME, "arguments": json.dumps(ARGUMENTS)}}]},
            {"role": "tool", "tool_call_id": "call_1", "name": TOOL_NAME,
             "content": TOOL_OUTPUT}]


def run_probes(endpoint: ep.Endpoint, model: str,
               progress: Callable[[str], None] = lambda _: None, force: bool = True
               ) -> Probes:
    """Ask the server everything the checks need (about 16 small requests); ``force``
    False sends plain requests, for a real model on a server that would apply the logit
    bias but not the grammar (it would bend the model's own writing)."""
    base, root = endpoint.base_url, endpoint.root
    hello = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Say hello."}]
    forced: dict[str, Any] = {"grammar": REASON_GRAMMAR, "logit_bias": {str(RETURN): 60}} \
        if force else {}
    call: dict[str, Any] = {"tools": [TOOL], "tool_choice": "required",
                            "logit_bias": CALL_BIAS} if force else {"tools": [TOOL]}
    progress("reasoning")
    reason = post(endpoint, f"{base}/chat/completions", _chat(model, hello, **forced))
    reason_stream = stream(endpoint, _chat(model, hello, **forced))
    progress("tool call")
    grammar = {"grammar": CALL_GRAMMAR} if force else {}
    called = _forced_call(endpoint, _chat(model, _call_messages(), **call), grammar)
    call_stream = stream(endpoint, {**_chat(model, _call_messages(), **call), **grammar})
    if 400 <= call_stream.status < 500 and grammar:
        call_stream = stream(endpoint, _chat(model, _call_messages(), **call))
    progress("tool result")
    back = _forced_call(endpoint, _chat(model, _tool_result_messages(), **call), grammar)
    rendered_back = post(endpoint, f"{root}/apply-template",
                         {"messages": _tool_result_messages(), "tools": [TOOL]})
    rendered = rendered_back.status == 200 and isinstance(
        (rendered_back.body or {}).get("prompt"), str)
    progress("reasoning effort")
    effort: dict[str, dict[str, Answer]] = {"reasoning_effort": {}, "template_kwargs": {},
                                           "responses": {}}
    for level in EFFORTS:
        for api, extra in (("reasoning_effort", {"reasoning_effort": level}),
                           ("template_kwargs", {"chat_template_kwargs": {
                               "reasoning_effort": level}})):
            effort[api][level] = post(endpoint, f"{root}/apply-template",
                                      {"messages": hello, **extra}) if rendered else \
                post(endpoint, f"{base}/chat/completions",
                     _chat(model, hello, max_tokens=8, **extra))
        effort["responses"][level] = post(endpoint, f"{base}/responses", {
            "model": model, "input": "Say hello.", "instructions": SYSTEM,
            "max_output_tokens": 64, "reasoning": {"effort": level}, "store": False,
            **forced})
    return Probes(reason, reason_stream, called, call_stream, back,
                  rendered_back if rendered else None, effort, rendered, force)


def _forced_call(endpoint: ep.Endpoint, body: dict[str, Any], grammar: dict[str, Any]
                 ) -> Answer:
    """The call forced by ``CALL_GRAMMAR``; a server that refuses a grammar beside tools
    (llama.cpp) is asked again without it: its own call grammar writes the recipient in
    the role header, and ``CALL_BIAS`` picks the rest."""
    url = f"{endpoint.base_url}/chat/completions"
    answer = post(endpoint, url, {**body, **grammar})
    return post(endpoint, url, body) if 400 <= answer.status < 500 and grammar else answer


