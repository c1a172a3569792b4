"""MCP servers as gpt-oss functions: start, list, call and stop them with the MCP SDK.

The tool loop is synchronous; the SDK is async. ``connect`` runs the SDK in a blocking
portal (an event loop on a thread of its own): each server's ``Client`` is entered and left
by one task there (stdio servers: the SDK starts and ends the process; its stderr goes to
a pipe of which only the last lines are kept, never to the terminal), and every list and
call waits at most ``timeout_s``. Leaving ``connect`` — normally, on an error, or on
Ctrl-C — stops every server it started.

Each server's tools become harmony functions (``functions``): the name made safe
(``[A-Za-z0-9_]``, at most ``MAX_NAME`` characters) and unique (a later server's clash
gets its server's name in front, then a number), the mapping kept; the input schema
translated to the subset of JSON Schema that openai-harmony renders (``translate``). A call
goes to the server and tool its function stands for, and its ``CallToolResult`` comes back
as the JSON the model reads (``as_result``): the text (parsed when it is JSON), the
structured content, or ``{"error": ...}`` when the tool says it failed. Everything a
server sends is bounded and hostile: descriptions cut, schemas bounded in size and depth,
results over ``sandbox.MAX_RESULT_BYTES`` refused.

A server that does not start, stops mid-call, does not answer in time, or answers what the
SDK cannot read raises ``McpFailure`` with one line (the server, what failed, the last
line it wrote on stderr): the attempt it served fails, never the run. Every call is logged
(server, tool, function, seconds, error) for the results.

This module and ``bench.mcp_reference`` are the only ones that import ``mcp``.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TextIO

import anyio
import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from gptoss_doctor.bench.grade import Call
from gptoss_doctor.bench.mcp_config import ServerSpec
from gptoss_doctor.bench.sandbox import as_json
from gptoss_doctor.errors import DoctorError

TIMEOUT_S = 30.0
"""Seconds a server may take to start, to list its tools, or to answer one call."""
MAX_NAME = 64
MAX_TOOLS = 128
"""Tools taken from one server (the rest are left out, with a note in the log)."""
MAX_DESCRIPTION = 1024
MAX_SCHEMA_BYTES = 16 << 10
MAX_SCHEMA_DEPTH = 8
MAX_ERROR_CHARS = 300
MAX_STDERR_TAIL = 4096
"""Bytes of a server's stderr kept, for the last line an error shows."""
_KEEP = ("type", "description", "enum", "default", "minimum", "maximum", "minLength",
         "maxLength", "format", "pattern", "minItems", "maxItems")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


class McpFailure(DoctorError):
    """An MCP server failed (start, listing, call): the attempt it served fails."""


@dataclass(frozen=True, slots=True)
class Function:
    """One server tool as the model sees it."""

    name: str  # the harmony function name
    server: str
    tool: str  # the server's own name for it
    description: str
    parameters: dict[str, Any]

    def for_prompt(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "parameters": self.parameters}


def safe_name(name: str, server: str, taken: set[str]) -> str:
    """A harmony-safe function name for ``server``'s tool ``name``, unique among ``taken``."""
    base = _UNSAFE.sub("_", name).strip("_")[:MAX_NAME] or "tool"
    candidates = [base, f"{_UNSAFE.sub('_', server).strip('_')}__{base}"[:MAX_NAME]]
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    number = 2
    while f"{candidates[1][:MAX_NAME - 4]}_{number}" in taken:
        number += 1
    return f"{candidates[1][:MAX_NAME - 4]}_{number}"


