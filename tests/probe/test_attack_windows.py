"""Hostile PowerShell output for the Windows GPU and memory reader: edits, made here, of the
replayed Arc A770 machine (tests/fixtures/machines/windows-arc-a770-16gb, SOURCE.md there)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptoss_doctor.probe import windows
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES

A770 = MACHINES / "windows-arc-a770-16gb"


@pytest.mark.parametrize("text", ["[" * 100_000, '{"video": ' + "[" * 100_000])
def test_deeply_nested_json_is_not_the_scripts_output(text: str) -> None:
    assert windows.parse(text) is None


def test_a_machine_answering_deeply_nested_json_is_probed_without_its_gpus(
        tmp_path: Path) -> None:
    folder = tmp_path / "machine"
    shutil.copytree(A770, folder)
    (folder / "commands" / "powershell.out").write_text("[" * 100_000)
    snap = snapshot(ReplaySources(folder), current({"HOME": "/h"}))
    assert snap.gpus == ()
