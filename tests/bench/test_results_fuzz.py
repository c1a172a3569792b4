"""Hostile results files: what ``load`` accepts renders (and regrades); the rest is refused
in one line.

The explicit cases are the ones found by hand (GPU entries that are not objects, a CPU
without flags, ``os: {}``, a GPU without a name, an integer model name, a string roofline,
NaN and Infinity, 100,000 levels of nesting, an energy section without its notes); the
property test mutates the recorded results files (``tests/fixtures/results/`` and
``results-energy/``) at random paths, and the command line must turn hostile files into one
line and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from gptoss_doctor.bench import regrade, results, tool_suite
from gptoss_doctor.probe.model import SCHEMA_VERSION as SNAPSHOT_VERSION
from gptoss_doctor.probe.model import (
    AppleInfo,
    CpuInfo,
    DiskInfo,
    GpuInfo,
    HardwareSnapshot,
    MemoryInfo,
    OsInfo,
    SoftwareInfo,
)
from gptoss_doctor.reports.html import render

from conftest import FIXTURES
from hostile_json import DEEP, DEEP_TEXT, FUZZ, assert_one_line, write_mutated

SEEDS = sorted([*(FIXTURES / "results").glob("*.json"),
                *(FIXTURES / "results-energy").glob("*.json")])
SPEED = FIXTURES / "results" / "synthetic-tiny-cpu.json"
TOOLS = FIXTURES / "results" / "synthetic-tiny-tools.json"
ENDPOINT = FIXTURES / "results" / "endpoint-lmstudio-fake.json"
ENERGY = FIXTURES / "results-energy" / "synthetic-tiny-cpu-h100-throttled.json"
SNAPSHOTS = sorted((FIXTURES / "snapshots").glob("*.json"))
_GPU = json.loads((FIXTURES / "snapshots" / "rtx4090-24gb.json").read_text())["gpus"][0]
CLI = Path(sys.executable).with_name("gptoss-doctor")


def _changed(seed: Path, change: Callable[[dict[str, Any]], object]) -> Callable[[], str]:
    def content() -> str:
        record = json.loads(seed.read_text())
        change(record)
        return json.dumps(record).replace(json.dumps(DEEP), DEEP_TEXT)
    return content


def _set(section: str, **values: Any) -> Callable[[dict[str, Any]], object]:
    return lambda record: record[section].update(values)


def _gpus(value: Any) -> Callable[[dict[str, Any]], object]:
    return lambda record: record["machine"].update(gpus=value)


def _accepted_or_refused(path: Path) -> dict[str, Any] | None:
    """The loaded record, checked to render (and regrade); None when refused in one line."""
    try:
        record = results.load(path)
    except results.ResultsError as exc:
        assert_one_line(exc)
        return None
    reference = results.load(TOOLS if record["suite"] == "tools" else SPEED)
    render([record])
    render([reference, record], baseline=1)
    if record["suite"] == "tools":
        regrade.regrade(record["attempts"], tool_suite.load_suite(), record["scores"])
    return record


@pytest.mark.parametrize(("content", "message"), [
    pytest.param(_changed(SPEED, _gpus(["RTX 4090"])), "machine/gpus/0: 'RTX 4090' is not",
                 id="GPU entries that are not objects"),
    pytest.param(_changed(SPEED, lambda r: r["machine"]["cpu"].pop("flags")),
                 "machine/cpu: 'flags' is a required", id="a CPU without flags"),
    pytest.param(_changed(SPEED, _set("machine", os={})), "machine/os: 'system' is a required",
                 id="os is an empty object"),
    pytest.param(_changed(SPEED, _gpus([{"vendor": "nvidia", "source": "nvml"}])),
                 "machine/gpus/0: 'name' is a required", id="a GPU without a name"),
    pytest.param(_changed(SPEED, _gpus([{**_GPU, "name": "x" * 5000}])),
                 "machine/gpus/0/name", id="a 5000-character GPU name"),
    pytest.param(_changed(SPEED, _gpus([{**_GPU, "name": "\x1b[2JRTX"}])),
                 "machine/gpus/0/name", id="a terminal escape in a GPU name"),
    pytest.param(_changed(SPEED, _set("model", name=20)), "model/name",
                 id="an integer model name"),
    pytest.param(_changed(SPEED, lambda r: r.update(roofline="fast")), "roofline",
                 id="a string roofline"),
    pytest.param(_changed(SPEED, lambda r: r["tests"][0].update(mean_ts=float("nan"))),
                 "NaN is not a JSON number", id="NaN"),
    pytest.param(_changed(SPEED, lambda r: r["tests"][0].update(samples_ts=[float("inf")])),
                 "Infinity is not a JSON number", id="Infinity"),
    pytest.param(_changed(SPEED, _set("model", name=DEEP)), "nested deeper than",
                 id="nested 100,000 deep"),
    pytest.param(_changed(TOOLS, lambda r: r["attempts"][0].update(turns=[None])),
                 "attempts/0/turns/0", id="a tool-use turn that is not an object"),
    pytest.param(_changed(TOOLS, lambda r: r["config"].update(repeats="3")), "config/repeats",
                 id="repeats as text"),
    pytest.param(_changed(ENDPOINT, lambda r: r["endpoint"].update(url="http://[::1/v1")),
                 "endpoint/url: Invalid IPv6 URL", id="a URL the report cannot show"),
    pytest.param(lambda: '{"kind": "gptoss-doctor/results", "kind": "other"}',
                 "the key 'kind' appears twice", id="a key given twice"),
    pytest.param(_changed(ENERGY, lambda r: r["energy"].pop("notes")), "energy: 'notes' is a",
                 id="an energy section without its notes"),
    pytest.param(_changed(ENERGY, lambda r: r["conditions"]["gpus"][0].pop("sm_clock_max_mhz")),
                 "conditions/gpus/0: 'sm_clock_max_mhz'", id="a GPU's conditions without a clock"),
])
def test_hand_found_malformed_files_are_refused_in_one_line(tmp_path: Path,
                                                            content: Callable[[], str],
                                                            message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content())
    with pytest.raises(results.ResultsError) as info:
        results.load(path)
    assert message in info.value.message
    assert_one_line(info.value)


def _field_names(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def test_the_machine_section_is_the_snapshot_the_probe_writes(tmp_path: Path) -> None:
    """The schema's ``machine`` has probe/model.py's fields, and every recorded snapshot
    (tests/fixtures/snapshots/) fits it."""
    defs = results.schema()["$defs"]
    machine = defs["snapshot"]["properties"]
    assert set(machine) == _field_names(HardwareSnapshot)
    assert set(defs["gpu"]["properties"]) == _field_names(GpuInfo)
    for section, cls in [("os", OsInfo), ("cpu", CpuInfo), ("memory", MemoryInfo),
                         ("disk", DiskInfo), ("apple", AppleInfo), ("software", SoftwareInfo)]:
        assert set(machine[section]["properties"]) == _field_names(cls), section
    assert machine["schema_version"] == {"const": SNAPSHOT_VERSION}
    for seed in SNAPSHOTS:
        record = json.loads(SPEED.read_text())
        record["machine"] = json.loads(seed.read_text())
        path = tmp_path / "r.json"
        path.write_text(json.dumps(record))
        assert results.load(path)["machine"] == record["machine"]


def test_files_over_the_size_cap_are_not_read(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "LIMITS", dataclasses.replace(results.LIMITS, max_bytes=4096))
    with pytest.raises(results.ResultsError, match="is larger than 4096 bytes"):
        results.load(SPEED)


@FUZZ
@given(data=st.data())
def test_any_mutated_results_file_renders_or_is_refused_in_one_line(tmp_path: Path,
                                                                   data: st.DataObject) -> None:
    path = tmp_path / "r.json"
    write_mutated(data, SEEDS, path)
    event("loaded and rendered" if _accepted_or_refused(path) else "refused in one line")


@pytest.mark.parametrize("content", [
    pytest.param(_changed(SPEED, _set("model", name=DEEP)), id="nested 100,000 deep"),
    pytest.param(_changed(SPEED, _gpus([{"vendor": "nvidia", "source": "nvml"}])),
                 id="a GPU without a name"),
    pytest.param(_changed(SPEED, _set("model", name="\ud800")), id="a lone surrogate"),
    pytest.param(_changed(SPEED, lambda r: r.update(roofline="fast")), id="a string roofline"),
    pytest.param(_changed(SPEED, lambda r: r["tests"][0].update(mean_ts=float("nan"))),
                 id="NaN"),
    pytest.param(lambda: "fifo", id="a FIFO"),
])
def test_report_says_one_line_and_exits_2(tmp_path: Path, content: Callable[[], str]) -> None:
    path = tmp_path / "r.json"
    text = content()
    if text == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs POSIX FIFOs")
        os.mkfifo(path)  # nobody writes: a reader that opened it would wait forever
    else:
        path.write_text(text)
    out = tmp_path / "report.html"
    done = subprocess.run([str(CLI), "report", str(path), "-o", str(out)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()
