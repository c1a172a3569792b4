"""Hostile snapshot files: each loads as a valid snapshot or is refused in one line.

The explicit cases are the ones found by hand (100,000 levels of nesting, an integer past
1e308, a lone surrogate, ``schema_version: 0``, more free VRAM than total, a 100 MB GPU
name, a FIFO and ``/dev/zero``); the property test mutates recorded snapshots
(``tests/fixtures/snapshots/``) at random paths, and the command line must turn the same
files into one line and exit code 2.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from gptoss_doctor.errors import SnapshotError
from gptoss_doctor.probe import serialize
from gptoss_doctor.probe.model import HardwareSnapshot

from conftest import FIXTURES
from hostile_json import DEEP, DEEP_TEXT, FUZZ, assert_one_line, write_mutated

SEEDS = sorted((FIXTURES / "snapshots").glob("*.json"))
SEED = FIXTURES / "snapshots" / "rtx4090-24gb.json"
CLI = Path(sys.executable).with_name("gptoss-doctor")


def _seed() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SEED.read_text())
    return loaded


def _gpu(**changes: Any) -> str:
    data = _seed()
    data["gpus"][0].update(changes)
    return json.dumps(data).replace(json.dumps(DEEP), DEEP_TEXT)


def _top(**changes: Any) -> str:
    return json.dumps({**_seed(), **changes})


# (file content, what the one line says); contents are made when a test runs
HOSTILE = [
    pytest.param(lambda: _gpu(name=DEEP), "nested deeper than 16 levels",
                 id="nested 100,000 deep"),
    pytest.param(lambda: _gpu(vram_total_bytes=10**309), "out of range",
                 id="an integer above 1e308"),
    pytest.param(lambda: _gpu(name="RTX \ud800"), "lone UTF-16 surrogate",
                 id="a lone surrogate"),
    pytest.param(lambda: _top(schema_version=0), "they start at 1", id="schema_version 0"),
    pytest.param(lambda: _gpu(vram_free_bytes=25757220865),
                 "gpus[0].vram_free_bytes (25757220865) is larger than vram_total_bytes",
                 id="more free VRAM than total"),
    pytest.param(lambda: _gpu(name="\x1b]0;pwned\x07RTX"), "unprintable character U+001B",
                 id="a terminal escape in the name"),
    pytest.param(lambda: _gpu(vram_total_bytes=float("nan")), "NaN is not a JSON number",
                 id="NaN"),
    pytest.param(lambda: _gpu(name="x" * 5000), "a text of 5000 characters",
                 id="a 5000-character name"),
    pytest.param(lambda: _gpu(name="x" * 100_000_000), "is larger than 1 MiB",
                 id="a 100 MB GPU name"),
    pytest.param(lambda: _top(**{"k" * 3000: 1}), "unknown field 'kkkkkkkk",
                 id="a long unknown key"),
]


@pytest.mark.parametrize(("content", "message"), HOSTILE)
def test_hostile_snapshots_are_refused_in_one_line(tmp_path: Path, content: Callable[[], str],
                                                   message: str) -> None:
    path = tmp_path / "snap.json"
    path.write_text(content())
    with pytest.raises(SnapshotError) as info:
        serialize.load(path)
    assert message in info.value.message
    assert_one_line(info.value)


def test_the_checks_hold_for_dicts_given_directly() -> None:
    """``from_dict`` also reads the machine section of results files: same bounds."""
    data = _seed()
    data["gpus"][0]["name"] = "x" * 5000
    with pytest.raises(SnapshotError, match=r"gpus\[0\].name: longer than 4096"):
        serialize.from_dict(data)
    for huge in (2**64, 10**400, -(10**400)):
        data["gpus"][0].update(name="RTX", vram_total_bytes=huge)
        with pytest.raises(SnapshotError, match="out of range"):
            serialize.from_dict(data)


def _fifo(tmp_path: Path) -> Path:
    """A FIFO nobody writes to; a helper opens it for writing after 10 s, so that a
    loader that blocked in ``open`` fails this test instead of hanging it."""
    fifo = tmp_path / "snap.fifo"
    os.mkfifo(fifo)

    def unblock() -> None:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: the loader never opened it, as it should
            return
        os.close(fd)

    timer = threading.Timer(10, unblock)
    timer.daemon = True
    timer.start()
    return fifo


@pytest.mark.parametrize(("make", "message"), [
    pytest.param(_fifo, "is a FIFO (named pipe), not a file", id="a FIFO"),
    pytest.param(lambda _tmp: Path("/dev/zero"), "is a device, not a file", id="/dev/zero"),
    pytest.param(lambda tmp: tmp, "is a folder, not a file", id="a folder"),
])
def test_things_that_are_not_files_are_refused_before_reading(
        tmp_path: Path, make: Callable[[Path], Path], message: str) -> None:
    if not Path("/dev/zero").exists() or not hasattr(os, "mkfifo"):
        pytest.skip("needs POSIX FIFOs and /dev/zero")
    with pytest.raises(SnapshotError, match=re.escape(message)) as info:
        serialize.load(make(tmp_path))
    assert_one_line(info.value)


@FUZZ
@given(data=st.data())
def test_any_mutated_snapshot_loads_valid_or_is_refused_in_one_line(tmp_path: Path,
                                                                   data: st.DataObject) -> None:
    path = tmp_path / "snap.json"
    write_mutated(data, SEEDS, path)
    try:
        snap = serialize.load(path)
    except SnapshotError as exc:
        assert_one_line(exc)
        event("refused in one line")
        return
    event("loaded")
    assert isinstance(snap, HardwareSnapshot)
    assert serialize.from_dict(json.loads(serialize.dumps(snap))) == snap


@pytest.mark.parametrize(("content", "message"), HOSTILE[:7])
def test_the_command_line_says_one_line_and_exits_2(tmp_path: Path, content: Callable[[], str],
                                                    message: str) -> None:
    path = tmp_path / "snap.json"
    path.write_text(content())
    done = subprocess.run([str(CLI), "--snapshot", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""


def test_the_command_line_refuses_a_fifo_and_dev_zero_in_one_line(tmp_path: Path) -> None:
    if not Path("/dev/zero").exists() or not hasattr(os, "mkfifo"):
        pytest.skip("needs POSIX FIFOs and /dev/zero")
    for path in (_fifo(tmp_path), Path("/dev/zero")):
        done = subprocess.run([str(CLI), "--snapshot", str(path)], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 2 and "not a file" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
