"""Grades for the tool-use suite: pure functions of (case, transcript).

A transcript is what the model generated, turn by turn (token ids, or a server's parsed
messages for endpoint runs: ``grade_parsed``), and how the loop ended. Grading parses the
tokens with openai-harmony again, so stored results can be re-graded without a model
(``bench tools --regrade``). ``act`` cases replay the calls against the
same real tools in a fresh sandbox: the tools are deterministic, so the state a live run
left is rebuilt exactly and judged.

Failure categories, one per failed attempt (the first that applies): no_call, wrong_tool,
invalid_json, schema_invalid_args, wrong_args, unparsable_harmony, called_when_irrelevant,
did_not_ask (a missing-parameter case answered without asking for the value), turn_limit,
and for the loop categories missing_calls, extra_calls, no_answer,
wrong_state, timeout; over_limit when a turn or the sandbox went past one of the limits
below (checked first: nothing over a limit is executed or replayed), and engine_error when
the engine, the server or the harness failed on the attempt (``tool_run`` keeps the
error). Harmony quirks (``harmony.quirks_of``: a call on the analysis or final channel,
a recipient without ``functions.``, a call not ended by ``<|call|>``, an answer left on the
commentary channel) are tolerated and recorded; ``strict`` passes have none. Every rule,
with its reason, is in docs/tool-grading.md. ``mcp`` cases are graded as ``act`` cases:
the reference MCP server runs the same sandbox tools, so the replay is in-process too.

Every tool answer goes through ``respond`` (the live loops and the replay alike), and so
through ``sandbox.answer``: whatever a tool raises comes back as ``{"error": ...}``, and a
result that JSON cannot hold becomes an error too, so one hostile call never ends a run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import jsonschema

from gptoss_doctor.bench import harmony
from gptoss_doctor.bench.arg_match import args_mismatch, norm_text, without_empty_optionals
from gptoss_doctor.bench.sandbox import Sandbox, answer, fresh_sandbox
from gptoss_doctor.bench.tool_suite import ALL_CATEGORIES, Case, ExpectedCall

FAILURES = ("no_call", "wrong_tool", "invalid_json", "schema_invalid_args", "wrong_args",
            "unparsable_harmony", "called_when_irrelevant", "did_not_ask", "turn_limit",
            "missing_calls",
            "extra_calls", "no_answer", "wrong_state", "timeout", "over_limit",
            "engine_error")
NAMESPACE = "functions."

# Limits on what one turn may hold. Going past one ends the attempt as ``over_limit``
# before any of its calls runs; a server's over-long answer is stored cut just past the
# limit (``chat_turns``), so the grade reproduces from what the results file holds.
MAX_CALLS_PER_TURN = 16
"""Tool calls in one reply: the parallel cases need 2 to 4; 16 leaves room for a model that
splits its work, not for 300 calls in one answer."""
MAX_ARGUMENT_BYTES = 16 << 10
"""UTF-8 bytes of one call's arguments: a few lines of a file or an expression need far
less; 16 KiB is also the most ``read_file`` hands back."""
MAX_TURN_TEXT_BYTES = 256 << 10
"""UTF-8 bytes of text one turn may store (reasoning, answer, calls' names and arguments):
about 60,000 tokens, beyond a long high-effort reasoning; a results file stays megabytes."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """Completion token ids per turn and why the loop ended (see ``tool_run.END_REASONS``)."""

    turns: tuple[tuple[int, ...], ...]
    end: str


@dataclass(frozen=True, slots=True)
class Call:
    recipient: str
    name: str
    arguments: str  # as the model wrote them


@dataclass(frozen=True, slots=True)
class Grade:
    passed: bool
    failure: str | None
    reason: str
    quirks: tuple[str, ...]
    calls: tuple[Call, ...]
    sandbox_refusals: int = 0

    @property
    def strict_passed(self) -> bool:
        return self.passed and not self.quirks


def grader_versions() -> dict[str, str]:
    """The libraries grades depend on (the harmony parser, the schema checker), by version:
    recorded with every run and compared by ``--regrade``."""
    found: dict[str, str] = {}
    for name in ("openai-harmony", "jsonschema"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def tool_name(recipient: str) -> str:
    return recipient[len(NAMESPACE):] if recipient.startswith(NAMESPACE) else recipient


def calls_of(parsed: harmony.ParsedCompletion) -> list[Call]:
    """The assistant's calls (a tool's reply the model wrote itself is none: its recipient
    is ``assistant``)."""
    return [Call(m.recipient, tool_name(m.recipient), m.text)
            for m in parsed.messages if m.recipient and m.author == "assistant"]


def pending_call(parsed: harmony.ParsedCompletion) -> Call | None:
    """The call a turn ends with (the one the loop answers), if any."""
    if parsed.error or not parsed.messages or not parsed.messages[-1].recipient:
        return None
    return calls_of(parsed)[-1]


def pending_calls(parsed: harmony.ParsedCompletion) -> list[Call]:
    """Every call the loop answers after this turn: the trailing calls of a server's turn,
    else the one harmony call it ends with."""
    if not parsed.parallel_calls:
        call = pending_call(parsed)
        return [call] if call is not None else []
    if parsed.error:
        return []
    trailing: list[harmony.ParsedMessage] = []
    for message in reversed(parsed.messages):
        if not message.recipient:
            break
        trailing.insert(0, message)
    return [Call(m.recipient or "", tool_name(m.recipient or ""), m.text) for m in trailing]


def text_bytes(text: str) -> int:
    """The UTF-8 size of ``text`` (a lone surrogate counts as the 3 bytes it would take)."""
    return len(text.encode("utf-8", "surrogatepass"))


def over_limit(parsed: harmony.ParsedCompletion) -> str | None:
    """Which per-turn limit this turn goes past, or None. (A server's answer is stored cut
    just past a limit, so the reasons say "over", not how far.)"""
    calls = calls_of(parsed)
    if len(calls) > MAX_CALLS_PER_TURN:
        return f"over {MAX_CALLS_PER_TURN} tool calls in one turn"
    big = next((c for c in calls if text_bytes(c.arguments) > MAX_ARGUMENT_BYTES), None)
    if big is not None:
        return f"{big.recipient[:60]!r}: over {MAX_ARGUMENT_BYTES} bytes of arguments"
    size = sum(text_bytes(m.text) + text_bytes(m.recipient or "") for m in parsed.messages)
    if size > MAX_TURN_TEXT_BYTES:
        return f"over {MAX_TURN_TEXT_BYTES} bytes of text in one turn"
    return None


def final_text(parsed: harmony.ParsedCompletion) -> str | None:
    """The turn's answer: its last final-channel message, else the commentary message a
    turn ends with at ``<|return|>`` (an answer on the wrong channel: a quirk, not none)."""
    finals = [m.text for m in parsed.messages if m.channel == "final" and not m.recipient]
    if finals:
        return finals[-1]
    last = parsed.messages[-1] if parsed.messages else None
    if last is not None and parsed.ended_with == "<|return|>" and not last.recipient \
            and last.channel == "commentary":
        return last.text
    return None


def asks_for(answer: str, words: Sequence[str]) -> bool:
    """Whether ``answer`` asks for a missing value: a question ("?", full-width too) that
    names it by one of ``words`` (compared as arguments are: NFKC, case-folded)."""
    text = norm_text(answer)
    return ("?" in answer or "\uff1f" in answer) and any(
        f" {norm_text(w)} " in f" {text} " for w in words)


def case_sandbox(case: Case) -> AbstractContextManager[Sandbox | None]:
    """Where a live attempt at ``case`` acts: a fresh sandbox for ``act`` cases, else none."""
    return fresh_sandbox(case.setup) if case.category == "act" else nullcontext()


def respond(case: Case, sandbox: Sandbox | None, call: Call) -> Any:
    """What the loop feeds back for ``call`` (shared by the live run and the replay): the
    tool's result as plain JSON, or ``{"error": ...}`` whatever went wrong (``answer``)."""
    tool = case.tool(call.name)
    if tool is None:
        return {"error": f"no tool named {call.recipient[:60]!r}"}
    try:
        args = json.loads(call.arguments)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
        return {"error": "arguments are not valid JSON"}
    if not isinstance(args, dict):
        return {"error": "arguments must be a JSON object"}
    return answer(tool.executor, tool.mock_result, sandbox, call.name, args)


