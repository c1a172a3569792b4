"""The tool-use suite through a server's own tool calling: Chat Completions or Responses.

Same cases, same tools, same grader as in-process: the developer instructions go in as the
system message (Responses: ``instructions``), the case's tools as function ``tools``, and
each answer is parsed by ``chat_turns`` (the server's tool calls, or our openai-harmony
parse of raw harmony text). Calls are answered with ``tool`` messages (Responses:
``function_call_output`` items) — the mock result, or the real sandbox tools for ``act`` —
and the loop continues up to the case's turn limit and the attempt's deadline; the
reasoning of a turn that called goes back with its calls (``reasoning_content``; a
Responses ``reasoning`` item) unless ``RunSettings.reasoning_back`` is False, and each such
turn records ``reasoning_sent_back``. The server
renders the prompt with its own chat template, so these results say so
(``config.renderer`` = "server") and list it among their differences from in-process runs.
A server's answer is hostile input: ``chat_turns`` cuts it to ``grade``'s limits before it
is kept, a turn over a limit ends the attempt as ``over_limit`` with none of its calls run,
and calls are answered through ``tool_run.answer_calls`` (errors, deadline, write budget).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from gptoss_doctor.bench import chat_turns, grade
from gptoss_doctor.bench.endpoint import Endpoint, EndpointError, post_json
from gptoss_doctor.bench.tool_run import (
    RunSettings,
    answer_calls,
    attempt_record,
    run_cases,
    turn_outcome,
)
from gptoss_doctor.bench.tool_suite import Case, Suite

RENDERER = "server"


def earlier(case: Case) -> list[dict[str, Any]]:
    """The case's earlier conversation as messages (both APIs take this form)."""
    return [{"role": role, "content": text} for role, text in case.history]


class ChatApi:
    """Chat Completions: ``messages`` with ``tools``; calls answered by ``tool`` messages."""

    name, path = "chat.completions", "/chat/completions"

    def start(self, suite: Suite, case: Case) -> list[dict[str, Any]]:
        return [{"role": "system", "content": suite.instructions}, *earlier(case),
                {"role": "user", "content": case.prompt}]

    def body(self, model: str, conversation: list[dict[str, Any]], suite: Suite, case: Case,
             settings: RunSettings, seed: int) -> dict[str, Any]:
        sampling = settings.sampling
        return {"model": model, "messages": conversation, "tool_choice": "auto",
                "tools": [{"type": "function", "function": t.for_prompt()} for t in case.tools],
                "max_tokens": settings.max_tokens, "temperature": sampling.temperature,
                "top_p": sampling.top_p, "seed": seed, "reasoning_effort": settings.reasoning}

    def read(self, answer: dict[str, Any]) -> tuple[dict[str, Any], str | None,
                                                    dict[str, Any]]:
        choices = answer.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        choice = choice if isinstance(choice, dict) else {}
        usage = _usage(answer)
        return (chat_turns.normalize(choice.get("message")), choice.get("finish_reason"),
                {"prompt": usage.get("prompt_tokens"),
                 "completion": usage.get("completion_tokens")})

    def replies(self, message: dict[str, Any], calls: Sequence[grade.Call], ids: list[str],
                results: Sequence[Any], reasoning_back: bool = True) -> list[dict[str, Any]]:
        """The assistant message with its calls (and its reasoning, as
        ``reasoning_content``, unless ``reasoning_back`` is False), then one ``tool``
        message per call."""
        assistant = {"role": "assistant", "content": message["content"] or "",
                     "tool_calls": [{"id": i, "type": "function",
                                     "function": {"name": c.name, "arguments": c.arguments}}
                                    for i, c in zip(ids, calls, strict=True)]}
        if reasoning_back and message["reasoning"]:
            assistant["reasoning_content"] = message["reasoning"]
        return [assistant, *({"role": "tool", "tool_call_id": i,
                              "content": json.dumps(r, ensure_ascii=False)}
                             for i, r in zip(ids, results, strict=True))]


class ResponsesApi(ChatApi):
    """The Responses API: ``input`` items, function tools, ``function_call_output``."""

    name, path = "responses", "/responses"

    def start(self, suite: Suite, case: Case) -> list[dict[str, Any]]:
        return [*earlier(case), {"role": "user", "content": case.prompt}]

    def body(self, model: str, conversation: list[dict[str, Any]], suite: Suite, case: Case,
             settings: RunSettings, seed: int) -> dict[str, Any]:
        sampling = settings.sampling
        # No seed in this API; each attempt's sampling is the server's.
        return {"model": model, "instructions": suite.instructions, "input": conversation,
                "tools": [{"type": "function", **t.for_prompt()} for t in case.tools],
                "max_output_tokens": settings.max_tokens,
                "temperature": sampling.temperature, "top_p": sampling.top_p,
                "reasoning": {"effort": settings.reasoning}, "store": False}

    def read(self, answer: dict[str, Any]) -> tuple[dict[str, Any], str | None,
                                                    dict[str, Any]]:
        message, finish = chat_turns.from_response(answer)
        usage = _usage(answer)
        return message, finish, {"prompt": usage.get("input_tokens"),
                                 "completion": usage.get("output_tokens")}

    def replies(self, message: dict[str, Any], calls: Sequence[grade.Call], ids: list[str],
                results: Sequence[Any], reasoning_back: bool = True) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = [
            {"type": "reasoning", "summary": [],
             "content": [{"type": "reasoning_text", "text": message["reasoning"]}]}
        ] if reasoning_back and message["reasoning"] else []
        items.extend(
            {"type": "function_call", "call_id": i, "name": c.name, "arguments": c.arguments}
            for i, c in zip(ids, calls, strict=True))
        items.extend({"type": "function_call_output", "call_id": i,
                      "output": json.dumps(r, ensure_ascii=False)}
                     for i, r in zip(ids, results, strict=True))
        return items


