"""A server's answer as a parsed harmony turn, so one grader judges in-process and served runs.

Servers that parse harmony themselves (LM Studio, llama-server ``--jinja``, vLLM, Ollama)
return ``tool_calls``, ``content`` and the reasoning (``reasoning_content`` or
``reasoning``): these become the same messages openai-harmony would have parsed — analysis,
then the commentary calls, or the final answer — and all trailing calls of the turn are
answered (servers return parallel calls together). The Responses API's ``output`` items
(reasoning, function_call, message) become the same messages. A server that passes the
model's raw harmony text through in ``content`` is parsed by us with openai-harmony; which
path ran is recorded per turn (``parsed_by``). Harmony text whose special tokens the server
stripped cannot be parsed by anyone and is said so.

A server's answer is hostile input: ``normalize`` keeps at most one call more than
``grade.MAX_CALLS_PER_TURN`` and cuts every text just past its limit (so the grader still
sees the limit was exceeded, from what the results file holds, without storing a
300-megabyte answer), and turns lone surrogates, which no encoder can send back, into "?".
"""

from __future__ import annotations

import json
from typing import Any

from gptoss_doctor.bench import harmony
from gptoss_doctor.bench.grade import (
    MAX_ARGUMENT_BYTES,
    MAX_CALLS_PER_TURN,
    MAX_TURN_TEXT_BYTES,
    NAMESPACE,
    text_bytes,
)

SERVER = "server"
OURS = harmony.RENDERER  # "openai-harmony"
MARKERS = ("<|channel|>", "<|message|>", "<|start|>")
MALFORMED = "the server's answer is malformed (no output list, or a tool call without a name)"
ENDED = {"tool_calls": "<|call|>", "function_call": "<|call|>", "stop": "<|return|>"}
MAX_ID_BYTES = 256  # a call id is echoed back to the server; real ones are a few dozen bytes


def bounded(text: str, limit: int) -> str:
    """``text`` with lone surrogates as "?", cut to whole characters just past ``limit``
    UTF-8 bytes when it is longer (still over the limit, so the cut shows)."""
    data = text.encode("utf-8", "replace")
    # 4 bytes more: a character the cut splits is dropped, and what stays is > limit
    return (data[:limit + 4] if len(data) > limit else data).decode("utf-8", "ignore")


def normalize(message: Any) -> dict[str, Any]:
    """The parts of an assistant message we keep: content, reasoning, tool calls (bounded:
    see the module's docstring)."""
    if not isinstance(message, dict):
        return {"content": "", "reasoning": "", "tool_calls": [], "malformed": True}
    calls = message.get("tool_calls") or []
    kept: list[dict[str, Any]] = []
    malformed = not isinstance(calls, list)
    for index, call in enumerate(calls[:MAX_CALLS_PER_TURN + 1] if not malformed else []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            malformed = True
            continue
        arguments = function.get("arguments", "")
        # Ollama sends arguments as an object; the OpenAI format is a JSON string.
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        kept.append({"id": bounded(str(call.get("id") or f"call_{index}"), MAX_ID_BYTES),
                     "name": bounded(function["name"], MAX_ARGUMENT_BYTES),
                     "arguments": bounded(text, MAX_ARGUMENT_BYTES)})
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    return {"content": bounded(str(message.get("content") or ""), MAX_TURN_TEXT_BYTES),
            "reasoning": bounded(str(reasoning), MAX_TURN_TEXT_BYTES),
            "tool_calls": kept, "malformed": malformed}


def from_response(answer: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A Responses API answer (``output`` items) as the same normalized message and a
    Chat-Completions-style finish reason."""
    output = answer.get("output")
    if not isinstance(output, list):
        return {"content": "", "reasoning": "", "tool_calls": [], "malformed": True}, None
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in (i for i in output if isinstance(i, dict)):
        parts = [p for p in item.get("content") or [] if isinstance(p, dict)]
        if item.get("type") == "message":
            texts.extend(str(p.get("text", "")) for p in parts if p.get("type") == "output_text")
        elif item.get("type") == "reasoning":
            reasoning.extend(str(p.get("text", "")) for p in parts)
        elif item.get("type") == "function_call":
            calls.append({"id": item.get("call_id") or item.get("id"),
                          "function": {"name": item.get("name"),
                                       "arguments": item.get("arguments", "")}})
    incomplete = answer.get("status") == "incomplete"
    finish = "tool_calls" if calls else "length" if incomplete else "stop"
    return normalize({"content": "".join(texts), "reasoning": "".join(reasoning),
                      "tool_calls": calls}), finish


def parse(message: dict[str, Any], finish_reason: str | None
          ) -> tuple[harmony.ParsedCompletion, str]:
    """(the turn as parsed messages, who parsed it) for a normalized message."""
    content, calls = message["content"], message["tool_calls"]
    ended = "<|call|>" if calls else ENDED.get(finish_reason or "", "nothing")
    if message.get("malformed"):
        return harmony.ParsedCompletion((), MALFORMED, (),
                                        ended, parallel_calls=True), SERVER
    # Raw harmony over the text limit is kept as plain text, which the limit then catches.
    if not calls and any(marker in content for marker in MARKERS) \
            and text_bytes(content) <= MAX_TURN_TEXT_BYTES:
        return harmony.parse_completion(harmony.encode(content)), OURS
    if not calls and f"to={NAMESPACE}" in content:
        return harmony.ParsedCompletion(
            (), "the server passed harmony through without its special tokens, so its "
            "tool calls cannot be parsed", (), ended, parallel_calls=True), SERVER
    messages: list[harmony.ParsedMessage] = []
    if message["reasoning"]:
        messages.append(harmony.ParsedMessage("analysis", None, None, message["reasoning"]))
    if calls:
        if content.strip():  # a preamble before the calls
            messages.append(harmony.ParsedMessage("commentary", None, None, content))
        messages.extend(harmony.ParsedMessage("commentary", NAMESPACE + c["name"], "json",
                                              c["arguments"]) for c in calls)
    elif content:
        messages.append(harmony.ParsedMessage("final", None, None, content))
    error = None if messages else "no message"
    return harmony.ParsedCompletion(tuple(messages), error, (), ended,
                                    parallel_calls=True), SERVER


def shown_text(message: dict[str, Any]) -> str:
    """A readable rendering of the turn for reports (reasoning, content, calls)."""
    parts = [f"[reasoning] {message['reasoning']}"] if message["reasoning"] else []
    if message["content"]:
        parts.append(message["content"])
    parts.extend(f"[call] {c['name']}({c['arguments']})" for c in message["tool_calls"])
    return "\n".join(parts)
