"""Reading JSON from a path the user gave: the one choke point for hostile files.

Snapshots (``--snapshot FILE``) and results files (``report``, ``bench tools --regrade``)
may come from anyone, so ``read_json`` refuses, each time with one line (a ``UsageError``
subclass the caller picks):

- anything but a regular file, before it is opened for reading: a FIFO would block
  ``open`` until someone writes to it, ``/dev/zero`` never ends, a folder cannot be read.
  The opened descriptor is checked again (``O_NONBLOCK``, so even a FIFO swapped in
  between cannot hang), closing the gap between the check and the open;
- files larger than ``Limits.max_bytes`` (each loader documents its cap), reading at most
  one byte more than the cap whatever the file claims;
- bytes that are not UTF-8 or not JSON;
- nesting deeper than ``Limits.max_depth``, measured on the bytes before the parser sees
  them and without recursion: ``json`` recurses per level, and 100,000 levels would end in
  ``RecursionError``;
- ``NaN`` and ``Infinity`` (Python reads them, JSON has no such values), numbers beyond
  ±(2**63 - 1) (a 400-digit integer raises ``OverflowError`` when it meets a float), and
  duplicate keys (which of the two counts is up to each reader);
- text longer than ``Limits.max_text`` characters (keys included), or holding a lone
  surrogate, which no terminal or UTF-8 file can take.

What remains is plain JSON data of bounded size and depth; checking its shape is the
loader's job.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor.errors import UsageError

MIB = 1024 * 1024
MAX_NUMBER = 2**63 - 1  # the largest size or count any reader stores (int64)
# Longest integer literal within MAX_NUMBER: a sign and 19 digits. Longer ones are refused
# before int() parses them.
_MAX_INT_CHARS = 20
# Outside strings, JSON structure is brackets; these bytes are all that the depth check
# keeps (quotes included, to find the strings). Escaped backslashes go first so that an
# escaped quote is always a backslash directly before a quote.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_ONE_BRACKET_KIND = bytes.maketrans(b"{}", b"[]")
_STRING_WITH_BRACKETS = re.compile(rb'"[^"]*"')
_SURROGATE = re.compile("[\ud800-\udfff]")
# Non-blocking, so that opening a FIFO returns at once (the check before the open already
# refused it; this closes the gap in between). Binary on Windows.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class JsonInputError(UsageError):
    """A JSON file given by the user cannot be read safely."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one kind of input file."""

    max_bytes: int  # the file's size
    max_depth: int  # nesting of objects and arrays
    max_text: int  # characters in one string or key


def read_json(path: Path, limits: Limits, *, name: str | None = None, kind: str = "valid JSON",
              error: type[UsageError] = JsonInputError) -> Any:
    """The JSON value in ``path``, or ``error`` with one line naming the file as ``name``
    (default: the path) and what is wrong with it; ``kind`` completes "<name> is not ..."
    when the text does not parse."""
    label = name or str(path)
    raw = _read_bytes(path, limits.max_bytes, label, error)
    return parse(raw, limits, label, kind=kind, error=error)


def parse(raw: bytes, limits: Limits, label: str, *, kind: str = "valid JSON",
          error: type[UsageError] = JsonInputError) -> Any:
    """``raw`` (UTF-8 JSON) checked against ``limits``; see the module docstring."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{label} is not UTF-8 text") from None
    if _depth_exceeds(raw, limits.max_depth):
        raise error(f"{label} is nested deeper than {limits.max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int,
                           parse_float=_bounded_float, object_pairs_hook=_unique_keys)
    except _Refused as exc:
        raise error(f"{label}: {exc}") from None
    except ValueError as exc:
        raise error(f"{label} is not {kind} ({exc})") from None
    problem = _text_problem(value, limits.max_text)
    if problem:
        raise error(f"{label}: {problem}")
    return value


def _read_bytes(path: Path, max_bytes: int, label: str, error: type[UsageError]) -> bytes:
    try:
        _require_regular(os.stat(path).st_mode, label, error)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise error(f"cannot read {label}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        _require_regular(info.st_mode, label, error)
        if info.st_size > max_bytes:
            raise error(f"{label} is larger than {_size(max_bytes)} ({info.st_size} bytes); "
                        "refusing to read it")
        try:
            raw = handle.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"cannot read {label}: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:  # it grew after the size was read
        raise error(f"{label} is larger than {_size(max_bytes)}; refusing to read it")
    return raw


def shown(text: str, limit: int = 160) -> str:
    """``text`` from a hostile file made fit for an error line: non-printable characters
    escaped, at most ``limit`` characters of it kept (and "..." when cut)."""
    printable = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:limit])
    return printable if len(text) <= limit else f"{printable}..."


def _size(n_bytes: int) -> str:
    return f"{n_bytes // MIB} MiB" if n_bytes % MIB == 0 else f"{n_bytes} bytes"


def _require_regular(mode: int, label: str, error: type[UsageError]) -> None:
    if stat.S_ISREG(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise error(f"{label} is {kind}, not a file", "give the path of a saved JSON file")


def _depth_exceeds(raw: bytes, max_depth: int) -> bool:
    """Whether the parser would nest deeper than ``max_depth`` in ``raw``, found in passes
    over bytes that run at C speed and never recurse.

    Escapes go first (``\\\\`` then ``\\"``), so that every quote left opens or closes
    a string; strings with no brackets then vanish as ``""`` pairs (removing two adjacent
    quotes keeps every later quote's role), the rare ones holding brackets through a regular
    expression. One bracket kind is enough for depth, and each pass that removes the
    innermost ``[]`` pairs peels exactly one level. Brackets left unmatched (a truncated
    file) add at most one level each, counted too, so the parser's depth is bounded before
    it says what else is wrong.
    """
    shape = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    shape = shape.replace(b'""', b"")
    if b'"' in shape:
        shape = _STRING_WITH_BRACKETS.sub(b"", shape)
    shape = shape.translate(_ONE_BRACKET_KIND)
    levels = 0
    while shape:
        shorter = shape.replace(b"[]", b"")
        if len(shorter) == len(shape):
            break  # only unmatched brackets are left
        levels += 1
        if levels > max_depth:
            return True
        shape = shorter
    return levels + shape.count(b"[") > max_depth


class _Refused(Exception):
    """Raised by the parser hooks; the message completes '<file>: '."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _bounded_int(literal: str) -> int:
    if len(literal) > _MAX_INT_CHARS or abs(value := int(literal)) > MAX_NUMBER:
        raise _Refused(f"the number {shown(literal, 24)} is out of range")
    return value


def _bounded_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise _Refused(f"the number {shown(literal, 24)} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Refused(f"the key {shown(ascii(key), 40)} appears twice in one object")
        seen.add(key)
    return value


def _text_problem(value: Any, max_text: int) -> str | None:
    """What is wrong with the strings in ``value`` (None: nothing), without recursion."""
    texts: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            texts.extend(node)
            node = node.values()
        elif not isinstance(node, list):
            continue
        for child in node:
            if isinstance(child, str):
                texts.append(child)
            elif isinstance(child, dict | list):
                stack.append(child)
    if isinstance(value, str):
        texts.append(value)
    longest = max(map(len, texts), default=0)
    if longest > max_text:
        return f"a text of {longest} characters is longer than the {max_text} allowed"
    non_ascii = itertools.filterfalse(str.isascii, texts)
    if next(filter(None, map(_SURROGATE.search, non_ascii)), None) is not None:
        return "a text holds a lone UTF-16 surrogate (not a character)"
    return None
