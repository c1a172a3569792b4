"""The two further memory-module readers (issue 14): the kernel's copy of the SMBIOS type 17
structures (/sys/firmware/dmi/entries/17-*/raw, bytes) and macOS's system_profiler.

The bytes and outputs are transcribed from public sources (tests/fixtures/dimm/SOURCE.md);
the hostile cases are edits of those bytes made here. Replayed machines are
tests/fixtures/machines/cpu-only-64gb and mac-m1-16gb with the readings added.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest

from gptoss_doctor.install.resources import resources
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe import dimm, smbios
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.serialize import dumps, from_dict
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.probe.sources import CommandResult
from gptoss_doctor.settings import current

from conftest import FIXTURES, MACHINES

DIMM = FIXTURES / "dimm"
_HEX = re.compile(r"^(?:[0-9A-F]{2} )*[0-9A-F]{2}$")
SURFACE_BANDWIDTH = 2 * 2400e6 * 8  # two channels x 2400 MT/s x 64-bit


def raw_entries(dump: str) -> list[bytes]:
    """Each structure of a ``dmidecode -u`` listing as its sysfs ``raw`` file: the hex
    lines (formatted area, then the strings with their NULs) and the set's closing NUL."""
    entries = []
    for block in dump.split("\n\n"):
        if "DMI type 17," not in block:
            continue
        data = bytes.fromhex(" ".join(line.strip() for line in block.splitlines()
                                      if _HEX.match(line.strip())))
        entries.append(data + b"\x00")
    return entries


SURFACE = raw_entries((DIMM / "surface-laptop-3.dmidecode-u").read_text())


def _linux(tmp_path: Path, entries: list[bytes], denied: bool = False,
           extra: tuple[str, ...] = ()) -> Path:
    """cpu-only-64gb (no dmidecode) with ``entries`` as /sys/firmware/dmi/entries."""
    folder = tmp_path / "machine"
    shutil.copytree(MACHINES / "cpu-only-64gb", folder)
    base = folder / "fs" / smbios.ENTRIES.lstrip("/")
    for name in ("0-0", "16-0", *extra):
        (base / name).mkdir(parents=True)
    for index, raw in enumerate(entries):
        (base / f"17-{index}").mkdir(parents=True)
        (base / f"17-{index}" / "raw").write_bytes(raw)
    if denied:
        data = json.loads((folder / "machine.json").read_text())
        data["denied"] = [f"{smbios.ENTRIES}/17-{i}/raw" for i in range(len(entries))]
        (folder / "machine.json").write_text(json.dumps(data))
    return folder


def test_the_fixture_holds_two_forty_byte_structures() -> None:
    assert [(raw[0], raw[1], len(raw)) for raw in SURFACE] == [(17, 40, 97), (17, 40, 97)]


def test_bytes_decode_to_what_dmidecode_printed_for_the_same_machine() -> None:
    decoded = dimm.parse_dmidecode((DIMM / "surface-laptop-3.dmidecode").read_text())
    devices = [smbios.parse_memory_device(raw) for raw in SURFACE]
    assert all(d is not None for d in devices)
    from_bytes = dimm.from_devices([d for d in devices if d is not None])
    assert from_bytes == decoded  # size, rates, width, slot names and type, both modules
    first = devices[0]
    assert first is not None
    assert (first.size_bytes, first.total_width_bits, first.memory_type) == (
        8 * 1024**3, 64, "DDR4")
    assert [m.slot for m in from_bytes] == ["DIMM 0 | P0 CHANNEL A", "DIMM 0 | P0 CHANNEL B"]


def test_without_dmidecode_the_sysfs_copy_gives_the_figure(tmp_path: Path) -> None:
    snap = snapshot(ReplaySources(_linux(tmp_path, SURFACE)), current({"HOME": "/h"}))
    assert snap.memory.host_bandwidth_bytes_per_s == SURFACE_BANDWIDTH
    assert snap.memory.host_bandwidth_source == (
        "2 modules on 2 channels x 2400 MT/s x 64-bit, read from "
        "/sys/firmware/dmi/entries (SMBIOS type 17)")
    assert from_dict(json.loads(dumps(snap))) == snap
    assert resources(snap).cpu_bandwidth.bytes_per_s == SURFACE_BANDWIDTH
    assert "/sys/firmware/dmi/entries" in (assess(snap).verdict("20b").speed_basis or "")
    assert not [n for n in snap.notes if n.source == "dimm"]


