"""Runs the tool-use suite on an engine: harmony prompts in, graded transcripts out.

Each attempt renders the case with openai-harmony (the same token ids on every engine),
samples until ``<|call|>``/``<|return|>``, parses the turn, and when it ends in a call
answers it — the tool's fixed mock result, the real calculator / sandbox tools for
``act``, or MCP servers started for the attempt for ``mcp`` (a ``Toolbox``:
``bench.mcp_suite``) — and lets the model continue, up to the case's turn limit and the attempt's
timeout. The KV cache is kept between the turns of an attempt (each turn only appends).
Grading is ``grade.grade(case, transcript)``, the same function ``--regrade`` runs.

Nothing one attempt does ends the run: a tool that raises answers with an error
(``grade.respond``), a turn over one of ``grade``'s limits ends the attempt as
``over_limit`` before its calls run, the deadline is checked before and after every tool
call (each tool's own work is bounded in ``sandbox``), and an attempt that raises anyway is
kept as failed with its error (``run_cases``), as is one whose grading fails. MCP servers
that fail (``DoctorError``) fail the attempt they serve, with their one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gptoss_doctor.bench import chat_turns, grade, harmony, vocab
from gptoss_doctor.bench.sandbox import Sandbox
from gptoss_doctor.bench.tool_suite import MCP, Case, Suite
from gptoss_doctor.errors import DoctorError

END_REASONS = ("final", "call", "no_answer", "unparsable", "turn_limit", "timeout",
               "context_full", "interrupted", "failed", "over_limit")
STOP_NAMES = {vocab.CALL_ID: "<|call|>", vocab.RETURN_ID: "<|return|>"}


class GenerationEngine(Protocol):
    """What the runner needs from an engine (the llama.cpp adapter; MLX alike)."""

    n_ctx: int

    def reset(self) -> None: ...

    def decode(self, tokens: Sequence[int]) -> None: ...

    def logits(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Sampling:
    """OpenAI's recommended gpt-oss sampling is temperature 1.0, top_p 1.0; 0 is greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0


def sample(logits: Any, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """One token from ``logits``: argmax at temperature 0, else nucleus sampling."""
    values = np.asarray(logits, dtype=np.float64)
    if temperature <= 0:
        return int(np.argmax(values))
    scaled = (values - values.max()) / temperature
    probs = np.exp(scaled)
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs)
        keep = order[:int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1]
        nucleus = np.zeros_like(probs)
        nucleus[keep] = probs[keep]
        probs = nucleus / nucleus.sum()
    return int(rng.choice(len(probs), p=probs))


class Generation(Protocol):
    """One attempt's turns: feed the prompt so far, generate the next turn's tokens and
    why they stopped. ``_Context`` does it with the engine's decode loop; an engine that
    generates whole turns itself (llama.cpp's server) offers its own (``TurnEngine``)."""

    tokens: list[int]

    def feed(self, prompt: Sequence[int]) -> bool: ...

    def generate(self, max_tokens: int, sampling: Sampling, rng: np.random.Generator,
                 deadline: float, clock: Callable[[], float]) -> tuple[list[int], str]: ...


@runtime_checkable
class TurnEngine(Protocol):
    """An engine that samples whole turns itself (its own sampler, seeded from ``rng``)."""

    def generation(self) -> Generation: ...


class _Context:
    """The tokens in the engine's KV cache; a prompt that extends them only appends."""

    def __init__(self, engine: GenerationEngine) -> None:
        self.engine = engine
        self.engine.reset()  # whatever an earlier attempt left in the cache
        self.tokens: list[int] = []

    def feed(self, prompt: Sequence[int]) -> bool:
        """Decode ``prompt`` (reusing the cache); False when it does not fit the context."""
        if len(prompt) >= self.engine.n_ctx:
            return False
        if list(prompt[:len(self.tokens)]) != self.tokens:
            self.engine.reset()
            self.tokens = []
        new = list(prompt[len(self.tokens):])
        if new:
            self.engine.decode(new)
            self.tokens.extend(new)
        return True

    def generate(self, max_tokens: int, sampling: Sampling, rng: np.random.Generator,
                 deadline: float, clock: Callable[[], float]) -> tuple[list[int], str]:
        out: list[int] = []
        while len(out) < max_tokens:
            if clock() > deadline:
                return out, "timeout"
            if len(self.tokens) >= self.engine.n_ctx:
                return out, "context_full"
            token = sample(self.engine.logits(), sampling.temperature, sampling.top_p, rng)
            out.append(token)
            if token in STOP_NAMES:
                return out, STOP_NAMES[token]
            self.engine.decode([token])
            self.tokens.append(token)
        return out, "max_tokens"