def translate(schema: Any) -> dict[str, Any]:
    """An MCP input schema as openai-harmony renders it: an object with ``properties``;
    local ``$ref``s inlined, ``anyOf``/``oneOf`` of plain types (or X-or-null) folded into
    ``type``, titles and unknown keywords dropped; anything deeper than
    ``MAX_SCHEMA_DEPTH`` or over ``MAX_SCHEMA_BYTES`` becomes "any value"."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    defs = {**_dict(schema.get("definitions")), **_dict(schema.get("$defs"))}
    out = _node(schema, defs, 0)
    out["type"] = "object"
    out.setdefault("properties", {})
    size = len(json.dumps(out))
    return out if size <= MAX_SCHEMA_BYTES else {"type": "object", "properties": {}}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _node(schema: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/") else None
        return _node(target, defs, depth + 1)
    out: dict[str, Any] = {k: schema[k] for k in _KEEP if k in schema}
    if isinstance(out.get("description"), str):
        out["description"] = out["description"][:MAX_DESCRIPTION]
    if "const" in schema:
        out["enum"] = [schema["const"]]
    branches = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(branches, list) and "type" not in out:
        out.update(_folded([_node(b, defs, depth + 1) for b in branches]))
    properties = schema.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {str(k)[:MAX_NAME]: _node(v, defs, depth + 1)
                             for k, v in list(properties.items())[:MAX_TOOLS]}
        required = schema.get("required")
        if isinstance(required, list):
            out["required"] = [r for r in required if r in out["properties"]]
    if "items" in schema:
        out["items"] = _node(schema["items"], defs, depth + 1)
    return out


def _folded(branches: list[dict[str, Any]]) -> dict[str, Any]:
    """``anyOf`` branches as one schema: plain types joined, or the one non-null branch."""
    types = [b.get("type") for b in branches]
    if branches and all(isinstance(t, str) and set(b) == {"type"} for t, b in
                        zip(types, branches, strict=True)):
        return {"type": types[0] if len(types) == 1 else types}
    real = [b for b in branches if b.get("type") != "null"]
    if len(real) == 1 and len(branches) == 2 and isinstance(real[0].get("type"), str):
        if "properties" in real[0]:  # harmony renders "object | null" without its fields
            return real[0]
        return {**real[0], "type": [real[0]["type"], "null"]}
    return {}


def as_result(result: Any) -> Any:
    """A ``CallToolResult`` as the JSON the model reads."""
    texts = [c.text for c in result.content if isinstance(getattr(c, "text", None), str)]
    other = [str(getattr(c, "type", "?")) for c in result.content
             if not isinstance(getattr(c, "text", None), str)]
    text = "\n".join(texts)
    if result.is_error:
        return {"error": text[:MAX_ERROR_CHARS] or "the tool failed"}
    if result.structured_content is not None:
        return as_json(result.structured_content)
    if other:
        return as_json({"text": text, "omitted": other})
    try:
        return as_json(json.loads(text))
    except (ValueError, RecursionError):
        return as_json(text)


@dataclass(slots=True)
class Live:
    """The servers of one attempt: their functions, the calls routed to them, the log."""

    portal: BlockingPortal
    clients: dict[str, Client]
    functions: tuple[Function, ...]
    timeouts: dict[str, float]  # server -> seconds for each call
    stderr: dict[str, StderrTail]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def prompt_tools(self) -> list[dict[str, Any]]:
        return [f.for_prompt() for f in self.functions]

    def respond(self, call: Call) -> Any:
        """The result of a model's call (``tool_run.LiveTools``): arguments that are not a
        JSON object are the model's error to read; a failing server raises."""
        try:
            arguments = json.loads(call.arguments)
        except (ValueError, RecursionError):
            return {"error": "arguments are not valid JSON"}
        if not isinstance(arguments, dict):
            return {"error": "arguments must be a JSON object"}
        return self.call(call.name, arguments)

    def function(self, name: str) -> Function | None:
        return next((f for f in self.functions if f.name == name), None)

    def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """The result of calling function ``name``; ``McpFailure`` when its server fails."""
        function = self.function(name)
        if function is None:
            return {"error": f"no tool named {name[:60]!r}"}
        started, timeout_s = time.perf_counter(), self.timeouts[function.server]
        entry: dict[str, Any] = {"server": function.server, "tool": function.tool,
                                 "function": name, "seconds": None, "error": None}
        self.calls.append(entry)
        try:
            result = self.portal.call(_call, self.clients[function.server], function.tool,
                                      arguments, timeout_s)
            answer = as_result(result)
        except Exception as exc:
            what = f"answered {function.tool!r} with what the MCP SDK cannot read" \
                if _malformed(exc) else f"failed on {function.tool!r}"
            if isinstance(exc, TimeoutError):
                what = f"did not answer {function.tool!r} within {timeout_s:g} s"
            entry["error"] = self.failure(function.server, what, exc).message
            raise McpFailure(entry["error"]) from None
        finally:
            entry["seconds"] = round(time.perf_counter() - started, 4)
        if isinstance(answer, dict) and "error" in answer:
            entry["error"] = str(answer["error"])[:MAX_ERROR_CHARS]
        return answer

    def failure(self, server: str, what: str, exc: BaseException | None) -> McpFailure:
        return failure(server, what, exc, self.stderr.get(server))

    def record(self) -> dict[str, Any]:
        """What the results keep of this attempt's servers and calls."""
        counts: dict[str, int] = {}
        for entry in self.calls:
            counts[entry["server"]] = counts.get(entry["server"], 0) + 1
        return {"servers": sorted(self.clients),
                "functions": {f.name: [f.server, f.tool] for f in self.functions},
                "calls": list(self.calls), "calls_by_server": counts}