def _usage(answer: dict[str, Any]) -> dict[str, Any]:
    usage = answer.get("usage")
    return usage if isinstance(usage, dict) else {}


APIS: dict[str, ChatApi] = {"chat": ChatApi(), "responses": ResponsesApi()}


def _turn(api: ChatApi, answer: dict[str, Any], seconds: float) -> dict[str, Any]:
    message, finish, usage = api.read(answer)
    parsed, parsed_by = chat_turns.parse(message, finish)
    return {"prompt_tokens": usage["prompt"], "completion_tokens": usage["completion"],
            "completion_ids": [], "completion_text": chat_turns.shown_text(message),
            "message": message, "finish_reason": finish, "parsed_by": parsed_by,
            "stopped_on": parsed.ended_with, "latency_s": round(seconds, 4),
            "tool_result": None}


def _call_ids(message: dict[str, Any], calls: Sequence[grade.Call], index: int) -> list[str]:
    ids = [str(c["id"]) for c in message["tool_calls"]]
    if len(ids) != len(calls):  # calls we parsed from raw harmony text have no ids
        ids = [f"call_{index}_{i}" for i in range(len(calls))]
    return ids


def run_attempt(endpoint: Endpoint, model: str, suite: Suite, case: Case,
                settings: RunSettings, attempt: int, *, api: str = "chat",
                clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """One attempt at ``case`` through the server; the record ``tool_run`` would write."""
    seed = settings.sampling.seed + attempt
    shape = APIS[api]
    messages = shape.start(suite, case)
    turns: list[dict[str, Any]] = []
    started = clock()
    deadline = started + settings.timeout_s
    end = "turn_limit"
    with grade.case_sandbox(case) as sandbox:
        for index in range(case.turn_limit):
            turn = _request(endpoint, shape, shape.body(model, messages, suite, case,
                                                        settings, seed),
                            deadline, settings.timeout_s, clock)
            if turn is None:
                end = "timeout"
                break
            turns.append(turn)
            if "error" in turn:
                end = turn["stopped_on"]
                break
            parsed, _ = chat_turns.parse(turn["message"], turn["finish_reason"])
            outcome = turn_outcome(case, parsed, index)
            if outcome is not None:
                end = outcome
                break
            calls = grade.pending_calls(parsed)
            results, stop = answer_calls(case, sandbox, calls, deadline, clock)
            turn["tool_result"] = results if len(calls) > 1 else results[0] if results else None
            if stop is not None:
                end = stop
                break
            turn["reasoning_sent_back"] = settings.reasoning_back \
                and bool(turn["message"]["reasoning"])
            messages.extend(shape.replies(turn["message"], calls,
                                          _call_ids(turn["message"], calls, index), results,
                                          settings.reasoning_back))
        live_refusals = len(sandbox.refusals) if sandbox else 0
    return attempt_record(case, attempt, seed, end, clock() - started, live_refusals, turns)


def _request(endpoint: Endpoint, shape: ChatApi, body: dict[str, Any], deadline: float,
             timeout_s: float, clock: Callable[[], float]) -> dict[str, Any] | None:
    """One request within the attempt's deadline: the turn, an error turn (its
    ``stopped_on`` is the attempt's end), or None when no time is left to ask."""
    remaining = deadline - clock()
    if remaining <= 0:
        return None
    turn_start = clock()
    try:
        answer = post_json(dataclasses.replace(
            endpoint, timeout_s=min(endpoint.timeout_s, remaining)), shape.path, body)
    except EndpointError as exc:
        timed_out = clock() >= deadline
        return {"prompt_tokens": None, "completion_ids": [], "completion_text": "",
                "stopped_on": "timeout" if timed_out else "failed",
                "latency_s": round(clock() - turn_start, 4), "tool_result": None,
                "error": (f"no answer within the attempt's {timeout_s:g} s" if timed_out
                          else exc.message)}
    return _turn(shape, answer, clock() - turn_start)


def run_suite(endpoint: Endpoint, model: str, suite: Suite, cases: Sequence[Case],
              settings: RunSettings, repeats: int = 1, *, api: str = "chat",
              progress: Callable[[Case, int], None] | None = None,
              clock: Callable[[], float] = time.perf_counter
              ) -> tuple[list[dict[str, Any]], bool]:
    """Every case ``repeats`` times; returns (attempts, interrupted). Ctrl-C keeps what ran."""
    return run_cases(lambda case, attempt: run_attempt(endpoint, model, suite, case, settings,
                                                       attempt, api=api, clock=clock),
                     cases, repeats, progress, seed=settings.sampling.seed, clock=clock)


def parsing_paths(attempts: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many turns each parser handled ("server", "openai-harmony")."""
    counts: dict[str, int] = {}
    for attempt in attempts:
        for turn in attempt["turns"]:
            if "parsed_by" in turn:
                counts[turn["parsed_by"]] = counts.get(turn["parsed_by"], 0) + 1
    return dict(sorted(counts.items()))
