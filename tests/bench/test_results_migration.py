"""Results files written before the typed records (schema 1) still load, render and
regrade: the migration table upgrades them to schema 2 before validation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_doctor.bench import results
from gptoss_doctor.bench.records import EngineConfig
from gptoss_doctor.reports.html import render

from conftest import FIXTURES

V1_FILES = sorted((FIXTURES / "results").glob("*.json"))


def test_the_recorded_fixtures_are_version_1_files() -> None:
    """They were written by the version before this schema (kept as they were)."""
    versions = {json.loads(p.read_text())["schema_version"] for p in V1_FILES}
    assert versions == {1} and len(V1_FILES) >= 4


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.stem)
def test_version_1_files_load_as_version_2(path: Path) -> None:
    old = json.loads(path.read_text())
    record = results.load(path)
    assert record["schema_version"] == results.SCHEMA_VERSION == 2
    engine_keys = {f for f in EngineConfig.__dataclass_fields__ if f != "engine"}
    assert engine_keys <= set(record["config"])  # every engine setting, null where none
    for key, value in old["config"].items():  # nothing the old file said is lost
        assert record["config"][key] == value
    assert record["model"]["file_name"] == old["model"]["file_name"]
    if "endpoint" not in old:
        assert "load_buffers" in record and "overridden_tensors" in record


def test_version_1_files_render_in_one_page() -> None:
    records = [results.load(p) for p in V1_FILES]
    page = render(records, baseline=0, verdicts=[[] for _ in records])
    for record in records:
        assert record["model"]["file_name"] in page


def test_a_version_1_tools_file_regrades_the_same(tmp_path: Path) -> None:
    source = FIXTURES / "results" / "synthetic-tiny-tools.json"
    out = tmp_path / "regraded.json"
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "tools", "--regrade",
                           str(source), "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "every grade reproduced" in done.stderr
    old = json.loads(source.read_text())
    new = json.loads(out.read_text())
    assert new["schema_version"] == 2
    assert [a["grade"] for a in new["attempts"]] == [a["grade"] for a in old["attempts"]]
    assert new["scores"] == old["scores"]


def test_a_newer_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    record = json.loads(V1_FILES[0].read_text())
    record["schema_version"] = results.SCHEMA_VERSION + 1
    path = tmp_path / "future.json"
    path.write_text(json.dumps(record))
    with pytest.raises(results.ResultsError, match="reads up to 2"):
        results.load(path)
