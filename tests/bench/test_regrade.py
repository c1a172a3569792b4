"""Regrade: everything that does not reproduce is reported, and the CLI exits 3 on it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.app.tools import REGRADE_CHANGED
from gptoss_doctor.bench import grade, regrade, tool_run, tool_suite

from crafted import SETTINGS, ScriptedTurns

SUITE = tool_suite.load_suite()
FIXTURES = Path(__file__).parent.parent / "fixtures" / "results"
CALC = ('<|channel|>commentary to=functions.calculate <|constrain|>json'
        '<|message|>{"expression": "987 * 654 + 321"}<|call|>')


def attempts() -> list[dict[str, Any]]:
    runs = [("act-calculate-and-answer", [CALC, "<|channel|>final<|message|>645819<|return|>"]),
            ("simple-time-tokyo", ['<|channel|>commentary to=functions.get_time <|constrain|>'
                                   'json<|message|>{"timezone": "Asia/Tokyo"}<|call|>']),
            ("irrelevance-haiku", ["<|channel|>final<|message|>Leaves fall.<|return|>"])]
    done = []
    for case_id, turns in runs:
        case = tool_suite.case_by_id(SUITE, case_id)
        assert case is not None
        done.append(tool_run.run_attempt(ScriptedTurns(turns), SUITE, case, SETTINGS, 0,
                                         clock=lambda: 0.0))
    return done


def again(stored: list[dict[str, Any]]) -> regrade.Regraded:
    return regrade.regrade(stored, SUITE, grade.scores(tool_run.scored(attempts())))


def test_untouched_attempts_reproduce() -> None:
    done = again(attempts())
    assert (done.changes, done.unknown) == ([], [])


def edit(path: str, value: Any) -> list[dict[str, Any]]:
    stored = copy.deepcopy(attempts())
    target: Any = stored
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    target[int(last) if last.isdigit() else last] = value
    return stored


TAMPERED = [
    pytest.param("0.turns.1.completion_text", "<|channel|>final<|message|>42<|return|>",
                 "completion_text is not the decoding", id="an edited completion text"),
    pytest.param("0.turns.0.stopped_on", "<|return|>", "stopped on <|call|>, stored as",
                 id="a stop reason the last token does not give"),
    pytest.param("0.end", "turn_limit", "end turn_limit -> final", id="an end the loop would "
                 "not have reached"),
    pytest.param("1.grade.quirks", ["recipient_in_role"], "quirks ['recipient_in_role'] -> []",
                 id="a quirk that is no longer one"),
    pytest.param("1.grade.strict_passed", False, "strict_passed False -> True",
                 id="a strict flag"),
    pytest.param("2.category", "simple", "category simple -> irrelevance",
                 id="a category label that is not the suite's"),
]


@pytest.mark.parametrize(("path", "value", "reported"), TAMPERED)
def test_a_tampered_field_is_reported(path: str, value: Any, reported: str) -> None:
    done = again(edit(path, value))
    assert any(reported in change for change in done.changes), done.changes


def test_regraded_texts_come_from_the_token_ids() -> None:
    done = again(edit("0.turns.1.completion_text", "edited"))
    assert done.attempts[0]["turns"][1]["completion_text"].endswith("645819<|return|>")


def test_moved_scores_are_reported_and_unknown_cases_are_listed_apart() -> None:
    stored = attempts()
    stored.append({**stored[2], "case": "irrelevance-retired"})
    scores = grade.scores(tool_run.scored(stored))
    scores["overall"]["pass_rate"] = 0.1
    done = regrade.regrade(stored, SUITE, scores)
    assert done.unknown == ["irrelevance-retired"]
    assert done.changes == ["scores: overall.pass_rate 0.1 -> 1.0"]


def regrade_cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "tools",
                           "--regrade", str(path)], capture_output=True, text=True)


def test_the_command_exits_3_when_anything_changed(tmp_path: Path) -> None:
    record = json.loads((FIXTURES / "synthetic-tiny-tools.json").read_text())
    record["attempts"][0]["grade"]["quirks"] = ["call_on_analysis"]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(record))
    done = regrade_cli(path)
    assert done.returncode == REGRADE_CHANGED == 3, done.stderr
    assert "changed: " in done.stderr and "quirks ['call_on_analysis'] -> []" in done.stderr
    assert "graded with openai-harmony unrecorded -> " in done.stderr