@dataclass(frozen=True, slots=True)
class RunSettings:
    reasoning: str = "low"
    max_tokens: int = 1024  # per turn
    timeout_s: float = 300.0  # per attempt
    sampling: Sampling = Sampling()
    # OpenAI's guidance for gpt-oss: the reasoning (analysis) of a turn that ends in a call
    # stays in the prompt until the final answer. False drops it, to measure what it is
    # worth (docs/conformance.md, "Reasoning between tool calls").
    reasoning_back: bool = True


def _turn_record(prompt_len: int, tokens: list[int], stopped: str, seconds: float
                 ) -> dict[str, Any]:
    return {"prompt_tokens": prompt_len, "completion_ids": tokens,
            "completion_text": harmony.decode(tokens), "stopped_on": stopped,
            "latency_s": round(seconds, 4), "tool_result": None}


class LiveTools(Protocol):
    """The tools one attempt calls through something else than the in-process sandbox
    (MCP servers: ``bench.mcp_suite``)."""

    def prompt_tools(self) -> list[dict[str, Any]]:
        """The functions the prompt offers (name, description, JSON Schema)."""
        ...

    def respond(self, call: grade.Call) -> Any:
        """The result the model reads; ``DoctorError`` when the tools themselves failed."""
        ...

    def record(self) -> dict[str, Any]:
        """What the attempt's results keep of the tools (servers, calls)."""
        ...


class Toolbox(Protocol):
    """Where the ``mcp`` cases' tools come from: one ``LiveTools`` per attempt."""

    def attempt(self, case: Case) -> AbstractContextManager[LiveTools]: ...


def run_attempt(engine: GenerationEngine, suite: Suite, case: Case, settings: RunSettings,
                attempt: int, *, clock: Callable[[], float] = time.perf_counter,
                toolbox: Toolbox | None = None) -> dict[str, Any]:
    """One attempt at ``case``: its turns (raw tokens and text), end reason and grade.
    ``mcp`` cases call their tools through ``toolbox`` (``run_live``)."""
    seed = settings.sampling.seed + attempt
    context = engine.generation() if isinstance(engine, TurnEngine) else _Context(engine)
    if case.category == MCP:
        return run_live(context, suite, case, settings, attempt, toolbox, clock)
    prompt = harmony.tool_prompt(suite.instructions, [t.for_prompt() for t in case.tools],
                                 case.prompt, settings.reasoning, case.history)
    turns: list[dict[str, Any]] = []
    started = clock()
    with grade.case_sandbox(case) as sandbox:
        try:
            end = _turns(context, prompt, _Attempt(
                case, settings, np.random.default_rng(seed), started + settings.timeout_s,
                clock, sandbox), turns)
        except DoctorError as exc:
            end = "failed"
            turns.append({**_turn_record(len(context.tokens), [], "failed", 0.0),
                          "error": exc.message})
        live_refusals = len(sandbox.refusals) if sandbox else 0
    return attempt_record(case, attempt, seed, end, clock() - started, live_refusals, turns)


