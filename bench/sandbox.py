"""The real tools of ``act`` cases: files and a key-value store inside a sandbox folder.

Every path is relative to a fresh folder; absolute paths, ``..`` parts and symbolic links
anywhere on the way are refused (and counted), so nothing a model asks for can read or
write outside it; a path with a NUL byte or a character that is not valid Unicode is a tool
error. The calculator evaluates arithmetic from the syntax tree only (no ``eval``), and
checks the expression's size and every intermediate value's magnitude *before* computing
it, so no call runs for more than milliseconds. Tools return JSON-able results; a bad call
returns ``{"error": ...}`` for the model to read, as a real tool runtime would, and so
does any exception inside a tool or a result JSON cannot hold (``answer``, the one way in).
Each tool's work is bounded: what one attempt may write (``MAX_WRITTEN_BYTES``), what one
read returns (``MAX_READ_BYTES``), one result (``MAX_RESULT_BYTES``) and the calculator.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

MAX_WRITTEN_BYTES = 1 << 20
"""Bytes one attempt may write in its sandbox (file contents and key-value pairs, every
write counted, overwrites too). The ``act`` cases write a few lines; a model that keeps
writing ends its attempt as ``over_limit`` instead of filling the disk."""
MAX_READ_BYTES = 16 << 10
"""The most of a file ``read_file`` returns (it says when it cut): what a tool may put back
into the model's context in one call, the same bound as one call's arguments."""
MAX_RESULT_BYTES = 64 << 10
"""Bytes of JSON one tool result may feed back: a bound on every tool's output (the real
tools stay far below it)."""
MAX_EXPRESSION_CHARS = 500
"""Characters in one calculator expression: far more than arithmetic needs, and short
enough that Python's parser never nears its own nesting limits."""
MAX_EXPRESSION_NODES = 200
"""Syntax-tree nodes in one expression (numbers, operators): bounds the work of a flat
expression such as ``1+1+...+1``."""
MAX_EXPRESSION_DEPTH = 32
"""Nesting depth of the syntax tree: the evaluator recurses once per level, so this keeps
it far from Python's recursion limit."""
MAX_INT_BITS = 1024
"""Whole numbers are exact up to 2**1024 (about 1.8e308, the range of a float): every value
stays far below Python's 4,300-digit limit for turning integers into text, and a power is
refused before computing when its result would be larger, so ``(((10**64)**64)**64)**64``
costs microseconds, not minutes."""

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow}


class Refused(Exception):
    """A path that would leave the sandbox."""


class ToolFailure(Exception):
    """A call the tool cannot carry out (missing file, bad expression...)."""


def _checked(value: Any) -> int | float:
    """``value`` when it is a real number within the calculator's range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolFailure("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolFailure("the result is too large")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolFailure(f"the result is larger than 2**{MAX_INT_BITS}")
    return value


def _apply(op: ast.operator, left: int | float, right: int | float) -> int | float:
    """``left op right``, refused before computing when a power would be out of range."""
    if isinstance(op, ast.Pow) and isinstance(left, int) and isinstance(right, int) \
            and right > 0 and (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
        # |left| >= 2**(bits - 1), so the result has more than MAX_INT_BITS bits.
        raise ToolFailure(f"the result is larger than 2**{MAX_INT_BITS}")
    try:
        return _checked(_BINARY[type(op)](left, right))
    except ZeroDivisionError:
        raise ToolFailure("division by zero") from None
    except OverflowError:  # a float power or an int too large to divide as a float
        raise ToolFailure("the result is too large") from None


def _value(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        return _checked(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _apply(node.op, _value(node.left), _value(node.right))
    raise ToolFailure("only numbers, + - * / // % ** and parentheses are allowed")


def _check_shape(tree: ast.AST) -> None:
    """Refuse a tree over ``MAX_EXPRESSION_NODES`` nodes or ``MAX_EXPRESSION_DEPTH`` deep
    (walked without recursion)."""
    stack, nodes = [(tree, 0)], 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_EXPRESSION_NODES or depth > MAX_EXPRESSION_DEPTH:
            raise ToolFailure("the expression is too long or nested too deeply")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def calculate(expression: str) -> int | float:
    """Arithmetic on numbers with + - * / // % ** and parentheses, within the limits above."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolFailure(f"the expression is over {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError):  # ValueError: a NUL byte in the source
        raise ToolFailure(f"not an arithmetic expression: {expression!r}") from None
    _check_shape(tree)
    return _value(tree.body)


