"""Snapshots to and from JSON, validated strictly.

``--snapshot FILE`` lets people evaluate a machine they shared with us, so a saved file is
untrusted input: unknown fields, wrong types and negative sizes are refused with a
``SnapshotError`` naming the offending field.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from gptoss_doctor.errors import SnapshotError
from gptoss_doctor.probe.model import SCHEMA_VERSION, HardwareSnapshot


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
        (item_hint, _ellipsis) = typing.get_args(hint)
        return tuple(_convert(item, item_hint, f"{where}[{i}]") for i, item in enumerate(value))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise SnapshotError(f"{where}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SnapshotError(f"{where}: expected an integer")
        if value < 0:
            raise SnapshotError(f"{where}: must not be negative (got {value})")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SnapshotError(f"{where}: expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SnapshotError(f"{where}: expected a string")
        return value
    raise SnapshotError(f"{where}: unsupported field type")


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: expected an object")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SnapshotError(f"{where}: unknown field {unknown[0]!r}")
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


def from_dict(data: Any) -> HardwareSnapshot:
    """Validate and build a snapshot; raises ``SnapshotError`` with the field's path."""
    if isinstance(data, dict):
        version = data.get("schema_version")
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise SnapshotError(
                f"snapshot schema_version {version} is newer than this gptoss-doctor "
                f"understands ({SCHEMA_VERSION})", hint="upgrade gptoss-doctor")
    snap: HardwareSnapshot = _build(HardwareSnapshot, data, "")
    return snap


def load(path: Path) -> HardwareSnapshot:
    """Read a snapshot file written by ``gptoss-doctor probe --save``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SnapshotError(f"snapshot {path} is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SnapshotError(f"snapshot {path} is not valid JSON ({exc})") from None
    try:
        return from_dict(data)
    except SnapshotError as exc:
        raise SnapshotError(f"snapshot {path}: {exc.message}", exc.hint) from None


def save(snap: HardwareSnapshot, path: Path) -> None:
    """Write atomically: a temp file in the same folder, then rename."""
    path = path.resolve()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dumps(snap) + "\n", encoding="utf-8")
    tmp.replace(path)
