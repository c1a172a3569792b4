"""Server conformance for gpt-oss: does an OpenAI-compatible server speak harmony correctly?

One verdict per check (``CHECKS``) from the answers ``bench.conformance_probes`` collects:
the reasoning comes back in its own field and streams as deltas, no harmony markup leaks into
content, reasoning or tool names, a call whose recipient is in the role header
(``<|start|>assistant to=functions.x<|channel|>commentary json<|message|>...<|call|>``) is
parsed into ``tool_calls`` (and streamed), tool results are accepted back, the reasoning of
a tool-call turn is kept, and reasoning effort reaches the prompt through each API
(``reasoning_effort``, ``chat_template_kwargs``, the Responses API's ``reasoning.effort``).
Each verdict is "pass", "fail" or "not_checked", with the method that produced it and the
evidence. A server that did not follow the forcing gets "not_checked" for what the model
then did not write, never a pass. Rendered-prompt checks show the model file's own chat
template at work (docs/conformance.md says which file was used).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gptoss_doctor.bench.conformance_probes import (
    ANALYSIS,
    EFFORTS,
    FINAL,
    REASONING_BACK,
    TOOL_NAME,
    Answer,
    Probes,
    Streamed,
    cut,
)

MARKUP = ("<|channel|>", "<|message|>", "<|start|>", "<|end|>", "<|call|>", "<|return|>",
          "<|constrain|>", "assistant<|channel|>", "to=functions.")
STATUSES = ("pass", "fail", "not_checked")
CHECKS: dict[str, str] = {
    "reasoning_field": "reasoning returned in its own field, not in content",
    "reasoning_streamed": "reasoning streamed as deltas of its own field",
    "no_markup": "no harmony markup in content or reasoning",
    "header_call_parsed": "a call with the recipient in the role header parsed into "
                          "tool_calls",
    "call_streamed": "the call streamed as tool_calls deltas",
    "tool_names_clean": "tool names exactly as declared (no markup, no functions. prefix)",
    "tool_result_accepted": "a tool result sent back is accepted and answered",
    "reasoning_sent_back": "the reasoning of a tool-call turn kept in the next prompt",
    "effort_reasoning_effort": "effort honoured: reasoning_effort (chat)",
    "effort_template_kwargs": "effort honoured: chat_template_kwargs.reasoning_effort",
    "effort_responses": "effort honoured: Responses reasoning.effort",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    check: str
    status: str  # STATUSES
    method: str
    evidence: str

    def as_json(self) -> dict[str, str]:
        return {"check": self.check, "title": CHECKS[self.check], "status": self.status,
                "method": self.method, "evidence": self.evidence}


def message_of(answer: Answer) -> dict[str, Any]:
    choices = (answer.body or {}).get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    return message if isinstance(message, dict) else {}


def reasoning_of(message: dict[str, Any]) -> str:
    value = message.get("reasoning_content") or message.get("reasoning") or ""
    return value if isinstance(value, str) else json.dumps(value)


def content_of(message: dict[str, Any]) -> str:
    value = message.get("content") or ""
    return value if isinstance(value, str) else json.dumps(value)


def calls_of(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, arguments) of each well-formed tool call."""
    calls = message.get("tool_calls")
    found = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            arguments = function.get("arguments")
            found.append((function["name"], arguments if isinstance(arguments, str)
                          else json.dumps(arguments)))
    return found


def leak(text: str) -> str | None:
    """The first piece of harmony markup in ``text``, with some context."""
    at = min((i for m in MARKUP if (i := text.find(m)) >= 0), default=-1)
    return None if at < 0 else cut(text[max(0, at - 20):at + 60])


def _failed(answer: Answer) -> str:
    return f"HTTP {answer.status}: {answer.error}" if answer.status else str(answer.error)


def _forced(text: str) -> str:
    return "forced (grammar)" if ANALYSIS in text or FINAL in text else "model output"


def _reasoning_field(answer: Answer) -> Verdict:
    if answer.body is None:
        return Verdict("reasoning_field", "not_checked", "model output", _failed(answer))
    message = message_of(answer)
    reasoning, content = reasoning_of(message), content_of(message)
    method = _forced(reasoning + content)
    shown = f"reasoning {reasoning!r}, content {content!r}"
    inside = ANALYSIS in content or leak(content) is not None or (
        reasoning and reasoning.strip() in content)
    if inside:
        return Verdict("reasoning_field", "fail", method, cut(f"reasoning inside content: {shown}"))
    if reasoning:
        return Verdict("reasoning_field", "pass", method, cut(shown))
    return Verdict("reasoning_field", "not_checked", method,
                   cut(f"the model wrote no reasoning: {shown}"))