def test_a_failing_dmidecode_falls_back_to_sysfs(tmp_path: Path) -> None:
    folder = _linux(tmp_path, SURFACE)
    data = json.loads((folder / "machine.json").read_text())
    data.setdefault("which", {})["dmidecode"] = "/usr/sbin/dmidecode"
    (folder / "machine.json").write_text(json.dumps(data))
    (folder / "commands").mkdir(exist_ok=True)
    (folder / "commands" / "dmidecode.out").write_text("No SMBIOS nor DMI entry point found\n")
    (folder / "commands" / "dmidecode.rc").write_text("1")
    found, why = dimm.read_with_reason(ReplaySources(folder), "Linux")
    assert found is not None and found.bytes_per_s == SURFACE_BANDWIDTH and why is None


def test_root_only_entries_are_said_and_nothing_is_claimed(tmp_path: Path) -> None:
    snap = snapshot(ReplaySources(_linux(tmp_path, SURFACE, denied=True)),
                    current({"HOME": "/h"}))
    assert snap.memory.host_bandwidth_bytes_per_s is None
    (note,) = [n for n in snap.notes if n.source == "dimm"]
    assert "readable by root only" in note.message and note.severity == "info"
    assert "assumed" in resources(snap).cpu_bandwidth.source


def test_no_entries_folder_means_no_figure_and_no_note(tmp_path: Path) -> None:
    folder = tmp_path / "machine"
    shutil.copytree(MACHINES / "cpu-only-64gb", folder)
    assert dimm.read_with_reason(ReplaySources(folder), "Linux") == (None, None)


def _edit(raw: bytes, offset: int, value: bytes) -> bytes:
    return raw[:offset] + value + raw[offset + len(value):]


def test_an_empty_slot_is_skipped() -> None:
    empty = smbios.parse_memory_device(_edit(SURFACE[0], 0x0C, b"\x00\x00"))
    assert empty is not None and empty.size_bytes is None
    assert dimm.from_devices([empty]) == ()


def test_extended_size_and_speed_fields_are_read() -> None:
    # A longer structure (SMBIOS 3.3: 0x5C bytes) with the 0x7FFF/0xFFFF escapes.
    area = bytearray(SURFACE[0][:40]) + bytearray(0x5C - 40)
    area[1] = 0x5C
    area[0x0C:0x0E] = (0x7FFF).to_bytes(2, "little")
    area[0x1C:0x20] = (65536).to_bytes(4, "little")  # MiB
    area[0x15:0x17] = area[0x20:0x22] = b"\xff\xff"
    area[0x54:0x58] = (8800).to_bytes(4, "little")
    area[0x58:0x5C] = (6400).to_bytes(4, "little")
    device = smbios.parse_memory_device(bytes(area) + SURFACE[0][40:])
    assert device is not None
    assert (device.size_bytes, device.rated_mts, device.configured_mts) == (
        64 * 1024**3, 8800, 6400)


def test_kilobyte_granularity_and_older_shorter_structures() -> None:
    short = bytearray(SURFACE[0][:0x1B])  # SMBIOS 2.3: no configured speed, no extension
    short[1] = 0x1B
    short[0x0C:0x0E] = (0x8000 | 512).to_bytes(2, "little")
    device = smbios.parse_memory_device(bytes(short) + SURFACE[0][40:])
    assert device is not None
    assert (device.size_bytes, device.rated_mts, device.configured_mts) == (512 * 1024, 2400,
                                                                           None)


@pytest.mark.parametrize(("case", "raw"), [
    ("truncated inside the formatted area", SURFACE[0][:30]),
    ("truncated inside the strings", SURFACE[0][:60]),
    ("length byte past the end", _edit(SURFACE[0], 1, b"\xf0")),
    ("length byte below the oldest structure", _edit(SURFACE[0], 1, b"\x10")),
    ("another structure type", _edit(SURFACE[0], 0, b"\x10")),
    ("data width no memory has", _edit(SURFACE[0], 0x0A, b"\x00\x40")),
    ("larger than 4 KiB", SURFACE[0] + bytes(5000)),
    ("empty", b""),
])
def test_broken_structures_are_refused(case: str, raw: bytes) -> None:
    assert smbios.parse_memory_device(raw) is None, case