def run_live(context: Generation, suite: Suite, case: Case, settings: RunSettings,
             attempt: int, toolbox: Toolbox | None, clock: Callable[[], float]
             ) -> dict[str, Any]:
    """One attempt whose tools live elsewhere: started for the attempt, stopped after it.
    Tools that fail (do not start, stop, hang) fail the attempt with their one line."""
    seed = settings.sampling.seed + attempt
    turns: list[dict[str, Any]] = []
    started = clock()
    kept: dict[str, Any] | None = None
    try:
        if toolbox is None:
            raise DoctorError(f"{case.id} needs MCP servers",
                              "bench tools --category mcp starts the reference server")
        with toolbox.attempt(case) as live:
            prompt = harmony.tool_prompt(suite.instructions, live.prompt_tools(), case.prompt,
                                         settings.reasoning, case.history)
            try:
                end = _turns(context, prompt, _Attempt(
                    case, settings, np.random.default_rng(seed),
                    started + settings.timeout_s, clock, respond=live.respond), turns)
            finally:
                kept = live.record()
    except DoctorError as exc:
        end = "failed"
        turns.append({**_turn_record(len(context.tokens), [], "failed", 0.0),
                      "error": exc.message})
    record = attempt_record(case, attempt, seed, end, clock() - started, 0, turns)
    if kept is not None:
        record["mcp"] = kept
    return record


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What every turn of one attempt runs with: its case and settings, its sampler, its
    deadline and clock, and where its calls are answered (the sandbox, or ``respond``)."""

    case: Case
    settings: RunSettings
    rng: np.random.Generator
    deadline: float
    clock: Callable[[], float]
    sandbox: Sandbox | None = None
    respond: Callable[[grade.Call], Any] | None = None


def _turns(context: Generation, prompt: list[int], attempt: _Attempt,
           turns: list[dict[str, Any]]) -> str:
    """Generate and answer turns until the attempt ends (each appended to ``turns``);
    returns the end reason."""
    case, settings, deadline, clock = (attempt.case, attempt.settings, attempt.deadline,
                                       attempt.clock)
    for index in range(case.turn_limit):
        turn_start = clock()
        if not context.feed(prompt):
            return "context_full"
        tokens, stopped = context.generate(settings.max_tokens, settings.sampling,
                                           attempt.rng, deadline, clock)
        turns.append(_turn_record(len(prompt), tokens, stopped, clock() - turn_start))
        if stopped in ("timeout", "context_full"):
            return stopped
        parsed = harmony.parse_completion(tokens)
        outcome = turn_outcome(case, parsed, index)
        if outcome is not None:
            return outcome
        call = grade.pending_calls(parsed)[0]
        results, stop = answer_calls(case, attempt.sandbox, [call], deadline, clock,
                                     respond=attempt.respond)
        turns[-1]["tool_result"] = results[0] if results else None
        if stop is not None:
            return stop
        kept = tokens if settings.reasoning_back else without_analysis(tokens)
        prompt = [*prompt, *as_call(kept), *harmony.tool_result(call.recipient, results[0])]
    return "turn_limit"


ASSISTANT = (harmony.START, 173781)  # "<|start|>assistant" in o200k


def without_analysis(tokens: Sequence[int]) -> list[int]:
    """A turn that ends in a call without the reasoning before it: the tokens after the
    last ``<|start|>assistant`` when every message before it is on the analysis channel
    (the next prompt already ends with ``<|start|>assistant``); else the turn as it is."""
    starts = [i for i in range(len(tokens) - 1) if tuple(tokens[i:i + 2]) == ASSISTANT]
    if not starts:
        return list(tokens)
    earlier = harmony.parse_completion(tokens[:starts[-1]])
    if earlier.error or any(m.channel != "analysis" for m in earlier.messages):
        return list(tokens)
    return list(tokens[starts[-1] + 2:])


def as_call(tokens: Sequence[int]) -> list[int]:
    """A turn that ends in a call, as the next prompt holds it: closed by ``<|call|>``
    whatever stopped it (a ``<|return|>`` is replaced, not followed by one)."""
    body = list(tokens[:-1]) if tokens[-1:] and tokens[-1] in STOP_NAMES else list(tokens)
    return [*body, vocab.CALL_ID]


def answer_calls(case: Case, sandbox: Sandbox | None, calls: Sequence[grade.Call],
                 deadline: float, clock: Callable[[], float], *,
                 respond: Callable[[grade.Call], Any] | None = None
                 ) -> tuple[list[Any], str | None]:
    """Answer ``calls`` in order (through ``respond`` when given, else ``grade.respond``):
    (their results, None), or the results so far and the end reason — "timeout" when the
    deadline passed (checked before and after each call, so no call starts late),
    "over_limit" when the sandbox's write budget ran out."""
    results: list[Any] = []
    for call in calls:
        if clock() > deadline:
            return results, "timeout"
        results.append(respond(call) if respond is not None
                       else grade.respond(case, sandbox, call))
        if sandbox is not None and sandbox.over_limit is not None:
            return results, "over_limit"
    return results, "timeout" if clock() > deadline else None


def turn_outcome(case: Case, parsed: harmony.ParsedCompletion, index: int) -> str | None:
    """How the attempt ends after turn ``index`` (an ``END_REASONS`` value), or None when
    its calls are to be answered and the model asked again."""
    if grade.over_limit(parsed) is not None:
        return "over_limit"
    if parsed.error:
        return "unparsable"
    if not grade.pending_calls(parsed):
        return "final" if grade.final_text(parsed) is not None else "no_answer"
    if case.turn_limit == 1:
        return "call"
    if index == case.turn_limit - 1:
        return "turn_limit"
    return None


def attempt_record(case: Case, attempt: int, seed: int, end: str, latency_s: float,
                   live_refusals: int, turns: list[dict[str, Any]]) -> dict[str, Any]:
    """One attempt as results files store it, graded."""
    record: dict[str, Any] = {"case": case.id, "category": case.category, "attempt": attempt,
                              "seed": seed, "end": end, "latency_s": round(latency_s, 4),
                              "live_sandbox_refusals": live_refusals, "turns": turns}
    record["grade"] = grade_record(case, record)
    return record