def _reasoning_streamed(streamed: Streamed) -> Verdict:
    if streamed.error:
        return Verdict("reasoning_streamed", "not_checked", "model output",
                       f"HTTP {streamed.status}: {streamed.error}")
    reasoning, content = "".join(streamed.reasoning), "".join(streamed.content)
    method = _forced(reasoning + content)
    counts = (f"{len(streamed.reasoning)} reasoning and {len(streamed.content)} content "
              "deltas")
    if ANALYSIS in content or leak(content) is not None:
        return Verdict("reasoning_streamed", "fail", method,
                       cut(f"{counts}; reasoning streamed inside content: {content!r}"))
    if not reasoning:
        return Verdict("reasoning_streamed", "not_checked", method,
                       cut(f"{counts}: the model wrote no reasoning"))
    if len(streamed.reasoning) < 2 and len(reasoning) > 8:
        return Verdict("reasoning_streamed", "fail", method,
                       cut(f"{counts}: the reasoning came in one piece, not as deltas"))
    return Verdict("reasoning_streamed", "pass", method, cut(f"{counts}: {reasoning!r}"))


def _texts(probes: Probes) -> list[tuple[str, str]]:
    texts = []
    for name, answer in (("reasoning", probes.reason), ("call", probes.call),
                         ("tool result", probes.tool_result)):
        if answer.body is not None:
            message = message_of(answer)
            texts += [(f"{name} content", content_of(message)),
                      (f"{name} reasoning", reasoning_of(message))]
    for name, streamed in (("reasoning stream", probes.reason_stream),
                           ("call stream", probes.call_stream)):
        if streamed.status == 200:
            texts += [(f"{name} content", "".join(streamed.content)),
                      (f"{name} reasoning", "".join(streamed.reasoning))]
    return texts


def _no_markup(probes: Probes) -> Verdict:
    texts = _texts(probes)
    if not texts:
        return Verdict("no_markup", "not_checked", "model output", "no answer to read")
    for where, text in texts:
        found = leak(text)
        if found is not None:
            return Verdict("no_markup", "fail", "every answer", cut(f"{where}: {found!r}"))
    return Verdict("no_markup", "pass", "every answer",
                   f"{len(texts)} texts from {len(texts) // 2} answers, no markup")


def _is_call(name: str, arguments: str) -> bool:
    try:
        parsed = json.loads(arguments)
    except (ValueError, RecursionError):
        return False
    return name == TOOL_NAME and isinstance(parsed, dict)


CALL_METHOD = "forced (call grammar, or tool_choice required + logit_bias)"


def _call_parsed(answer: Answer, method: str) -> Verdict:
    if answer.body is None:
        return Verdict("header_call_parsed", "not_checked", method, _failed(answer))
    message = message_of(answer)
    calls, content = calls_of(message), content_of(message)
    return _call_verdict("header_call_parsed", method, calls, content, (
        "tool_calls", "tool_calls", "came back as text",
        f"tool_calls {calls}, content {content!r}"))


def _call_streamed(streamed: Streamed, method: str) -> Verdict:
    if streamed.error:
        return Verdict("call_streamed", "not_checked", method,
                       f"HTTP {streamed.status}: {streamed.error}")
    calls = [(c["name"], c["arguments"]) for _, c in sorted(streamed.calls.items())]
    content = "".join(streamed.content)
    return _call_verdict("call_streamed", method, calls, content, (
        f"{streamed.call_deltas} tool_calls deltas:", "tool_calls deltas", "streamed as text",
        f"content {content!r}"))


def _call_verdict(check: str, method: str, calls: Sequence[tuple[str, Any]], content: str,
                  words: tuple[str, str, str, str]) -> Verdict:
    """The declared call among ``calls`` passes; other calls, or the call written as text
    in ``content``, fail; nothing is not checked. ``words`` name what was read: the calls
    when right, the calls when wrong, how text came back, what came back instead."""
    right, wrong, as_text, instead = words
    if any(_is_call(name, arguments) for name, arguments in calls):
        return Verdict(check, "pass", method, cut(f"{right} {calls}"))
    if calls:
        return Verdict(check, "fail", method,
                       cut(f"{wrong} that are not the declared call: {calls}"))
    if leak(content) is not None:
        return Verdict(check, "fail", method, cut(f"the call {as_text}: {content!r}"))
    return Verdict(check, "not_checked", method, cut(f"the model wrote no call: {instead}"))


