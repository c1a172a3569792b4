"""The real tools of ``act`` cases: files and a key-value store inside a sandbox folder.

Every path is relative to a fresh folder; absolute paths, ``..`` parts and symbolic links
anywhere on the way are refused (and counted), so nothing a model asks for can read or
write outside it. The calculator evaluates arithmetic from the syntax tree only (no
``eval``), with bounded exponents. Tools return JSON-able results; a bad call returns
``{"error": ...}`` for the model to read, as a real tool runtime would.
"""

from __future__ import annotations

import ast
import json
import operator
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

MAX_FILE_BYTES = 1 << 20
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow}


class Refused(Exception):
    """A path that would leave the sandbox."""


class ToolFailure(Exception):
    """A call the tool cannot carry out (missing file, bad expression...)."""


def calculate(expression: str) -> int | float:
    """Arithmetic on numbers with + - * / // % ** and parentheses."""
    def value(node: ast.AST) -> int | float:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ToolFailure("exponent too large")
            try:
                return _BINARY[type(node.op)](left, right)  # type: ignore[no-any-return]
            except ZeroDivisionError:
                raise ToolFailure("division by zero") from None
        raise ToolFailure("only numbers, + - * / // % ** and parentheses are allowed")

    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ToolFailure(f"not an arithmetic expression: {expression!r}") from None
    return value(tree)


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


class Sandbox:
    """A folder and a key-value store that the ``act`` tools work in."""

    def __init__(self, root: Path, setup: dict[str, Any] | None = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.kv: dict[str, str] = {}
        self.refusals: list[str] = []
        for name, content in (setup or {}).get("files", {}).items():
            target = self.resolve(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        self.kv.update((setup or {}).get("kv", {}))

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` inside the sandbox; ``Refused`` when it would escape."""
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

    def _dispatch(self, name: str, args: dict[str, Any]) -> Any:
        if name == "calculate":
            return _calculator(args)
        if name == "kv_set":
            self.kv[str(args["key"])] = str(args["value"])
            return {"stored": True}
        if name == "kv_get":
            return {"value": self.kv.get(str(args["key"]))}
        if name == "create_file":
            content = str(args["content"])
            if len(content.encode()) > MAX_FILE_BYTES:
                raise ToolFailure("content over 1 MiB")
            target = self.resolve(str(args["path"]))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            return {"written": str(args["path"]), "bytes": len(content.encode())}
        if name == "read_file":
            target = self.resolve(str(args["path"]))
            if not target.is_file():
                raise ToolFailure(f"no file {args['path']!r}")
            return {"content": target.read_text(encoding="utf-8", errors="replace")}
        if name == "list_files":
            folder = self.resolve(str(args.get("path") or "."))
            if not folder.is_dir():
                raise ToolFailure(f"no folder {args.get('path')!r}")
            return {"files": sorted(p.name + ("/" if p.is_dir() else "")
                                    for p in folder.iterdir())}
        if name == "delete_file":
            target = self.resolve(str(args["path"]))
            if not target.is_file():
                raise ToolFailure(f"no file {args['path']!r}")
            target.unlink()
            return {"deleted": str(args["path"])}
        raise ToolFailure(f"unknown tool {name!r}")

    def files(self) -> dict[str, str]:
        """Every file in the sandbox (relative POSIX path -> text)."""
        return {p.relative_to(self.root).as_posix(): p.read_text(encoding="utf-8",
                                                                 errors="replace")
                for p in sorted(self.root.rglob("*")) if p.is_file() and not p.is_symlink()}


def answer(tool_executor: str, mock_result: Any, sandbox: Sandbox | None, name: str,
           args: dict[str, Any]) -> Any:
    """The result a call gets: the real tool, or the tool's fixed mock answer."""
    if tool_executor in ("calculator", "sandbox") and sandbox is not None:
        return sandbox.call(name, args)
    if tool_executor == "calculator":  # needs no folder
        return _guarded(lambda: _calculator(args), [])
    return json.loads(json.dumps(mock_result))
