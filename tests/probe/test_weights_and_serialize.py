"""Weights already on disk (real folders), and snapshot files as untrusted input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gptoss_doctor.errors import SnapshotError
from gptoss_doctor.probe import serialize
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.probe.software import find_weights
from gptoss_doctor.probe.sources import LiveSources
from gptoss_doctor.settings import current

from conftest import MACHINES


def _touch(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)


def test_weights_are_found_in_the_hf_cache_lm_studio_and_models_dir(tmp_path: Path) -> None:
    hub = tmp_path / "hf" / "hub"
    blob = hub / "models--ggml-org--gpt-oss-20b-GGUF" / "blobs" / "abc"
    _touch(blob, 4096)
    snap_dir = hub / "models--ggml-org--gpt-oss-20b-GGUF" / "snapshots" / "rev1"
    snap_dir.mkdir(parents=True)
    (snap_dir / "gpt-oss-20b-mxfp4.gguf").symlink_to(blob)
    lms = tmp_path / "lms" / "models" / "lmstudio-community" / "gpt-oss-120b-GGUF"
    _touch(lms / "gpt-oss-120b-MXFP4-00001-of-00002.gguf", 100)
    models = tmp_path / "models"
    _touch(models / "gpt-oss-120b-mxfp4-00001-of-00003.gguf", 10)
    _touch(models / "gpt-oss-120b-mxfp4-00002-of-00003.gguf", 10)
    _touch(models / "gpt-oss-120b-mxfp4-00003-of-00003.gguf", 10)
    _touch(models / "unrelated.gguf", 10)
    found = find_weights(LiveSources(), str(tmp_path / "hf"), str(tmp_path / "lms"),
                         str(models))
    by_location = {w.location: w for w in found}
    assert set(by_location) == {"hf-cache", "lmstudio", "models-dir"}
    assert by_location["hf-cache"].model == "gpt-oss-20b"
    assert by_location["hf-cache"].size_bytes == 4096  # the blob behind the symlink
    assert by_location["hf-cache"].complete
    assert by_location["lmstudio"].model == "gpt-oss-120b"
    assert not by_location["lmstudio"].complete  # 1 of 2 shards
    assert by_location["models-dir"].complete and by_location["models-dir"].size_bytes == 30
    assert len(found) == 3


def _fixture_snapshot() -> object:
    return snapshot(ReplaySources(MACHINES / "rtx4090-24gb"), current({"HOME": "/h"}))


def test_snapshot_round_trips_through_json(tmp_path: Path) -> None:
    snap = _fixture_snapshot()
    path = tmp_path / "snap.json"
    serialize.save(snap, path)  # type: ignore[arg-type]
    assert serialize.load(path) == snap
    assert not list(tmp_path.glob(".*.tmp"))


def _mutated(tmp_path: Path, mutate: object) -> Path:
    data = serialize.to_dict(_fixture_snapshot())  # type: ignore[arg-type]
    mutate(data)  # type: ignore[operator]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("mutate", "message"), [
    pytest.param(lambda d: d.update(extra=1), "unknown field 'extra'", id="unknown top field"),
    pytest.param(lambda d: d["gpus"][0].update(vram_total_bytes=-5),
                 "gpus[0].vram_total_bytes: must not be negative", id="negative vram"),
    pytest.param(lambda d: d["memory"].update(ram_total_bytes="lots"),
                 "memory.ram_total_bytes: expected an integer", id="string where int"),
    pytest.param(lambda d: d["os"].pop("system"), "os.system: missing", id="missing field"),
    pytest.param(lambda d: d["cpu"].update(flags="avx2"), "cpu.flags: expected a list",
                 id="flags not a list"),
    pytest.param(lambda d: d.update(schema_version=99), "newer than this", id="future schema"),
    pytest.param(lambda d: d["os"].update(is_wsl=1), "expected true or false", id="int as bool"),
])
def test_bad_snapshots_are_refused_naming_the_field(tmp_path: Path, mutate: object,
                                                    message: str) -> None:
    with pytest.raises(SnapshotError, match=re.escape(message)):
        serialize.load(_mutated(tmp_path, mutate))


def test_non_json_and_missing_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(SnapshotError, match="not valid JSON"):
        serialize.load(bad)
    with pytest.raises(SnapshotError, match="cannot read"):
        serialize.load(tmp_path / "missing.json")
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SnapshotError, match="not UTF-8"):
        serialize.load(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(SnapshotError, match="expected an object"):
        serialize.load(bad)
