"""`gptoss-doctor bench tools` end to end on the tiny synthetic gpt-oss, regrade, bad input.

The usage errors stop before any engine loads: they are the only tests here not marked
``llama``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from gptoss_doctor.bench import grade, harmony, results, synth, tool_run, tool_suite
from gptoss_doctor.bench.llama_engine import LlamaEngine
from gptoss_doctor.load_settings import LoadSettings

from conftest import FIXTURES
from forced import run_kv_to_file


def tools(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "tools", *args],
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_synthetic("tiny", tmp_path_factory.mktemp("m") / "tiny.gguf").path


@pytest.mark.llama
def test_whole_suite_on_the_tiny_model_then_regrade(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "tools.json"
    done = tools("--model", str(tiny), "--max-tokens", "12", "--repeats", "2", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "pass@2" in done.stdout and "overall" in done.stdout
    record = results.load(out)
    jsonschema.validate(record, results.schema())
    suite = tool_suite.load_suite()
    assert record["suite"] == "tools" and record["status"] == "complete"
    assert record["config"]["renderer"] == "openai-harmony"
    assert record["config"]["suite"] == {"name": suite.name, "sha256": suite.sha256,
                                         "cases": len(suite.cases),
                                         "graders": grade.grader_versions()}
    attempts = record["attempts"]
    assert len(attempts) == 2 * len(suite.cases)
    assert {(a["case"], a["attempt"]) for a in attempts} == {
        (c.id, k) for c in suite.cases for k in (0, 1)}
    for attempt in attempts:  # random weights: failures, but every one finished and graded
        assert attempt["end"] in tool_run.END_REASONS and attempt["end"] != "failed"
        assert attempt["grade"]["passed"] or attempt["grade"]["failure"] in grade.FAILURES
        for turn in attempt["turns"]:
            assert 1 <= len(turn["completion_ids"]) <= 12
            assert turn["completion_text"] == harmony.decode(turn["completion_ids"])
    # sampling differs between the two attempts of a case (seed + attempt)
    first = {a["case"]: a["turns"][0]["completion_ids"] for a in attempts if a["attempt"] == 0}
    second = {a["case"]: a["turns"][0]["completion_ids"] for a in attempts if a["attempt"] == 1}
    assert first != second
    overall = record["scores"]["overall"]
    assert overall["cases"] == len(suite.cases) and overall["attempts"] == len(attempts)
    assert sum(overall["failures"].values()) == sum(not a["grade"]["passed"] for a in attempts)
    assert set(record["scores"]["by_category"]) == set(tool_suite.CATEGORIES)

    again = tmp_path / "regraded.json"
    regraded = tools("--regrade", str(out), "-o", str(again), "--json")
    assert regraded.returncode == 0, regraded.stderr
    assert "every grade reproduced" in regraded.stderr
    printed = json.loads(regraded.stdout)
    assert printed == results.load(again)
    assert [a["grade"] for a in printed["attempts"]] == [a["grade"] for a in attempts]
    assert printed["scores"] == record["scores"] and printed["regraded"]["changes"] == []


@pytest.mark.llama
def test_a_forced_act_loop_through_the_real_engine(tiny: Path) -> None:
    engine = LlamaEngine(tiny, LoadSettings(n_ctx=4096, n_threads=2))
    try:
        run_kv_to_file(engine)
    finally:
        engine.close()


@pytest.mark.llama
def test_a_recipe_supplies_the_model_and_its_settings(tmp_path: Path, tiny: Path) -> None:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({
        "kind": "gptoss-doctor/recipe", "schema_version": 1, "engine": "llama.cpp",
        "model_path": str(tiny), "load_settings": {
            "n_ctx": 131072, "n_gpu_layers": 0, "flash_attn": True, "swa_full": False,
            "use_mmap": True, "n_ubatch": 256, "n_batch": 1024}}))
    out = tmp_path / "r.json"
    done = tools("--recipe", str(recipe), "--category", "irrelevance", "--max-tokens", "4",
                 "-o", str(out))
    assert done.returncode == 0, done.stderr
    config = results.load(out)["config"]
    assert config["settings_source"] == f"the recipe {recipe}"
    assert (config["use_mmap"], config["n_ubatch"], config["n_batch"]) == (True, 256, 1024)
    assert config["n_ctx"] == 16384 and config["categories"] == ["irrelevance"]


@pytest.mark.parametrize(("args", "code", "message"), [
    pytest.param((), 2, "exactly one of", id="no model given"),
    pytest.param(("--synthetic", "tiny", "--regrade", "x.json"), 2, "exactly one of",
                 id="two sources"),
    pytest.param(("--synthetic", "tiny", "--category", "bogus"), 2, "unknown category",
                 id="an unknown category"),
    pytest.param(("--regrade", str(FIXTURES / "results" / "synthetic-tiny-cpu.json")), 2,
                 "speed results, not tool-use", id="regrading a speed results file"),
])
def test_usage_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], code: int,
                                   message: str) -> None:
    done = tools(*args)
    assert done.returncode == code and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.llama
def test_bad_files_fail_in_one_line_without_results(tmp_path: Path, smollm_gguf: Path) -> None:
    out = tmp_path / "never.json"
    done = tools("--model", str(smollm_gguf), "-o", str(out))
    assert done.returncode == 2 and "not gpt-oss" in done.stderr
    assert not out.exists() and len(done.stderr.strip().splitlines()) == 1
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    done = tools("--regrade", str(junk))
    assert done.returncode == 2 and "is not a JSON results file" in done.stderr
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"kind": "something/else"}))
    done = tools("--recipe", str(recipe), "-o", str(out))
    assert done.returncode == 2 and "is not a gptoss-doctor recipe" in done.stderr
    assert not out.exists()