def test_a_missing_string_index_leaves_the_name_empty() -> None:
    device = smbios.parse_memory_device(_edit(SURFACE[0], 0x11, b"\x09"))
    assert device is not None and device.bank_locator == "" and device.device_locator == "DIMM 0"


def test_a_huge_extended_speed_gives_no_figure() -> None:
    area = bytearray(SURFACE[0][:40]) + bytearray(0x5C - 40)
    area[1] = 0x5C
    area[0x15:0x17] = area[0x20:0x22] = b"\xff\xff"
    area[0x54:0x58] = area[0x58:0x5C] = (0x7FFFFFFF).to_bytes(4, "little")
    device = smbios.parse_memory_device(bytes(area) + SURFACE[0][40:])
    assert device is not None and device.rated_mts == 0x7FFFFFFF
    modules = dimm.from_devices([device])
    assert modules[0].mts is None and dimm.bandwidth(modules, "x") is None


def test_one_unreadable_entry_among_good_ones_gives_no_figure(tmp_path: Path) -> None:
    folder = _linux(tmp_path, [SURFACE[0], SURFACE[1][:30]])
    found, why = dimm.read_with_reason(ReplaySources(folder), "Linux")
    assert found is None and why is not None and "17-1/raw" in why


def test_more_than_256_entries_are_refused(tmp_path: Path) -> None:
    names = tuple(f"17-{i}" for i in range(smbios.MAX_ENTRIES + 1))
    assert smbios.entry_names(names) is None
    assert smbios.entry_names(("17-10", "17-2", "170-1", "17-x", "4-0")) == ("17-2", "17-10")
    folder = _linux(tmp_path, [], extra=names)
    found, why = dimm.read_with_reason(ReplaySources(folder), "Linux")
    assert found is None and why is not None and "more than 256" in why


def test_random_and_cut_bytes_never_raise() -> None:
    rng = random.Random(17)
    samples = [SURFACE[0][:n] for n in range(len(SURFACE[0]) + 1)]
    samples += [bytes([17, rng.randrange(256)]) + rng.randbytes(rng.randrange(200))
                for _ in range(2000)]
    for raw in samples:
        device = smbios.parse_memory_device(raw)
        if device is not None:
            dimm.bandwidth(dimm.from_devices([device]), "x")


# --- macOS ---------------------------------------------------------------------------


def _profiler(name: str) -> tuple[dimm.Module, ...]:
    return dimm.parse_system_profiler((DIMM / name).read_text())


@pytest.mark.parametrize(("name", "size_gib", "kind"), [
    ("apple-silicon-lpddr5.json", 24, "LPDDR5"),
    ("apple-m1-lpddr4.json", 8, "LPDDR4"),
])
def test_apple_silicon_gives_size_and_type_but_no_figure(name: str, size_gib: int,
                                                          kind: str) -> None:
    (module,) = _profiler(name)
    assert (module.size_bytes, module.memory_type, module.mts) == (size_gib * 1024**3, kind,
                                                                   None)
    assert dimm.bandwidth((module,), "system_profiler") is None


def test_an_intel_mac_gives_its_slots_and_speed() -> None:
    modules = _profiler("intel-mbp2010-ddr3.json")
    assert [(m.size_bytes, m.mts, m.memory_type, m.slot) for m in modules] == [
        (4 * 1024**3, 1067, "DDR3", "DIMM0 | BANK 0"),
        (4 * 1024**3, 1067, "DDR3", "DIMM0 | BANK 1")]
    found = dimm.bandwidth(modules, "system_profiler")
    assert found is not None and found.bytes_per_s == 2 * 1067e6 * 8
    assert found.source.endswith("(one channel per module assumed: the slots do not name "
                                 "them), read from system_profiler")


def test_the_xml_form_reads_like_the_json_one() -> None:
    (module,) = _profiler("intel-ddr3.xml")
    assert (module.size_bytes, module.mts, module.slot) == (8 * 1024**3, 1600,
                                                            "DIMM0 | BANK 0")