def _calculator(args: dict[str, Any]) -> dict[str, Any]:
    return {"result": calculate(str(args["expression"]))}


def _guarded(action: Callable[[], Any], refusals: list[str]) -> Any:
    """Run a tool; a failure becomes ``{"error": ...}`` for the model, a refusal is counted."""
    try:
        return action()
    except Refused as exc:
        refusals.append(str(exc))
        return {"error": f"refused: {exc}"}
    except (ToolFailure, KeyError, TypeError) as exc:
        return {"error": str(exc) or type(exc).__name__}
    except OSError as exc:
        return {"error": exc.strerror or str(exc)}


@contextmanager
def fresh_sandbox(setup: dict[str, Any] | None, prefix: str = "gptoss-sandbox-"
                  ) -> Iterator[Sandbox]:
    """A sandbox in a new temporary folder, removed with everything in it afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Sandbox(Path(folder) / "work", setup)


def _text(value: Any, what: str) -> str:
    """``value`` as text that can be written to disk: NUL bytes and lone surrogates (which
    a JSON ``\\ud800`` escape gives) are refused as a tool error, not an exception."""
    text = str(value)
    if "\x00" in text:
        raise ToolFailure(f"the {what} contains a NUL byte")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolFailure(f"the {what} is not valid Unicode text") from None
    return text


class Sandbox:
    """A folder and a key-value store that the ``act`` tools work in."""

    def __init__(self, root: Path, setup: dict[str, Any] | None = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.kv: dict[str, str] = {}
        self.refusals: list[str] = []
        self.written = 0  # bytes the tools wrote (the setup not counted)
        self.over_limit: str | None = None  # why the write budget stopped the attempt
        for name, content in (setup or {}).get("files", {}).items():
            target = self.resolve(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        self.kv.update((setup or {}).get("kv", {}))

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` inside the sandbox; ``Refused`` when it would escape,
        ``ToolFailure`` when it is no file name at all (a NUL byte, a lone surrogate)."""
        path = _text(path, "path")
        pure = PurePosixPath(path.replace("\\", "/"))
        if not path.strip() or pure.is_absolute() or (pure.parts and ":" in pure.parts[0]):
            raise Refused(f"{path!r} is not a relative path inside the working folder")
        if ".." in pure.parts:
            raise Refused(f"{path!r} leaves the working folder")
        current = self.root
        for part in pure.parts:
            if part == ".":
                continue
            current = current / part
            if current.is_symlink():
                raise Refused(f"{path!r} goes through a symbolic link")
        if not current.resolve().is_relative_to(self.root):
            raise Refused(f"{path!r} leaves the working folder")
        return current

    def call(self, name: str, args: dict[str, Any]) -> Any:
        """Run one tool call; errors come back as ``{"error": ...}`` (refusals are counted)."""
        return _guarded(lambda: self._dispatch(name, args), self.refusals)

    def _spend(self, text: str) -> int:
        """Count ``text`` against the attempt's write budget; its size in bytes."""
        size = len(text.encode("utf-8"))
        if self.written + size > MAX_WRITTEN_BYTES:
            self.over_limit = (f"the tools were asked to write over {MAX_WRITTEN_BYTES} bytes "
                               "in one attempt")
            raise ToolFailure(self.over_limit)
        self.written += size
        return size

    def _dispatch(self, name: str, args: dict[str, Any]) -> Any:
        if name == "calculate":
            return _calculator(args)
        if name == "kv_set":
            key, value = _text(args["key"], "key"), _text(args["value"], "value")
            self._spend(key + value)
            self.kv[key] = value
            return {"stored": True}
        if name == "kv_get":
            return {"value": self.kv.get(str(args["key"]))}
        if name in ("create_file", "read_file", "delete_file"):
            return self._file_tool(name, str(args["path"]), args)
        if name == "list_files":
            folder = self.resolve(str(args.get("path") or "."))
            if not folder.is_dir():
                raise ToolFailure(f"no folder {args.get('path')!r}")
            return {"files": sorted(p.name + ("/" if p.is_dir() else "")
                                    for p in folder.iterdir())}
        raise ToolFailure(f"unknown tool {name!r}")

    def _file_tool(self, name: str, path: str, args: dict[str, Any]) -> Any:
        target = self.resolve(path)
        if name == "create_file":
            content = _text(args["content"], "content")
            size = self._spend(content)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            return {"written": path, "bytes": size}
        if not target.is_file():
            raise ToolFailure(f"no file {path!r}")
        if name == "delete_file":
            target.unlink()
            return {"deleted": path}
        with target.open("rb") as handle:
            data = handle.read(MAX_READ_BYTES + 1)
        content = data[:MAX_READ_BYTES].decode("utf-8", errors="replace")
        return {"content": content, "truncated": True} if len(data) > MAX_READ_BYTES \
            else {"content": content}

    def files(self) -> dict[str, str]:
        """Every file in the sandbox (relative POSIX path -> text)."""
        return {p.relative_to(self.root).as_posix(): p.read_text(encoding="utf-8",
                                                                 errors="replace")
                for p in sorted(self.root.rglob("*")) if p.is_file() and not p.is_symlink()}


