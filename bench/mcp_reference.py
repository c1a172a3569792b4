"""The reference MCP server: the ``act`` file and key-value tools, served with the MCP SDK.

``python -m gptoss_doctor.bench.mcp_reference [--root DIR] [--setup FILE] [--http PORT]``
serves ``create_file``, ``read_file``, ``list_files``, ``delete_file``, ``kv_set`` and
``kv_get`` over stdio (the default: what LM Studio and Cursor start from ``mcp.json``) or
streamable HTTP on 127.0.0.1:PORT (path ``/mcp``). Every call goes through
``sandbox.Sandbox``, the tools the ``act`` cases run in-process, so the confinement rules
are the same ones: paths stay inside the root (``..``, absolute paths and symbolic links
refused), one server may write at most ``sandbox.MAX_WRITTEN_BYTES``, a read returns at
most ``sandbox.MAX_READ_BYTES``. The same tools being deterministic is also what lets the
``mcp`` category be graded by replaying the calls in-process (docs/mcp.md).

Without ``--root`` the files live in a temporary folder removed when the server stops.
``--setup`` names a JSON file ``{"files": {path: text}, "kv": {key: value}}`` written into
the sandbox before the first call (how ``bench tools --category mcp`` gives each attempt
its case's starting state). A tool that fails answers ``isError`` with the reason.

This module and ``bench.mcp_client`` are the only ones that import ``mcp``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from gptoss_doctor.bench.sandbox import Sandbox
from gptoss_doctor.errors import UsageError
from gptoss_doctor.jsonin import Limits, read_json

NAME = "gptoss-doctor-reference"
SETUP_LIMITS = Limits(max_bytes=1 << 20, max_depth=4, max_text=64 << 10)


def _result(sandbox: Sandbox, name: str, args: dict[str, Any]) -> str:
    """The sandbox's answer as JSON text; a tool error is an MCP tool error."""
    result = sandbox.call(name, args)
    if isinstance(result, dict) and set(result) == {"error"}:
        raise ToolError(str(result["error"]))
    return json.dumps(result, ensure_ascii=False)


def build(sandbox: Sandbox) -> MCPServer:
    """The server with the six tools bound to ``sandbox``."""
    server: MCPServer = MCPServer(NAME, instructions="File and key-value tools confined to "
                                  "one working folder.", log_level="WARNING")

    def tool(description: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
        return cast(Callable[[Callable[..., str]], Callable[..., str]],
                    server.tool(description=description, structured_output=False))

    @tool("Create or overwrite a text file in the working folder.")
    def create_file(path: str, content: str) -> str:
        return _result(sandbox, "create_file", {"path": path, "content": content})

    @tool("Read a text file from the working folder.")
    def read_file(path: str) -> str:
        return _result(sandbox, "read_file", {"path": path})

    @tool("List the files in a folder of the working folder (default: the working folder).")
    def list_files(path: str = ".") -> str:
        return _result(sandbox, "list_files", {"path": path})

    @tool("Delete a file in the working folder.")
    def delete_file(path: str) -> str:
        return _result(sandbox, "delete_file", {"path": path})

    @tool("Store a value under a key in the key-value store.")
    def kv_set(key: str, value: str) -> str:
        return _result(sandbox, "kv_set", {"key": key, "value": value})

    @tool("Read the value stored under a key (null when absent).")
    def kv_get(key: str) -> str:
        return _result(sandbox, "kv_get", {"key": key})

    return server


def read_setup(path: Path) -> dict[str, Any]:
    """A setup file's files and key-values (text only), or ``UsageError``."""
    raw = read_json(path, SETUP_LIMITS, kind="a JSON sandbox setup")
    if not isinstance(raw, dict) or set(raw) - {"files", "kv"}:
        raise UsageError(f"{path}: a setup holds only 'files' and 'kv'")
    for key in ("files", "kv"):
        part = raw.get(key, {})
        if not isinstance(part, dict) or not all(isinstance(v, str) for v in part.values()):
            raise UsageError(f"{path}: '{key}' must map names to text")
    return raw


def _serve(root: Path, setup: dict[str, Any] | None, port: int | None) -> None:
    server = build(Sandbox(root, setup))
    if port is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gptoss_doctor.bench.mcp_reference",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, help="The working folder (default: a "
                        "temporary one, removed on exit).")
    parser.add_argument("--setup", type=Path, help="JSON {files, kv} to start from.")
    parser.add_argument("--http", type=int, metavar="PORT", help="Serve streamable HTTP on "
                        "127.0.0.1:PORT instead of stdio.")
    args = parser.parse_args(argv)
    try:
        setup = read_setup(args.setup) if args.setup else None
        if args.root is not None:
            _serve(args.root, setup, args.http)
            return 0
        with tempfile.TemporaryDirectory(prefix="gptoss-mcp-") as folder:
            _serve(Path(folder) / "work", setup, args.http)
    except UsageError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
