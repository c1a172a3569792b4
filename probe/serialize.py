"""Snapshots to and from JSON, validated strictly.

``--snapshot FILE`` lets people evaluate a machine they shared with us, and results files
embed the snapshot of the machine they ran on, so a snapshot is untrusted input. The file
is read through ``gptoss_doctor.jsonin`` (a regular file of at most 1 MiB, nested at most
16 levels, no ``NaN``, numbers within int64); then ``from_dict`` refuses, with a
``SnapshotError`` naming the field: unknown fields, wrong types, negative sizes, numbers
beyond int64, text longer than 4096 characters or holding control characters or lone
surrogates, lists of more than 1024 items, a ``schema_version`` outside 1 to the current
one, and free memory larger than the total it is part of.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

from gptoss_doctor.errors import SnapshotError
from gptoss_doctor.files import write_text
from gptoss_doctor.jsonin import MAX_NUMBER, MIB, Limits, read_json, shown
from gptoss_doctor.probe.model import SCHEMA_VERSION, HardwareSnapshot

# A snapshot is a few KiB; these bounds leave room for many weights files and notes while a
# hostile file stays cheap to read and to print (a 100 MB GPU name took 95 s to render).
LIMITS = Limits(max_bytes=1 * MIB, max_depth=16, max_text=4096)
MAX_ITEMS = 1024
# C0 controls other than tab and newline, DEL and C1 controls (terminal escapes, including
# the single-byte CSI) and lone surrogates (which cannot be printed or encoded).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def to_dict(snap: HardwareSnapshot) -> dict[str, Any]:
    """Plain JSON-able data (tuples become lists)."""
    return dataclasses.asdict(snap)


def dumps(snap: HardwareSnapshot) -> str:
    return json.dumps(to_dict(snap), indent=2, sort_keys=False)


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise SnapshotError(f"{where}: must not be null")
        for option in options:
            if option is type(None):
                continue
            return _convert(value, option, where)
    if value is None:
        raise SnapshotError(f"{where}: must not be null")
    if origin is tuple:
        if not isinstance(value, list):
            raise SnapshotError(f"{where}: expected a list")
        if len(value) > MAX_ITEMS:
            raise SnapshotError(f"{where}: more than {MAX_ITEMS} items")
        (item_hint, _ellipsis) = typing.get_args(hint)
        return tuple(_convert(item, item_hint, f"{where}[{i}]") for i, item in enumerate(value))
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise SnapshotError(f"{where}: must be one of "
                                f"{', '.join(map(str, typing.get_args(hint)))}")
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, where)
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: Any, where: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise SnapshotError(f"{where}: expected true or false")
        return value
    if hint in (int, float):
        accepted = int if hint is int else int | float
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise SnapshotError(f"{where}: expected {'an integer' if hint is int else 'a number'}")
        if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_NUMBER:
            raise SnapshotError(f"{where}: out of range (beyond {MAX_NUMBER})")
        if value < 0:
            raise SnapshotError(f"{where}: must not be negative (got {value})")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise SnapshotError(f"{where}: expected a string")
        if len(value) > LIMITS.max_text:
            raise SnapshotError(f"{where}: longer than {LIMITS.max_text} characters")
        bad = _UNPRINTABLE.search(value)
        if bad:
            raise SnapshotError(f"{where}: holds the unprintable character "
                                f"U+{ord(bad.group()):04X}")
        return value
    raise SnapshotError(f"{where}: unsupported field type")


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SnapshotError(f"{where or 'snapshot'}: expected an object")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise SnapshotError(f"{where or 'snapshot'}: unknown field "
                            f"{shown(ascii(unknown[0]), 40)}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        path = f"{where}.{name}" if where else name
        if name not in data:
            has_default = (field.default is not dataclasses.MISSING
                           or field.default_factory is not dataclasses.MISSING)
            if not has_default:
                raise SnapshotError(f"{path}: missing")
            continue
        kwargs[name] = _convert(data[name], hints[name], path)
    return cls(**kwargs)


def _check_parts_within_totals(snap: HardwareSnapshot) -> None:
    """Free memory is part of the total it is reported with; more free than total is a
    corrupt (or forged) file, and would make every budget built on it wrong."""
    pairs = [(f"gpus[{i}].vram_free_bytes", gpu.vram_free_bytes, "vram_total_bytes",
              gpu.vram_total_bytes) for i, gpu in enumerate(snap.gpus)]
    pairs.append(("memory.ram_available_bytes", snap.memory.ram_available_bytes,
                  "ram_total_bytes", snap.memory.ram_total_bytes))
    if snap.disk is not None:
        pairs.append(("disk.free_bytes", snap.disk.free_bytes, "total_bytes",
                      snap.disk.total_bytes))
    for part_name, part, whole_name, whole in pairs:
        if part is not None and whole is not None and part > whole:
            raise SnapshotError(f"{part_name} ({part}) is larger than {whole_name} ({whole})")


def from_dict(data: Any) -> HardwareSnapshot:
    """Validate and build a snapshot; raises ``SnapshotError`` with the field's path."""
    if isinstance(data, dict) and "schema_version" in data:
        version = _convert(data["schema_version"], int, "schema_version")
        if version > SCHEMA_VERSION:
            raise SnapshotError(
                f"snapshot schema_version {version} is newer than this gptoss-doctor "
                f"understands ({SCHEMA_VERSION})", hint="upgrade gptoss-doctor")
        if version < 1:
            raise SnapshotError(f"schema_version: {version} is not a snapshot schema version "
                                "(they start at 1)")
    snap: HardwareSnapshot = _build(HardwareSnapshot, data, "")
    _check_parts_within_totals(snap)
    return snap


def load(path: Path) -> HardwareSnapshot:
    """Read a snapshot file written by ``gptoss-doctor probe --save`` (see the module
    docstring for what is refused)."""
    name = f"snapshot {path}"
    data = read_json(path, LIMITS, name=name, error=SnapshotError)
    try:
        return from_dict(data)
    except SnapshotError as exc:
        raise SnapshotError(f"{name}: {exc.message}", exc.hint) from None


def save(snap: HardwareSnapshot, path: Path) -> None:
    """Write atomically (``files.write_text``: never over a device node or FIFO)."""
    write_text(path, dumps(snap) + "\n")