def failure(server: str, what: str, exc: BaseException | None, stderr: StderrTail | None
            ) -> McpFailure:
    """One line: the server, what failed, why, and the last line it wrote on stderr."""
    reason = _reason(exc) if exc is not None else ""
    said = stderr.last_line() if stderr is not None else ""
    text = f"MCP server {server[:60]!r} {what}" + (f": {reason}" if reason else "") \
        + (f" (its last words: {said})" if said else "")
    return McpFailure(text[:600], "check the server's command in the MCP configuration")


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).splitlines()[0] if str(exc).strip() else ""
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line[:MAX_ERROR_CHARS].encode("utf-8", "replace").decode("utf-8")


def _malformed(exc: BaseException) -> bool:
    return type(exc).__name__ == "ValidationError"


class StderrTail:
    """Where a server's stderr goes: a pipe that a thread drains, keeping only the last
    ``MAX_STDERR_TAIL`` bytes (a server may write without end: nothing of it reaches the
    terminal or the disk)."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.writer: TextIO = os.fdopen(write, "w", encoding="utf-8", errors="replace")
        self._tail = b""
        self._thread = threading.Thread(target=self._drain, args=(read,), daemon=True)
        self._thread.start()

    def _drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                self._tail = (self._tail + chunk)[-MAX_STDERR_TAIL:]

    def close(self) -> None:
        """Close our end (the server keeps its own until it exits)."""
        self.writer.close()

    def last_line(self, wait_s: float = 0.5) -> str:
        """The last line written so far: our end closed, a server that has exited gives
        end of file at once, one still running gets ``wait_s`` to be read."""
        self.close()
        self._thread.join(wait_s)
        lines = self._tail.decode("utf-8", "replace").strip().splitlines()
        return lines[-1].strip()[:200] if lines else ""


async def _call(client: Client, tool: str, arguments: dict[str, Any], timeout_s: float
                ) -> Any:
    with anyio.fail_after(timeout_s):
        return await client.call_tool(tool, arguments, read_timeout_seconds=timeout_s)


async def _tools(client: Client, timeout_s: float) -> list[Any]:
    """The server's tools, page by page, at most ``MAX_TOOLS``."""
    tools: list[Any] = []
    cursor: str | None = None
    with anyio.fail_after(timeout_s):
        while len(tools) < MAX_TOOLS:
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
    return tools[:MAX_TOOLS]