def parsed_turns(attempt: dict[str, Any]) -> list[harmony.ParsedCompletion]:
    """Each turn parsed again: its tokens by openai-harmony, or a server's message (endpoint
    runs store the message instead of tokens) the way ``chat_turns`` reads it."""
    return [chat_turns.parse(t["message"], t.get("finish_reason"))[0] if "message" in t
            else harmony.parse_completion(t["completion_ids"]) for t in attempt["turns"]
            if "error" not in t]  # a request that failed generated nothing


def grade_record(case: Case, attempt: dict[str, Any]) -> dict[str, Any]:
    """The stored grade of one attempt; one that cannot be graded (a broken stored turn, a
    bug) is ``engine_error`` with the reason, never an exception that ends a run."""
    if attempt.get("end") == "failed":
        error = next((t.get("error") for t in attempt["turns"] if t.get("error")), "")
        return failed_grade(error)
    try:
        result = grade.grade_parsed(case, parsed_turns(attempt), attempt["end"])
    except Exception as exc:  # the grade of this attempt only; the others go on
        return failed_grade(f"could not be graded: {describe(exc)}")
    return {"passed": result.passed, "strict_passed": result.strict_passed,
            "failure": result.failure, "reason": result.reason, "quirks": list(result.quirks),
            "calls": [{"recipient": c.recipient, "arguments": c.arguments}
                      for c in result.calls],
            "sandbox_refusals": result.sandbox_refusals}


def failed_grade(reason: str) -> dict[str, Any]:
    """The grade of an attempt that did not run or could not be graded."""
    return {"passed": False, "strict_passed": False, "failure": "engine_error",
            "reason": reason, "quirks": [], "calls": [], "sandbox_refusals": 0}


def describe(exc: BaseException) -> str:
    """An exception in one bounded line that any encoder can write."""
    text = f"{type(exc).__name__}: {exc}"[:300]
    return text.encode("utf-8", "replace").decode("utf-8")


def scored(attempts: Sequence[dict[str, Any]]) -> list[grade.Scored]:
    return [grade.Scored(a["case"], a["category"], a["grade"]["passed"],
                         a["grade"]["strict_passed"], a["grade"]["failure"],
                         tuple(a["grade"]["quirks"]), a["latency_s"]) for a in attempts]


def run_suite(engine: GenerationEngine, suite: Suite, cases: Sequence[Case],
              settings: RunSettings, repeats: int = 1, *,
              progress: Callable[[Case, int], None] | None = None,
              clock: Callable[[], float] = time.perf_counter, toolbox: Toolbox | None = None
              ) -> tuple[list[dict[str, Any]], bool]:
    """Every case ``repeats`` times; returns (attempts, interrupted). Ctrl-C keeps what ran."""
    return run_cases(lambda case, attempt: run_attempt(engine, suite, case, settings, attempt,
                                                       clock=clock, toolbox=toolbox),
                     cases, repeats, progress, seed=settings.sampling.seed, clock=clock)


def run_cases(run_one: Callable[[Case, int], dict[str, Any]], cases: Sequence[Case],
              repeats: int, progress: Callable[[Case, int], None] | None = None, *,
              seed: int = 0, clock: Callable[[], float] = time.perf_counter
              ) -> tuple[list[dict[str, Any]], bool]:
    """``run_one(case, attempt)`` for every case and attempt; (attempts, interrupted). An
    attempt that raises is kept as failed, with its error (``seed`` + attempt is its seed),
    and the run goes on; Ctrl-C ends it, keeping every finished attempt."""
    attempts: list[dict[str, Any]] = []
    try:
        for case in cases:
            for attempt in range(repeats):
                if progress is not None:
                    progress(case, attempt)
                started = clock()
                try:
                    attempts.append(run_one(case, attempt))
                except Exception as exc:  # this attempt's failure, not the run's
                    attempts.append(_crashed(case, attempt, seed + attempt, exc,
                                             clock() - started))
    except KeyboardInterrupt:
        return attempts, True
    return attempts, False


def _crashed(case: Case, attempt: int, seed: int, exc: Exception, seconds: float
             ) -> dict[str, Any]:
    turn: dict[str, Any] = {
        "prompt_tokens": None, "completion_ids": [], "completion_text": "",
        "stopped_on": "failed", "latency_s": round(seconds, 4), "tool_result": None,
        "error": f"the attempt failed: {describe(exc)}"}
    return attempt_record(case, attempt, seed, "failed", seconds, 0, [turn])