def _check_args(case: Case, call: Call) -> tuple[str, str] | dict[str, Any]:
    """The call's arguments as a dict, or (failure, reason)."""
    try:
        args = json.loads(call.arguments)
    except (ValueError, RecursionError):
        return "invalid_json", f"{call.name}: arguments are not JSON: {call.arguments[:80]!r}"
    tool = case.tool(call.name)
    if not isinstance(args, dict) or tool is None:
        return "schema_invalid_args", f"{call.name}: arguments are not a JSON object"
    args = without_empty_optionals(args, tool.parameters)
    try:
        jsonschema.validate(args, tool.parameters)
    except jsonschema.ValidationError as exc:
        return "schema_invalid_args", f"{call.name}: {exc.message[:200]}"
    except RecursionError:
        return "schema_invalid_args", f"{call.name}: arguments nested too deeply"
    return args


def _grade_single(case: Case, calls: Sequence[Call], ended_with: str
                  ) -> tuple[str | None, str]:
    """Every call of the turn is graded: the loop would run each one (a call ended by
    ``<|end|>`` is a call too), so a right call followed by a wrong one fails."""
    if not calls:
        cut = " (stopped at the token limit)" if ended_with == "nothing" else ""
        return "no_call", f"no tool call{cut}"
    expected = case.expected[0]
    for call in calls:
        if call.name != expected.name:
            return "wrong_tool", f"called {call.recipient[:60]}, expected {expected.name}"
        checked = _check_args(case, call)
        if isinstance(checked, tuple):
            return checked
        mismatch = args_mismatch(expected, checked)
        if mismatch:
            return "wrong_args", mismatch
    if len(calls) > 1:
        return "extra_calls", f"{len(calls)} calls, expected one"
    return None, f"called {expected.name} correctly"


