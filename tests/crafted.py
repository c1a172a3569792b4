"""Hand-written gpt-oss completions through the real tool loop: how often the grader agrees.

``tests/fixtures/crafted/completions.json`` holds completions written by hand for every
case of the suite — the standard harmony form, the known model quirks, right answers
written differently, clearly wrong answers — each with the verdict a careful human grader
gives (pass, and strict pass). Each is fed turn by turn to ``tool_run.run_attempt`` through
a scripted engine, so the loop, the tool answers and the grade are the real ones.

``python tests/crafted.py`` prints the agreement figure and every disagreement (exit 1 when
there is a false pass); ``tests/bench/test_grader_crafted.py`` asserts it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gptoss_doctor.bench import harmony, tool_run, tool_suite

DATA = Path(__file__).parent / "fixtures" / "crafted" / "completions.json"
SETTINGS = tool_run.RunSettings(max_tokens=4096, sampling=tool_run.Sampling(temperature=0.0))


class _Script:
    """One attempt's turns: each ``generate`` hands back the next scripted turn's tokens."""

    def __init__(self, turns: Sequence[str]) -> None:
        self.turns = [harmony.encode(t) for t in turns]
        self.tokens: list[int] = []

    def feed(self, prompt: Sequence[int]) -> bool:
        self.tokens = list(prompt)
        return True

    def generate(self, max_tokens: int, sampling: tool_run.Sampling, rng: np.random.Generator,
                 deadline: float, clock: Callable[[], float]) -> tuple[list[int], str]:
        tokens = self.turns.pop(0) if self.turns else []
        stopped = tool_run.STOP_NAMES.get(tokens[-1], "max_tokens") if tokens else "max_tokens"
        return tokens, stopped


class ScriptedTurns:
    """A turn engine (``tool_run.TurnEngine``) that writes the scripted completions."""

    def __init__(self, turns: Sequence[str]) -> None:
        self.turns = turns
        self.prompts: list[list[int]] = []

    def generation(self) -> _Script:
        return _Script(self.turns)


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    kind: str
    expect_pass: bool
    expect_strict: bool
    passed: bool
    strict_passed: bool
    failure: str | None
    reason: str

    @property
    def agrees(self) -> bool:
        return (self.passed, self.strict_passed) == (self.expect_pass, self.expect_strict)

    @property
    def false_pass(self) -> bool:
        return (self.passed and not self.expect_pass) or \
            (self.strict_passed and not self.expect_strict)


def entries() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))["completions"]
    return data


def run(entry: dict[str, Any]) -> Outcome:
    suite = tool_suite.load_suite()
    case = tool_suite.case_by_id(suite, entry["case"])
    assert case is not None, entry["case"]
    attempt = tool_run.run_attempt(ScriptedTurns(entry["turns"]), suite, case, SETTINGS, 0)
    got = attempt["grade"]
    return Outcome(entry["id"], entry["kind"], entry["expect_pass"], entry["expect_strict"],
                   got["passed"], got["strict_passed"], got["failure"], got["reason"])


def main() -> int:
    outcomes = [run(e) for e in entries()]
    agree = sum(o.agrees for o in outcomes)
    false_passes = [o for o in outcomes if o.false_pass]
    for o in outcomes:
        if not o.agrees:
            print(f"{'FALSE PASS' if o.false_pass else 'false fail'}: {o.id} ({o.kind}): "
                  f"passed={o.passed} strict={o.strict_passed} {o.failure}: {o.reason}")
    print(f"agreement: {agree}/{len(outcomes)}; false passes: {len(false_passes)}")
    return 1 if false_passes else 0


if __name__ == "__main__":
    sys.exit(main())