def _names_clean(probes: Probes, method: str) -> Verdict:
    names = [name for name, _ in calls_of(message_of(probes.call))]
    names += [c["name"] for c in probes.call_stream.calls.values()]
    if not names:
        return Verdict("tool_names_clean", "not_checked", method, "no call came back")
    bad = [name for name in names if name != TOOL_NAME]
    if bad:
        return Verdict("tool_names_clean", "fail", method,
                       cut(f"declared {TOOL_NAME!r}, got {bad[0]!r}"))
    return Verdict("tool_names_clean", "pass", method, f"{len(names)} call names exact")


RENDERED = "rendered prompt (/apply-template)"


def _tool_result(probes: Probes) -> Verdict:
    answer, rendered = probes.tool_result, probes.rendered_tool_result
    prompt = str((rendered.body or {}).get("prompt")) if rendered else None
    if prompt is not None and "temperature_c" not in prompt:
        return Verdict("tool_result_accepted", "fail", RENDERED,
                       "the tool's output is missing from the rendered prompt")
    if 400 <= answer.status < 500:
        return Verdict("tool_result_accepted", "fail", "request", cut(_failed(answer)))
    if answer.body is None:
        return Verdict("tool_result_accepted", "not_checked", "request", _failed(answer))
    message = message_of(answer)
    what = f"tool_calls {calls_of(message)}" if calls_of(message) else \
        f"content {content_of(message)!r}"
    method = f"request and {RENDERED}" if prompt is not None else "request"
    return Verdict("tool_result_accepted", "pass", method,
                   cut(f"HTTP {answer.status}, answered with {what}"))


def _reasoning_back(probes: Probes) -> Verdict:
    rendered = probes.rendered_tool_result
    if rendered is None:
        return Verdict("reasoning_sent_back", "not_checked", RENDERED,
                       "the server shows no rendered prompt")
    prompt = str((rendered.body or {}).get("prompt"))
    if REASONING_BACK in prompt:
        return Verdict("reasoning_sent_back", "pass", RENDERED,
                       "the tool-call turn's reasoning_content is in the prompt")
    return Verdict("reasoning_sent_back", "fail", RENDERED,
                   "the tool-call turn's reasoning_content is not in the prompt (the "
                   "model file's chat template drops it)")


def _effort(check: str, answers: dict[str, Answer], rendered: bool) -> Verdict:
    failed = {level: a for level, a in answers.items() if a.body is None}
    if rendered:
        prompts = {level: str((a.body or {}).get("prompt")) for level, a in answers.items()}
        shown = {level: next((e for e in EFFORTS if f"Reasoning: {e}" in p), "none")
                 for level, p in prompts.items()}
        evidence = ", ".join(f"{level} -> {said}" for level, said in shown.items())
        ok = all(level == said for level, said in shown.items()) and not failed
        return Verdict(check, "pass" if ok else "fail", RENDERED, evidence)
    refused = {level: a for level, a in failed.items() if 400 <= a.status < 500}
    if refused and all(a.status == 404 for a in refused.values()) and len(refused) == 3:
        return Verdict(check, "not_checked", "request", "no such API here (HTTP 404)")
    if refused:
        level, answer = next(iter(refused.items()))
        return Verdict(check, "fail", "request", cut(f"{level} refused: {_failed(answer)}"))
    said = ", ".join(f"{level} HTTP {a.status}" for level, a in answers.items())
    return Verdict(check, "not_checked", "request", cut(
        f"{said}; the server shows no rendered prompt, and only a real model's reasoning "
        "length can show the effort (bench tools --reasoning)"))


def evaluate(probes: Probes) -> list[Verdict]:
    """One verdict per ``CHECKS`` entry, in its order."""
    how = CALL_METHOD if probes.forced else "model output"
    return [_reasoning_field(probes.reason), _reasoning_streamed(probes.reason_stream),
            _no_markup(probes), _call_parsed(probes.call, how),
            _call_streamed(probes.call_stream, how), _names_clean(probes, how),
            _tool_result(probes), _reasoning_back(probes),
            _effort("effort_reasoning_effort", probes.effort["reasoning_effort"],
                    probes.rendered),
            _effort("effort_template_kwargs", probes.effort["template_kwargs"],
                    probes.rendered),
            _effort("effort_responses", probes.effort["responses"], False)]


def counts(verdicts: list[Verdict]) -> dict[str, int]:
    return {status: sum(v.status == status for v in verdicts) for status in STATUSES}