def _matches(expected: Sequence[ExpectedCall], actual: Sequence[dict[str, Any]]) -> bool:
    """An order-free one-to-one matching of expected calls to actual (name, args)."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    for i, got in enumerate(actual):
        if got["name"] == head.name and args_mismatch(head, got["args"]) is None \
                and _matches(rest, [*actual[:i], *actual[i + 1:]]):
            return True
    return False


def _grade_parallel(case: Case, calls: list[Call]) -> tuple[str | None, str]:
    if not calls:
        return "no_call", "no tool call"
    wanted = Counter(e.name for e in case.expected)
    got = Counter(c.name for c in calls)
    stray = next((c.recipient for c in calls if c.name not in wanted), None)
    if stray is not None:
        return "wrong_tool", f"called {stray}, expected only {', '.join(sorted(wanted))}"
    checked: list[dict[str, Any]] = []
    for call in calls:
        result = _check_args(case, call)
        if isinstance(result, tuple):
            return result
        checked.append({"name": call.name, "args": result})
    if len(calls) < len(case.expected):
        return "missing_calls", f"{len(calls)} of {len(case.expected)} calls"
    if len(calls) > len(case.expected):
        return "extra_calls", f"{len(calls)} calls, expected {len(case.expected)}"
    if got != wanted:
        return "wrong_tool", f"calls {dict(got)}, expected {dict(wanted)}"
    if not _matches(case.expected, checked):
        return "wrong_args", "the calls' arguments do not match the expected calls"
    return None, f"all {len(calls)} calls made correctly"


def state_mismatch(case: Case, sandbox: Sandbox, final: str | None) -> str | None:
    """None when the sandbox and the final answer are what the case expects."""
    expect = case.expect or {}
    files = sandbox.files()
    for path, rule in expect.get("files", {}).items():
        content = files.get(path)
        if content is None:
            return f"{path} does not exist"
        if "equals" in rule and content not in rule["equals"]:
            return f"{path} holds {content[:60]!r}"
        if "contains" in rule and not any(part in content for part in rule["contains"]):
            return f"{path} lacks {rule['contains'][0]!r}"
    for path in expect.get("absent", ()):
        if path in files:
            return f"{path} still exists"
    for key, accepted in expect.get("kv", {}).items():
        if sandbox.kv.get(key) not in accepted:
            return f"key {key!r} holds {sandbox.kv.get(key)!r}"
    wanted = expect.get("final_contains")
    said = f" {norm_text(final or '')} "  # whole words: 645819 is not in 1645819
    if wanted and not any(f" {norm_text(w)} " in said for w in wanted):
        return f"the answer does not contain {wanted[0]!r}"
    return None


def unused_tools(case: Case, log: Sequence[tuple[Call, Any]]) -> list[str]:
    """The tools the case says must do the work (``expect.used``: a name, or ``{"tool":
    name, "returns": {...}}`` for the result it must have given) that no call in the tool
    log ran that way: an answer the model worked out itself does not show tool use."""
    missing: list[str] = []
    for rule in (case.expect or {}).get("used", ()):
        name, returns = (rule, {}) if isinstance(rule, str) else (rule["tool"], rule["returns"])
        if not any(call.name == name and isinstance(result, dict) and "error" not in result
                   and all(result.get(k) == v for k, v in returns.items())
                   for call, result in log):
            missing.append(name)
    return missing


def _grade_act(case: Case, parsed: Sequence[harmony.ParsedCompletion],
               end: str) -> tuple[str | None, str, int]:
    with fresh_sandbox(case.setup, "gptoss-replay-") as sandbox:
        log = [(call, respond(case, sandbox, call))
               for turn in parsed for call in pending_calls(turn)]
        final = final_text(parsed[-1]) if parsed else None
        mismatch = state_mismatch(case, sandbox, final)
        refusals, spent = len(sandbox.refusals), sandbox.over_limit
    calls, unused = len(log), unused_tools(case, log)
    if spent is not None:
        return "over_limit", spent, refusals
    if mismatch is None and calls and not unused and final is not None:
        return None, "the expected state was reached and the model answered", refusals
    if end == "timeout":
        return "timeout", "the loop ran out of time", refusals
    if end == "turn_limit":
        return "turn_limit", f"no final answer within {case.turn_limit} turns", refusals
    if not calls:
        return "no_call", f"no tool call ({mismatch or 'the tools did no work'})", refusals
    if mismatch is None and unused:
        return "missing_calls", f"{unused[0]} never answered a call: the tools did not " \
            "do the work", refusals
    if mismatch is None:
        return "no_answer", "the state is right but the model gave no final answer", refusals
    return "wrong_state", mismatch, refusals


def grade(case: Case, transcript: Transcript) -> Grade:
    """The grade of one attempt at ``case`` from its completion tokens."""
    return grade_parsed(case, [harmony.parse_completion(t) for t in transcript.turns],
                        transcript.end)


def grade_parsed(case: Case, parsed: Sequence[harmony.ParsedCompletion], end: str) -> Grade:
    """The grade of one attempt from its parsed turns (tokens parsed by openai-harmony, or
    a server's own parsed messages) and how the loop ended."""
    quirks = tuple(sorted({q for p in parsed for q in p.quirks}))
    breach = next((b for b in map(over_limit, parsed) if b is not None), None)
    if breach is not None:  # judged on nothing else, and its calls are not copied
        return Grade(False, "over_limit", breach, quirks, ())
    calls = tuple(c for p in parsed for c in calls_of(p))
    broken = next((p for p in parsed if p.error), None)
    if not parsed and end == "timeout":
        return Grade(False, "timeout", "no answer before the attempt's deadline", (), ())
    if broken is not None or not parsed:
        return Grade(False, "unparsable_harmony", (broken.error if broken else None)
                     or "no output", quirks, calls)
    refusals = 0
    if case.category in ("simple", "multiple"):
        failure, reason = _grade_single(case, calls, parsed[0].ended_with)
    elif case.category == "parallel":
        failure, reason = _grade_parallel(case, list(calls))
    elif case.category == "irrelevance":
        if calls:
            failure, reason = "called_when_irrelevant", f"called {calls[0].recipient}"
        elif final_text(parsed[0]) is None:
            failure, reason = "no_answer", "no final answer"
        elif case.asks_for and not asks_for(final_text(parsed[0]) or "", case.asks_for):
            failure, reason = "did_not_ask", ("the answer does not ask for the missing value "
                                              f"({' / '.join(case.asks_for)})")
        else:
            failure, reason = None, "answered without calling a tool"
    else:
        failure, reason, refusals = _grade_act(case, parsed, end)
    return Grade(failure is None, failure, reason, quirks, calls, refusals)


@dataclass(frozen=True, slots=True)
class Scored:
    """One graded attempt, as the scores need it."""

    case_id: str
    category: str
    passed: bool
    strict_passed: bool
    failure: str | None
    quirks: tuple[str, ...]
    latency_s: float


def scores(attempts: Sequence[Scored]) -> dict[str, Any]:
    """pass@k (a case passes once in k attempts), pass^k (all k pass), per category."""
    def summary(items: Sequence[Scored]) -> dict[str, Any]:
        by_case: dict[str, list[Scored]] = {}
        for item in items:
            by_case.setdefault(item.case_id, []).append(item)
        n = len(by_case)
        return {
            "cases": n, "attempts": len(items),
            "pass_at_k": round(sum(any(a.passed for a in v) for v in by_case.values()) / n, 4)
            if n else None,
            "pass_hat_k": round(sum(all(a.passed for a in v) for v in by_case.values()) / n, 4)
            if n else None,
            "pass_rate": round(sum(a.passed for a in items) / len(items), 4) if items else None,
            "strict_pass_rate": round(sum(a.strict_passed for a in items) / len(items), 4)
            if items else None,
            "failures": dict(sorted(Counter(a.failure for a in items if a.failure).items())),
            "quirks": dict(sorted(Counter(q for a in items for q in a.quirks).items())),
            "mean_latency_s": round(sum(a.latency_s for a in items) / len(items), 4)
            if items else None,
        }

    categories = [c for c in ALL_CATEGORIES if any(a.category == c for a in attempts)]
    return {"overall": summary(attempts),
            "by_category": {c: summary([a for a in attempts if a.category == c])
                            for c in categories}}