def answer(tool_executor: str, mock_result: Any, sandbox: Sandbox | None, name: str,
           args: dict[str, Any]) -> Any:
    """The result a call gets, as plain JSON: the real tool, or the tool's fixed mock
    answer. Whatever goes wrong inside a tool comes back as ``{"error": ...}``."""
    try:
        if tool_executor in ("calculator", "sandbox") and sandbox is not None:
            result = sandbox.call(name, args)
        elif tool_executor == "calculator":  # needs no folder
            result = _guarded(lambda: _calculator(args), [])
        else:
            result = mock_answer(mock_result, args)
    except Exception as exc:  # any failure inside a tool is the model's to read, not ours
        result = {"error": f"the tool failed: {type(exc).__name__}: {str(exc)[:200]}"}
    return as_json(result)


def mock_answer(mock: Any, args: dict[str, Any]) -> Any:
    """A mock tool's answer to ``args``: a ``"{name}"`` string is that argument (null when
    left out), ``"{name*F}"`` that numeric argument times F (rounded to 2 places), and
    ``"when": [[conditions, changes], ...]`` changes fields for arguments that match
    (case-insensitively), so the answer fits the call (Fahrenheit when asked, the city and
    the amount asked about) and a careful model has no reason to call again."""
    if not isinstance(mock, dict):
        return mock
    answer = {k: v for k, v in mock.items() if k != "when"}
    for conditions, changes in mock.get("when", ()):
        if all(str(args.get(k, "")).casefold() == str(v).casefold()
               for k, v in conditions.items()):
            answer.update(changes)
    return {k: _filled(v, args) for k, v in answer.items()}


def _filled(value: Any, args: dict[str, Any]) -> Any:
    if not (isinstance(value, str) and value[:1] == "{" and value[-1:] == "}"):
        return value
    name, _, factor = value[1:-1].partition("*")
    given = args.get(name)
    if not factor:
        return given
    if isinstance(given, bool) or not isinstance(given, int | float):
        return None  # not a number: the schema check fails the call anyway
    return round(given * float(factor), 2)


def as_json(result: Any) -> Any:
    """``result`` as the JSON the model reads: what JSON cannot hold (a complex number, an
    integer past Python's 4,300-digit limit, NaN) or what is over ``MAX_RESULT_BYTES`` is
    an error; a lone surrogate, which no encoder can send, becomes "?"."""
    try:
        text = json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return {"error": f"the tool's result cannot be written as JSON: {str(exc)[:200]}"}
    data = text.encode("utf-8", "replace")
    if len(data) > MAX_RESULT_BYTES:
        return {"error": f"the tool's result is over {MAX_RESULT_BYTES} bytes"}
    return json.loads(data)
