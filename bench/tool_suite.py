"""The tool-use suite: our own cases, kept as data files in ``bench/suites/tools/``.

``tools.json`` holds the developer instructions and the tool library (name, description,
JSON Schema of the arguments, and how a call is answered: a ``mock_result`` that follows the
call's arguments (``sandbox.mock_answer``), the real ``calculator``, or the real ``sandbox``
file and key-value tools). One file per category holds its cases (BFCL's categories plus
LM Studio-style ``act`` loops, and ``mcp``: ``act`` loops whose tools an MCP server serves):

- ``expected``: the calls a case wants; each argument lists the accepted values (values,
  ``null`` = may be left out, or a rule: ``{"place": [...], "in": [...]}``,
  ``{"type": "string"}``, ``{"evaluates_to": N}``; ``bench.arg_match``);
- ``setup`` / ``expect`` (act): files and keys before the loop, and the state after it
  (``expect.used``: the tools that must have done the work; docs/tool-grading.md);
- ``history``: earlier user and assistant messages, for multi-turn and long-context cases.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from gptoss_doctor.errors import UsageError

CATEGORIES = ("simple", "multiple", "parallel", "irrelevance", "act")
"""The categories a run takes when none is named (they need nothing but the engine)."""
MCP = "mcp"
ALL_CATEGORIES = (*CATEGORIES, MCP)
"""``mcp``: act-style cases whose tools an MCP server serves (the reference server,
``bench.mcp_reference``), run only when asked for (``--category mcp``: docs/mcp.md)."""
SUITE_NAME = "gptoss-doctor-tools-v2"  # v2: 127 cases, issue 15
DEFAULT_TURN_LIMIT = 8


@dataclass(frozen=True, slots=True)
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]
    executor: str  # "mock" | "calculator" | "sandbox"
    mock_result: Any = None

    def for_prompt(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "parameters": self.parameters}


@dataclass(frozen=True, slots=True)
class ExpectedCall:
    name: str
    args: dict[str, tuple[Any, ...]]  # argument -> accepted values (None: may be omitted)


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    category: str
    prompt: str
    tools: tuple[ToolDef, ...]
    expected: tuple[ExpectedCall, ...] = ()
    setup: dict[str, Any] | None = None
    expect: dict[str, Any] | None = None
    turn_limit: int = 1
    history: tuple[tuple[str, str], ...] = ()  # earlier (role, text) turns, oldest first
    # missing-parameter cases: the answer must ask, naming one of these (docs/tool-grading.md)
    asks_for: tuple[str, ...] = ()

    def tool(self, name: str) -> ToolDef | None:
        return next((t for t in self.tools if t.name == name), None)


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    sha256: str  # of the data files, so results say exactly which cases they ran
    instructions: str
    cases: tuple[Case, ...]  # the default run: every category of CATEGORIES
    on_request: tuple[Case, ...] = ()  # run only when their category is named (``mcp``)


def _files() -> dict[str, str]:
    folder = resources.files("gptoss_doctor.bench").joinpath("suites/tools")
    return {name: folder.joinpath(f"{name}.json").read_text(encoding="utf-8")
            for name in ("tools", *ALL_CATEGORIES)}


def _turn_limit(category: str, raw: dict[str, Any], expected: int) -> int:
    if category in ("act", MCP):
        return int(raw.get("turn_limit", DEFAULT_TURN_LIMIT))
    if category == "parallel":
        return expected + 2  # harmony makes one call per turn: room for each, plus two
    return 1


@lru_cache(maxsize=1)
def load_suite() -> Suite:
    """The whole suite; a broken data file is a bug, reported by the suite's own test."""
    texts = _files()
    library = json.loads(texts["tools"])
    tools = {t["name"]: ToolDef(t["name"], t["description"], t["parameters"],
                                t.get("executor", "mock"), t.get("mock_result"))
             for t in library["tools"]}
    cases: list[Case] = []
    for category in ALL_CATEGORIES:
        data = json.loads(texts[category])
        for raw in data["cases"]:
            expected = tuple(ExpectedCall(c["name"], {k: tuple(v) for k, v in c["args"].items()})
                             for c in raw.get("expected", ()))
            cases.append(Case(raw["id"], category, raw["prompt"],
                              tuple(tools[name] for name in raw["tools"]), expected,
                              raw.get("setup"), raw.get("expect"),
                              _turn_limit(category, raw, len(expected)),
                              tuple((m["role"], m["content"]) for m in raw.get("history", ())),
                              tuple(raw.get("asks_for", ()))))
    digest = hashlib.sha256("\0".join(texts[k] for k in sorted(texts)).encode()).hexdigest()
    return Suite(SUITE_NAME, digest, library["instructions"],
                 tuple(c for c in cases if c.category in CATEGORIES),
                 tuple(c for c in cases if c.category not in CATEGORIES))


def select(suite: Suite, categories: tuple[str, ...] = ()) -> tuple[Case, ...]:
    """The suite's cases in the given categories (``CATEGORIES`` when none are given)."""
    unknown = [c for c in categories if c not in ALL_CATEGORIES]
    if unknown:
        raise UsageError(f"unknown category {unknown[0]!r}: choose from "
                         f"{', '.join(ALL_CATEGORIES)}")
    return tuple(c for c in (*suite.cases, *suite.on_request)
                 if c.category in (categories or CATEGORIES))


def case_by_id(suite: Suite, case_id: str) -> Case | None:
    return next((c for c in (*suite.cases, *suite.on_request) if c.id == case_id), None)
