"""Host memory bandwidth from the modules fitted (SMBIOS type 17 through dmidecode or
Win32_PhysicalMemory) and from a short measurement (issue 14).

The readings are transcribed from public bug reports (tests/fixtures/dimm/SOURCE.md); the
replayed machine is tests/fixtures/machines/cpu-only-64gb with a dmidecode output added.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from gptoss_doctor.app.doctor import needs_measurement, with_measured_bandwidth
from gptoss_doctor.app.feedback import Silent
from gptoss_doctor.install import predict
from gptoss_doctor.install.resources import resources
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe import dimm, membw
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.serialize import dumps, from_dict, to_dict
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import FIXTURES, MACHINES

MIB_100 = 100 * membw.MIB

DIMM = FIXTURES / "dimm"


def _modules(name: str) -> tuple[dimm.Module, ...]:
    return dimm.parse_dmidecode((DIMM / name).read_text())


def test_configured_rate_wins_and_empty_slots_are_skipped() -> None:
    (module,) = _modules("ryzen-7950x-ddr5.dmidecode")
    assert (module.rated_mts, module.configured_mts, module.mts) == (4800, 6000, 6000)
    assert module.size_bytes == 16 * 1024**3 and module.data_width_bits == 64
    found = dimm.bandwidth((module,), "dmidecode")
    assert found is not None and found.bytes_per_s == 6000e6 * 8
    assert "1 modules on 1 channels x 6000 MT/s x 64-bit" in found.source


@pytest.mark.parametrize(("name", "channel"), [
    ("threadripper-ddr4.dmidecode", "P0 CHANNEL A"),
    ("epyc-7002-ddr4.dmidecode", "P0_NODE0_CHANNEL2"),
])
def test_the_channel_comes_from_the_bank_locator(name: str, channel: str) -> None:
    (module,) = _modules(name)
    assert dimm.channel_of(module.slot) == channel and module.mts == 3200


def test_two_channels_of_a_server_add_up_at_the_configured_rate() -> None:
    modules = _modules("xeon-two-channels-ddr4.dmidecode")
    assert [m.mts for m in modules] == [2133, 2133]
    found = dimm.bandwidth(modules, "dmidecode")
    assert found is not None and found.bytes_per_s == 2 * 2133e6 * 8


def test_a_slot_that_names_no_channel_counts_one_module_as_one() -> None:
    (module,) = _modules("hp-proliant-ddr3.dmidecode")
    assert module.size_bytes == 4096 * 1024**2 and module.mts == 1067  # MHz read as MT/s
    found = dimm.bandwidth((module,), "dmidecode")
    assert found is not None and found.bytes_per_s == 1067e6 * 8
    assert "one channel per module assumed" in found.source
    assert dimm.bandwidth((module,) * 3, "dmidecode") is None  # could share channels


def test_windows_modules_on_one_channel_give_one_channel() -> None:
    modules = dimm.parse_win32_physical_memory((DIMM / "win32-physicalmemory.json").read_text())
    assert len(modules) == 2 and {m.size_bytes for m in modules} == {8 * 1024**3}
    found = dimm.bandwidth(modules, "Win32_PhysicalMemory")
    assert found is not None and found.bytes_per_s == 2400e6 * 8


@pytest.mark.parametrize("text", ["", "not json", "[1, null]", "[" * 100_000, '{"Capacity": -5}',
                                  '{"Capacity": 1, "Speed": 999999999}'])
def test_unusable_windows_output_gives_no_figure(text: str) -> None:
    assert dimm.bandwidth(dimm.parse_win32_physical_memory(text), "x") is None


def test_garbage_dmidecode_gives_no_figure() -> None:
    text = "Memory Device\n\tSize: 16 GB\n\tSpeed: 99999999 MT/s\n"
    assert dimm.bandwidth(dimm.parse_dmidecode(text), "x") is None
    assert dimm.parse_dmidecode("\x00\xff garbage\n\n\n") == ()


def _machine_with(tmp_path: Path, dmidecode: str | None, rc: int = 0) -> Path:
    folder = tmp_path / "machine"
    shutil.copytree(MACHINES / "cpu-only-64gb", folder)
    if dmidecode is not None:
        data = json.loads((folder / "machine.json").read_text())
        data.setdefault("which", {})["dmidecode"] = "/usr/sbin/dmidecode"
        (folder / "machine.json").write_text(json.dumps(data))
        (folder / "commands").mkdir(exist_ok=True)
        (folder / "commands" / "dmidecode.out").write_text(dmidecode)
        (folder / "commands" / "dmidecode.rc").write_text(str(rc))
    return folder


def test_a_readable_module_table_replaces_the_assumed_host_figure(tmp_path: Path) -> None:
    text = (DIMM / "xeon-two-channels-ddr4.dmidecode").read_text()
    snap = snapshot(ReplaySources(_machine_with(tmp_path, text)), current({"HOME": "/h"}))
    assert snap.memory.host_bandwidth_bytes_per_s == 2 * 2133e6 * 8
    assert from_dict(json.loads(dumps(snap))) == snap
    res = resources(snap)
    assert res.cpu_bandwidth.bytes_per_s == 2 * 2133e6 * 8 and not res.cpu_bandwidth.measured
    basis = assess(snap).verdict("20b").speed_basis or ""
    assert "read from dmidecode (SMBIOS type 17)" in basis


def test_without_root_dmidecode_fails_and_the_platform_figure_stays(tmp_path: Path) -> None:
    denied = "# dmidecode 3.5\n/sys/firmware/dmi/tables/smbios_entry_point: Permission denied\n"
    snap = snapshot(ReplaySources(_machine_with(tmp_path, denied, rc=1)),
                    current({"HOME": "/h"}))
    assert snap.memory.host_bandwidth_bytes_per_s is None
    assert "assumed" in resources(snap).cpu_bandwidth.source


def test_measurement_keeps_the_best_repetition_within_the_budget() -> None:
    # start, then per rep: its start, its end, the budget check; reps of 0.5, 0.2, 0.5 s
    ticks = iter([0.0, 0.0, 0.5, 0.5, 0.5, 0.7, 0.7, 0.7, 1.2, 1.2])
    copies: list[int] = []
    found = membw.measure(4, size_bytes=100 * membw.MIB, budget_s=1.0,
                          copy=lambda: copies.append(1), clock=lambda: next(ticks))
    assert found is not None and found.measured
    assert found.bytes_per_s == pytest.approx(2 * 100 * membw.MIB / 0.2)
    assert len(copies) == 4  # the untimed first touch and three timed copies
    assert "best of 3 copies of 100 MiB on 4 threads" in found.source
    once = membw.measure(2, size_bytes=MIB_100, budget_s=0.5, copy=lambda: None,
                         clock=iter([0.0, 0.1, 0.7, 0.7]).__next__)
    assert once is not None and "measured: one copy of 100 MiB on 2 threads" in once.source


def test_a_measured_rate_is_used_as_achieved_and_said() -> None:
    snap = snapshot(ReplaySources(MACHINES / "cpu-only-64gb"), current({"HOME": "/h"}))
    measured = with_measured_bandwidth(snap, Silent())
    assert measured.memory.host_bandwidth_measured
    assert (measured.memory.host_bandwidth_bytes_per_s or 0) > 0
    verdict = assess(measured).verdict("20b")
    assert "host memory, measured: " in (verdict.speed_basis or "")
    # Measured is what the CPU achieves: no fitted efficiency on top of it.
    host = predict.Workload("CPU", 0.0, None, 1e9, 50e9, 3.6e9, None)
    peak = predict.token_seconds(host)
    achieved = predict.token_seconds(replace(host, host_measured=True))
    assert peak is not None and achieved is not None
    overhead = predict.CONSTANTS.overhead_s("CPU")
    assert achieved - overhead == pytest.approx(1e9 / 50e9)
    assert peak - overhead == pytest.approx(1e9 / 50e9 / predict.CONSTANTS.host_efficiency)


def test_by_default_the_doctor_measures_only_where_a_plan_needs_host_ram_and_none_was_read(
        ) -> None:
    cpu_only = snapshot(ReplaySources(MACHINES / "cpu-only-64gb"), current({"HOME": "/h"}))
    assert cpu_only.memory.host_bandwidth_bytes_per_s is None
    assert needs_measurement(cpu_only)
    modules = replace(cpu_only, memory=replace(cpu_only.memory,
                                               host_bandwidth_bytes_per_s=51.2e9,
                                               host_bandwidth_source="read from dmidecode"))
    assert not needs_measurement(modules)
    h100 = snapshot(ReplaySources(MACHINES / "h100-80gb"), current({"HOME": "/h"}))
    assert not needs_measurement(h100)  # both models wholly in VRAM


def test_measure_bandwidth_flags_on_the_command_line(tmp_path: Path) -> None:
    saved = tmp_path / "snap.json"
    snap = snapshot(ReplaySources(MACHINES / "cpu-only-64gb"), current({"HOME": "/h"}))
    saved.write_text(json.dumps(to_dict(snap)))
    run = [sys.executable, "-m", "gptoss_doctor", "--json"]
    given = subprocess.run([*run, "--snapshot", str(saved)], capture_output=True, text=True,
                           timeout=120, check=False)
    assert "host memory, measured" not in given.stdout  # a saved snapshot is never measured
    refused = subprocess.run([*run, "--snapshot", str(saved), "--measure-bandwidth"],
                             capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2 and "cannot be combined" in refused.stderr
    skipped = subprocess.run([*run, "--no-measure-bandwidth"], capture_output=True, text=True,
                             timeout=120, check=False)
    assert skipped.returncode in (0, 1) and "host memory, measured" not in skipped.stdout
    assert "measuring host memory bandwidth" not in skipped.stderr
    measured = subprocess.run([*run, "--measure-bandwidth"], capture_output=True, text=True,
                              timeout=120, check=False)
    assert measured.returncode in (0, 1) and "host memory, measured: " in measured.stdout