def test_channel_names_in_intel_mac_slots_count_channels() -> None:
    data = json.loads((DIMM / "intel-mbp2010-ddr3.json").read_text())
    slots = data["SPMemoryDataType"][0]["_items"]
    slots[0]["_name"], slots[1]["_name"] = "BANK 0/ChannelA-DIMM0", "BANK 2/ChannelA-DIMM1"
    slots.append({"_name": "BANK 1/ChannelB-DIMM0", "dimm_size": "empty",
                  "dimm_status": "empty"})
    modules = dimm.parse_system_profiler(json.dumps(data))
    assert [dimm.channel_of(m.slot) for m in modules] == ["CHANNELA", "CHANNELA"]
    found = dimm.bandwidth(modules, "system_profiler")
    assert found is not None and found.bytes_per_s == 1067e6 * 8  # one channel


@pytest.mark.parametrize("text", [
    "", "not json", "[]", '{"SPMemoryDataType": 5}', '{"SPMemoryDataType": [1, null]}',
    '{"SPMemoryDataType": [{"_items": [{"dimm_size": "8 GB", "dimm_speed": "99999999 MHz",'
    ' "dimm_status": "ok"}]}]}',
    '<?xml version="1.0"?><plist><array><dict><key>_items</key>',
    '<!DOCTYPE x [<!ENTITY a "aaaa">]><plist version="1.0"><string>&a;</string></plist>',
    '<plist version="1.0"><date>garbage</date></plist>',
    '<plist version="1.0"><data>!!!</data></plist>',
    '<plist version="1.0">' + "<array>" * 100_000 + "</array>" * 100_000 + "</plist>",
    "[" * 100_000, " " * (dimm.MAX_PROFILER_CHARS + 1) + "{}",
])
def test_unusable_system_profiler_output_gives_no_figure(text: str) -> None:
    assert dimm.bandwidth(dimm.parse_system_profiler(text), "x") is None


def _mac(tmp_path: Path, output: str, chip: str) -> Path:
    folder = tmp_path / "mac"
    shutil.copytree(MACHINES / "mac-m1-16gb", folder)
    sysctl = folder / "commands" / "sysctl.out"
    sysctl.write_text(sysctl.read_text().replace("Apple M1", chip))
    (folder / "commands" / "system_profiler.out").write_text(output)
    return folder


def test_an_intel_mac_snapshot_carries_the_module_figure(tmp_path: Path) -> None:
    text = (DIMM / "intel-mbp2010-ddr3.json").read_text()
    folder = _mac(tmp_path, text, "Intel(R) Core(TM) i7 CPU       M 620  @ 2.67GHz")
    snap = snapshot(ReplaySources(folder), current({"HOME": "/h"}))
    assert snap.apple is None
    assert snap.memory.host_bandwidth_bytes_per_s == 2 * 1067e6 * 8
    assert (snap.memory.host_bandwidth_source or "").endswith("read from system_profiler")
    assert "read from system_profiler" in (assess(snap).verdict("20b").speed_basis or "")


def test_an_apple_silicon_snapshot_keeps_the_chip_table(tmp_path: Path) -> None:
    folder = _mac(tmp_path, (DIMM / "apple-m1-lpddr4.json").read_text(), "Apple M1")
    snap = snapshot(ReplaySources(folder), current({"HOME": "/h"}))
    assert snap.apple is not None and snap.memory.host_bandwidth_bytes_per_s is None


class _Profiler(ReplaySources):
    """system_profiler answering each form as given (None: no answer), and the calls."""

    def __init__(self, answers: dict[str, CommandResult | None]) -> None:
        super().__init__(MACHINES / "mac-m1-16gb")
        self.answers = answers
        self.calls: list[str] = []

    def run(self, argv: list[str], timeout_s: float = 5.0) -> CommandResult | None:
        self.calls.append(argv[1])
        return self.answers.get(argv[1])


def test_the_xml_form_is_asked_for_only_where_json_is_refused() -> None:
    xml = CommandResult(0, (DIMM / "intel-ddr3.xml").read_text())
    old_macos = _Profiler({"-json": CommandResult(1, "", "unknown option"), "-xml": xml})
    assert dimm.read(old_macos, "Darwin") is not None and old_macos.calls == ["-json", "-xml"]
    silicon = _Profiler({"-json": CommandResult(0, (DIMM / "apple-m1-lpddr4.json").read_text()),
                         "-xml": xml})
    assert dimm.read(silicon, "Darwin") is None and silicon.calls == ["-json"]
    hung = _Profiler({"-json": None, "-xml": xml})
    assert dimm.read(hung, "Darwin") is None and hung.calls == ["-json"]
