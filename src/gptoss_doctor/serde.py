"""The one converter between typed records (frozen dataclasses) and JSON values.

``to_json`` turns dataclasses, tuples, paths and mappings into plain JSON values;
``from_json`` rebuilds a dataclass from such values, checking each field against its type
(``Literal`` sets included), so records read back from files are typed again. Unknown keys
are ignored (newer writers may add fields); missing keys fall back to the field's default.
A field declared with ``field(metadata=FLATTEN)`` is written into its parent object (the
results' flat ``config`` is the engine's settings plus the suite's), and read back from it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from gptoss_doctor.errors import UsageError

T = TypeVar("T")
_NO_DEFAULT = object()


class SerdeError(UsageError):
    """A JSON value does not have the shape its record type declares."""


FLATTEN = {"flatten": True}  # ``field(metadata=FLATTEN)``: merged into the parent's object


def to_json(value: Any) -> Any:
    """A JSON-ready copy of ``value`` (dataclasses become objects, tuples lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            converted = to_json(getattr(value, f.name))
            if f.metadata.get("flatten"):
                out.update(converted)
            else:
                out[f.name] = converted
        return out
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    return value


def from_json(cls: type[T], data: Any, where: str = "") -> T:
    """The ``cls`` record ``data`` describes; ``SerdeError`` naming the bad field if not."""
    converted: T = _convert(cls, data, where or cls.__name__)
    return converted


def _convert(hint: Any, data: Any, where: str) -> Any:
    origin = get_origin(hint)
    if hint is Any:
        return data
    if origin in (Union, types.UnionType):
        return _union(hint, data, where)
    if origin is Literal:
        if data not in get_args(hint):
            raise SerdeError(f"{where}: {data!r} is not one of {list(get_args(hint))}")
        return data
    if dataclasses.is_dataclass(hint):
        return _dataclass(hint, data, where)
    if origin in (tuple, list):
        return _sequence(hint, origin, data, where)
    if origin is dict or hint is dict:
        if not isinstance(data, dict):
            raise SerdeError(f"{where}: expected an object")
        args = get_args(hint)
        value_type = args[1] if args else Any
        return {str(k): _convert(value_type, v, f"{where}.{k}") for k, v in data.items()}
    return _scalar(hint, data, where)


def _union(hint: Any, data: Any, where: str) -> Any:
    options = get_args(hint)
    if data is None and type(None) in options:
        return None
    errors = []
    for option in (o for o in options if o is not type(None)):
        try:
            return _convert(option, data, where)
        except SerdeError as exc:
            errors.append(exc.message)
    raise SerdeError(errors[0] if len(errors) == 1 else f"{where}: {data!r} fits no type")


def _sequence(hint: Any, origin: Any, data: Any, where: str) -> Any:
    if not isinstance(data, list | tuple):
        raise SerdeError(f"{where}: expected a list")
    args = get_args(hint)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(data):
            raise SerdeError(f"{where}: expected {len(args)} items")
        pairs = enumerate(zip(args, data, strict=True))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    item = args[0] if args else Any
    items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
    return tuple(items) if origin is tuple else items


def _scalar(hint: Any, data: Any, where: str) -> Any:
    if hint is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if hint in (int, float) and isinstance(data, bool):
        raise SerdeError(f"{where}: expected a number, not {data!r}")
    if isinstance(hint, type) and not isinstance(data, hint):
        raise SerdeError(f"{where}: expected {hint.__name__}, not {type(data).__name__}")
    return data


def _dataclass(cls: Any, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SerdeError(f"{where}: expected an object")
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.metadata.get("flatten"):
            values[field.name] = _convert(hints[field.name], data, where)
        elif field.name in data:
            values[field.name] = _convert(hints[field.name], data[field.name],
                                          f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING \
                and field.default_factory is dataclasses.MISSING:
            raise SerdeError(f"{where}: {field.name} is missing")
    return cls(**values)
