"""Hostile PowerShell output for the Windows GPU and memory reader: edits, made here, of the
replayed Arc A770 machine (tests/fixtures/machines/windows-arc-a770-16gb, SOURCE.md there)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gptoss_doctor.install.resources import resources
from gptoss_doctor.install.verdict import assess
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


# Panther Lake's integrated graphics: PCI id 0xB080 is on the kernel's INTEL_PTL_IDS list
# (torvalds/linux include/drm/intel/pciids.h); Windows names it "Intel(R) Arc(TM) B390 GPU"
# (public clinfo and PyTorch XPU listings). Its driver reports a small dedicated carve-out.
PTL = {"Name": "Intel(R) Arc(TM) B390 GPU", "AdapterRAM": 2147479552,
       "PNPDeviceID": "PCI\\VEN_8086&DEV_B080&SUBSYS_0&REV_04"}


@pytest.mark.parametrize("size", [128 * 1024**2, 2147479552, 16 * 1024**3])
def test_an_integrated_arc_named_like_a_card_is_integrated(size: int) -> None:
    facts = windows.parse(json.dumps({"video": [PTL], "adapters": [
        {"DriverDesc": PTL["Name"], "MatchingDeviceId": "pci\\ven_8086&dev_b080",
         "HardwareInformation.qwMemorySize": size}]}))
    assert facts is not None
    (gpu,), _ = windows.gpus(facts, skip_nvidia=False)
    assert (gpu.discrete, gpu.unified_memory, gpu.vram_total_bytes) == (False, True, None)


def test_a_laptop_with_an_integrated_arc_is_planned_on_the_cpu(tmp_path: Path) -> None:
    folder = tmp_path / "machine"
    shutil.copytree(A770, folder)
    (folder / "commands" / "powershell.out").write_text(json.dumps({"video": [PTL], "adapters": [
        {"DriverDesc": PTL["Name"], "HardwareInformation.qwMemorySize": 16 * 1024**3}]}))
    snap = snapshot(ReplaySources(folder), current({"HOME": "/h"}))
    assert resources(snap).backend == "CPU"
    assert {v.placement for v in assess(snap).verdicts if v.can_run} <= {"cpu"}


def test_a_discrete_arc_is_still_told_by_its_pci_id() -> None:
    facts = windows.parse((A770 / "commands" / "powershell.out").read_text())
    assert facts is not None
    (gpu,), _ = windows.gpus(facts, skip_nvidia=False)
    assert gpu.discrete and gpu.vram_total_bytes == 16 * 1024**3