@asynccontextmanager
async def _session(spec: ServerSpec, timeout_s: float, errlog: TextIO
                   ) -> AsyncIterator[Client]:
    """A connected client for ``spec`` (its process or HTTP client closed on exit)."""
    # The SDK bounds the handshake by read_timeout_seconds (a cancel scope around
    # __aenter__ cannot be used: the client's task groups outlive it). "legacy": the
    # initialize handshake every MCP server speaks, without probing for 2026-07-28.
    async with _transport(spec, errlog) as transport, \
            Client(transport, read_timeout_seconds=timeout_s, mode="legacy") as client:
        yield client


@asynccontextmanager
async def _transport(spec: ServerSpec, errlog: TextIO) -> AsyncIterator[Any]:
    if spec.command is not None:
        yield stdio_client(StdioServerParameters(
            command=spec.command, args=list(spec.args), env=dict(spec.env) or None,
            cwd=spec.cwd, encoding_error_handler="replace"), errlog=errlog)
        return
    async with httpx2.AsyncClient(headers=dict(spec.headers),
                                  timeout=httpx2.Timeout(30.0, read=300.0)) as http:
        yield streamable_http_client(spec.url or "", http_client=http)


def _functions(listed: dict[str, list[Any]], keep: dict[str, frozenset[str]] | None
               ) -> tuple[Function, ...]:
    """Every listed tool as a function (the servers in order, ``keep`` filtering a
    server's tools by their own names)."""
    taken: set[str] = set()
    functions: list[Function] = []
    for server, tools in listed.items():
        for tool in tools:
            name = str(getattr(tool, "name", ""))[:200]
            if keep is not None and server in keep and name not in keep[server]:
                continue
            safe = safe_name(name, server, taken)
            taken.add(safe)
            description = getattr(tool, "description", None) or name
            functions.append(Function(safe, server, name, str(description)[:MAX_DESCRIPTION],
                                      translate(getattr(tool, "input_schema", None))))
    return tuple(functions)


@contextmanager
def connect(specs: Sequence[ServerSpec], timeout_s: float = TIMEOUT_S,
            keep: dict[str, frozenset[str]] | None = None) -> Iterator[Live]:
    """Start (or reach) every server in ``specs``, list their tools, and yield them as one
    ``Live``; every server is stopped on the way out, whatever happened. Each server waits
    ``timeout_s`` at most (its own ``ServerSpec.timeout_s`` when it has one)."""
    # The portal outlives the stack: every client is left through it.
    with start_blocking_portal() as portal, ExitStack() as stack:
        clients: dict[str, Client] = {}
        stderr: dict[str, StderrTail] = {}
        listed: dict[str, list[Any]] = {}
        timeouts = {spec.name: spec.timeout_s or timeout_s for spec in specs}
        for spec in specs:
            timeout_s = timeouts[spec.name]
            stderr[spec.name] = StderrTail()
            stack.callback(stderr[spec.name].close)
            try:
                clients[spec.name] = stack.enter_context(
                    _quiet_exit(portal.wrap_async_context_manager(
                        _session(spec, timeout_s, stderr[spec.name].writer))))
                listed[spec.name] = portal.call(_tools, clients[spec.name], timeout_s)
            except Exception as exc:
                what = "did not start" if spec.name not in clients else "did not list its tools"
                if isinstance(exc, TimeoutError):
                    what += f" within {timeout_s:g} s"
                raise failure(spec.name, what, exc, stderr[spec.name]) from None
        yield Live(portal, clients, _functions(listed, keep), timeouts, stderr)


@contextmanager
def _quiet_exit(manager: Any) -> Iterator[Any]:
    """Enter ``manager``; leaving it never raises (a server that already died)."""
    value = manager.__enter__()
    try:
        yield value
    finally:
        with suppress(Exception):  # a server already gone: it is stopped either way
            manager.__exit__(None, None, None)
