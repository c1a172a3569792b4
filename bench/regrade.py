"""Grade stored tool-use attempts again and say everything that does not reproduce.

A results file keeps every completion's token ids; the grade is a pure function of them.
Regrading checks the file against them, not only the grades: the stored completion text
must be the decoding of the ids (the report shows the text), the stored stop reason must be
the one the last token gives, the attempt's end must be the one the loop derives from its
last turn, each category must be the suite's, and pass, strict pass, failure, quirks and
calls, and every score, must come out the same. Each difference is one line in
``changes``. Attempts of cases the suite does not have are listed in ``unknown``: their
stored grades are kept, and scored under their stored category (docs/tool-grading.md,
"Regrade").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gptoss_doctor.bench import grade, harmony, tool_run
from gptoss_doctor.bench.tool_suite import Case, Suite, case_by_id

COMPARED = ("passed", "strict_passed", "failure", "quirks", "calls")
"""The grade's fields that must reproduce (its ``reason`` is wording, not a grade)."""
DERIVABLE_ENDS = ("final", "call", "no_answer", "unparsable", "turn_limit")
"""Ends the loop takes from the last turn alone; the others (timeout, context_full, a
sandbox over its budget, failed, interrupted) depend on what happened around it."""


@dataclass(frozen=True, slots=True)
class Regraded:
    attempts: list[dict[str, Any]]
    scores: dict[str, Any]
    changes: list[str]
    unknown: list[str]  # case ids the suite does not have


def _label(attempt: dict[str, Any]) -> str:
    return f"{str(attempt.get('case'))[:80]} #{attempt.get('attempt')}"


def checked_turns(attempt: dict[str, Any], changes: list[str]) -> list[dict[str, Any]]:
    """The attempt's turns with text and stop reason taken from the token ids, each
    stored value that differs reported in ``changes``."""
    turns: list[dict[str, Any]] = []
    for index, turn in enumerate(attempt["turns"]):
        if "message" in turn or "error" in turn:  # a server's parsed turn; a failed request
            turns.append(turn)
            continue
        ids = turn["completion_ids"]
        text = harmony.decode(ids)
        if text != turn.get("completion_text"):
            changes.append(f"{_label(attempt)}: turn {index + 1}'s completion_text is not the "
                           "decoding of its token ids (rewritten from them)")
        stopped = tool_run.STOP_NAMES.get(ids[-1]) if ids else None
        stored = turn.get("stopped_on")
        if stopped != stored and (stopped is not None or stored in tool_run.STOP_NAMES.values()):
            found = stopped or "no stop token"
            changes.append(f"{_label(attempt)}: turn {index + 1} stopped on {found}, "
                           f"stored as {str(stored)[:40]}")
        turns.append({**turn, "completion_text": text,
                      "stopped_on": stopped if stopped is not None else stored})
    return turns


def derived_end(case: Case, attempt: dict[str, Any], changes: list[str]) -> str:
    """The attempt's end, re-derived from its last turn where the loop takes it from there."""
    stored = str(attempt.get("end"))
    parsed = tool_run.parsed_turns(attempt)
    if stored not in DERIVABLE_ENDS or not parsed:
        return stored
    derived = tool_run.turn_outcome(case, parsed[-1], len(parsed) - 1)
    if derived is None:
        changes.append(f"{_label(attempt)}: stored end {stored}, but the loop would have "
                       "answered the last turn's call and gone on")
        return stored
    if derived != stored:
        changes.append(f"{_label(attempt)}: end {stored} -> {derived}")
    return derived


def _grade_changes(attempt: dict[str, Any], old: dict[str, Any], new: dict[str, Any]
                   ) -> str | None:
    diffs = [f"{key} {old.get(key)!r} -> {new.get(key)!r}" for key in COMPARED
             if key != "calls" and old.get(key) != new.get(key)]
    if old.get("calls") != new.get("calls"):
        diffs.append("calls differ")
    return f"{_label(attempt)}: {'; '.join(diffs)}"[:400] if diffs else None


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def score_changes(old: Any, new: dict[str, Any]) -> str | None:
    """One line naming the scores that moved (the first five), or None."""
    before, after = _flat(old if isinstance(old, dict) else {}), _flat(new)
    moved = [f"{key} {before.get(key)!r} -> {after.get(key)!r}"
             for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    if not moved:
        return None
    more = f" (and {len(moved) - 5} more)" if len(moved) > 5 else ""
    return f"scores: {'; '.join(moved[:5])}{more}"


def regrade(attempts: Sequence[dict[str, Any]], suite: Suite, stored_scores: Any
            ) -> Regraded:
    """Grade stored attempts again with today's grader and suite; see the module's doc."""
    regraded: list[dict[str, Any]] = []
    changes: list[str] = []
    unknown: list[str] = []
    for attempt in attempts:
        case = case_by_id(suite, str(attempt.get("case")))
        if case is None:
            if attempt.get("case") not in unknown:
                unknown.append(str(attempt.get("case"))[:80])
            regraded.append(attempt)
            continue
        if attempt.get("category") != case.category:
            changes.append(f"{_label(attempt)}: category {str(attempt.get('category'))[:40]} "
                           f"-> {case.category} (the suite's)")
        fixed = {**attempt, "category": case.category}
        try:  # a stored turn broken beyond checking is graded as it is (engine_error)
            fixed["turns"] = checked_turns(attempt, changes)
            fixed["end"] = derived_end(case, fixed, changes)
        except Exception as exc:
            changes.append(f"{_label(attempt)}: turns could not be checked: "
                           f"{tool_run.describe(exc)}")
        new = tool_run.grade_record(case, fixed)
        change = _grade_changes(attempt, attempt.get("grade") or {}, new)
        if change is not None:
            changes.append(change)
        regraded.append({**fixed, "grade": new})
    scores = grade.scores(tool_run.scored(regraded))
    moved = score_changes(stored_scores, scores)
    if moved is not None:
        changes.append(moved)
    return Regraded(regraded, scores, changes, unknown)
