"""Results files: atomic save, loading with schema validation, refusal of foreign or new files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.bench import results

from conftest import FIXTURES

RECORDED = FIXTURES / "results" / "smollm2-cpu-2threads.json"


def _recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


def test_round_trip_and_no_temp_file_left(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    record = results.load(RECORDED)  # upgraded to the current schema on the way in
    results.save(record, path)
    assert results.load(path) == record
    assert not list(tmp_path.glob(".r.json*"))


def _broken(mutate: Any) -> str:
    data = _recorded()
    mutate(data)
    return json.dumps(data)


@pytest.mark.parametrize(("content", "message"), [
    pytest.param("{", "not a JSON results file", id="not JSON"),
    pytest.param(json.dumps({"kind": "something-else"}), "not a gptoss-doctor results file",
                 id="another tool's JSON"),
    pytest.param(_broken(lambda d: d.update(schema_version=9)), "upgrade", id="newer schema"),
    pytest.param(_broken(lambda d: d.update(schema_version="1")), "no valid schema_version",
                 id="schema version not a number"),
    pytest.param(_broken(lambda d: d.pop("tests")), "lacks tests", id="missing section"),
    pytest.param(_broken(lambda d: d["tests"][0].update(kind="xx")),
                 "tests/0/kind", id="a malformed test names the field"),
    pytest.param(_broken(lambda d: d["model"].update(sha256="nope")), "model/sha256",
                 id="a bad hash names the field"),
])
def test_bad_results_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(results.ResultsError) as info:
        results.load(path)
    assert message in info.value.message + (info.value.hint or "")


def test_key_properties_name_what_makes_runs_comparable() -> None:
    record = {"suite": "speed",
              "machine": {"cpu": {"brand": "AMD EPYC"}, "gpus": [{"name": "RTX 4090"}]},
              "model": {"sha256": "ab", "file_name": "m.gguf", "synthetic": True},
              "config": {"engine": "llama.cpp", "threads": 2, "flash_attn": True},
              "software": {"backends": ["CUDA", "CPU"]},
              "tests": [{"name": "pp512"}, {"name": "tg128"}]}
    keys = results.key_properties(record)
    assert keys["gpus"] == ["RTX 4090"] and keys["model_sha256"] == "ab"
    assert keys["tests"] == ["pp512", "tg128"] and keys["backends"] == ["CUDA", "CPU"]


def test_tool_use_key_properties_add_renderer_sampling_and_the_cases() -> None:
    record = {"suite": "tools", "machine": {"cpu": {"brand": "AMD EPYC"}, "gpus": []},
              "model": {"sha256": "ab", "file_name": "m.gguf", "synthetic": False},
              "config": {"engine": "llama.cpp", "threads": 2, "renderer": "openai-harmony",
                         "reasoning": "high", "sampling": {"temperature": 1.0, "top_p": 1.0,
                                                           "seed": 0},
                         "max_tokens": 64, "suite": {"sha256": "cd"}},
              "software": {"backends": ["CPU"]},
              "attempts": [{"case": "b"}, {"case": "a"}, {"case": "b"}]}
    keys = results.key_properties(record)
    assert keys["tests"] == ["a", "b"] and keys["suite_sha256"] == "cd"
    assert (keys["renderer"], keys["reasoning"], keys["max_tokens"]) == (
        "openai-harmony", "high", 64)
