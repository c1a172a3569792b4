"""Hostile JSON for the loaders' property tests: a valid document changed at one random path.

``write_mutated(data, seeds, path)`` writes one of the seed files with one hostile change;
``mutated(data, document)`` draws (with hypothesis) a path into ``document`` and one change
there: a hostile value (NaN, 10**400, a lone surrogate, terminal escapes, 5,000 or 1,100,000
characters, 100,000 levels of nesting, random JSON), a deletion, an unknown key, or another
node of the same document (right values in the wrong place). It returns the file's text as
``json.dumps`` would write it, so ``NaN``/``Infinity`` and ``\\ud800`` escapes reach the
loader as they would in a file.

``assert_one_line`` is what every refusal must look like: a message and hint of one
printable line each.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from gptoss_doctor.errors import DoctorError

DEEP = "\x00deep nesting"  # written as 100,000 nested arrays in place of this string
DEEP_TEXT = "[" * 100_000 + "]" * 100_000
SCALARS: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**63, 2**64, -(2**63) - 1, 10**400, 0.5, -0.0,
    1e308, -1e308, 1e-320, float("nan"), float("inf"), float("-inf"),
    "", " ", "0", "null", "\ud800", "x\udfffy", "\x1b[31mred\x1b[0m\x07", "\x00", "\u009b2J",
    "<script>alert(1)</script>", "{{ 7 * 7 }}", "[bold]rich markup[/bold]", "http://[::1",
    "../../../etc/passwd", "é" * 5000, "x" * 1_100_000, [], {}, [None], {"": None}, DEEP,
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)
MAX_MESSAGE = 600
# Each loader's property test: 200 examples in the full suite (GPTOSS_FUZZ_EXAMPLES: the
# quick tier runs 100), no deadline (a 100,000-level file takes a while to write), the
# tmp_path fixture shared by the examples (each overwrites the file).
FUZZ_EXAMPLES = int(os.environ.get("GPTOSS_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node)
    return list(range(len(node))) if isinstance(node, list) else []


def _path(data: st.DataObject, document: Any) -> list[Any]:
    """A random path: each level descends with probability 3/4 while it can."""
    path: list[Any] = []
    node = document
    while _children(node) and data.draw(st.integers(0, 3), label="descend") > 0:
        key = data.draw(st.sampled_from(_children(node)), label="key")
        path.append(key)
        node = node[key]
    return path


def _nodes(document: Any) -> list[Any]:
    found, stack = [], [document]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node[key] for key in _children(node))
    return found


def mutated(data: st.DataObject, document: Any) -> str:
    """``document`` (changed in place) with one hostile change, as a file's text."""
    path = _path(data, document)
    action = data.draw(st.sampled_from(["hostile", "random", "elsewhere", "delete", "add"]),
                       label="action")
    if action == "hostile":
        value = data.draw(st.sampled_from(SCALARS), label="value")
    elif action == "random":
        value = data.draw(JSON_VALUES, label="value")
    else:
        value = copy.deepcopy(data.draw(st.sampled_from(_nodes(document)), label="value"))
    if not path:
        document = value if action in ("hostile", "random", "elsewhere") else document
    else:
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=12), label="new key")] = value
        else:
            parent[path[-1]] = value
    return json.dumps(document).replace(json.dumps(DEEP), DEEP_TEXT)


def write_mutated(data: st.DataObject, seeds: Sequence[Path], path: Path) -> None:
    seed = data.draw(st.sampled_from(seeds), label="seed")
    path.write_text(mutated(data, json.loads(seed.read_text())))


def assert_one_line(error: DoctorError) -> None:
    for text in (error.message, error.hint or ""):
        assert "\n" not in text and "\r" not in text, text
        assert len(text) <= MAX_MESSAGE, text[:MAX_MESSAGE]
        text.encode("utf-8")  # printable: no lone surrogate
