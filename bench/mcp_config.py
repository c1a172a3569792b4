"""MCP server declarations: LM Studio's ``mcp.json`` (Cursor's notation), read as hostile input.

The file is ``{"mcpServers": {name: server}}`` where a server is started from a command
(``command``, optional ``args`` and ``env``, optional ``cwd``: stdio) or reached at a URL
(``url``, optional ``headers``: streamable HTTP). LM Studio documents this notation at
lmstudio.ai/docs/app/mcp ("LM Studio currently follows Cursor's mcp.json notation").
``type`` may say which (``stdio``, ``http``, ``streamable-http``); ``disabled: true`` leaves
a server out; ``icon`` and ``description`` are labels and ignored. Anything else — another
key, a value of the wrong type, a server with neither or both of ``command`` and ``url``,
an SSE-only server — is refused with one line naming the server and the key.

Header values, environment values whose names say key, token, secret, password, auth or
credential, and a URL's password and query string are registered with ``secrets``, so
that no message or results file ever shows them.

Nothing here starts a server (``bench.mcp_client`` does, and only when asked) or imports
the MCP SDK, so a broken file is reported before anything runs.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gptoss_doctor import secrets
from gptoss_doctor.errors import UsageError
from gptoss_doctor.jsonin import Limits, read_json, shown

CONFIG_LIMITS = Limits(max_bytes=1 << 20, max_depth=6, max_text=8192)
MAX_SERVERS = 32
"""Servers one file may declare: each is started for every attempt of the ``mcp`` cases."""
REFERENCE = "gptoss-reference"
"""The name the reference server goes by (a user's server cannot take it)."""
_KEYS = {"command", "args", "env", "cwd", "url", "headers", "type", "disabled", "icon",
         "description"}
_TYPES = {"stdio", "http", "streamable-http", "streamableHttp"}
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*\Z")
_SECRET_NAME = re.compile(r"key|token|secret|pass|auth|cred", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One MCP server to start (``command``) or reach (``url``)."""

    name: str
    source: str  # "reference", or the config file it came from
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float | None = None  # None: the run's --mcp-timeout

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "streamable-http"


def reference(setup_file: Path | None = None, root: Path | None = None) -> ServerSpec:
    """The reference server (``bench.mcp_reference``) over stdio, run by this Python (with
    its ``PYTHONPATH``: the SDK starts servers with a minimal environment)."""
    args = ["-m", "gptoss_doctor.bench.mcp_reference"]
    if root is not None:
        args += ["--root", str(root)]
    if setup_file is not None:
        args += ["--setup", str(setup_file)]
    path = os.environ.get("PYTHONPATH")
    return ServerSpec(REFERENCE, "reference", sys.executable, tuple(args),
                      (("PYTHONPATH", path),) if path else ())


def default_path(lmstudio_home: Path) -> Path:
    """LM Studio's own ``mcp.json``."""
    return lmstudio_home / "mcp.json"


def read_config(path: Path) -> tuple[ServerSpec, ...]:
    """The enabled servers ``path`` declares; ``UsageError`` with one line otherwise."""
    raw = read_json(path, CONFIG_LIMITS, name=str(path), kind="a JSON MCP configuration")
    if not isinstance(raw, dict) or not isinstance(raw.get("mcpServers"), dict):
        raise UsageError(f"{path} holds no \"mcpServers\" object",
                         "LM Studio's mcp.json: {\"mcpServers\": {\"name\": {\"command\": "
                         "..., \"args\": [...]}}}")
    servers = raw["mcpServers"]
    if len(servers) > MAX_SERVERS:
        raise UsageError(f"{path} declares {len(servers)} MCP servers; at most {MAX_SERVERS}")
    specs = [_server(path, str(name), entry) for name, entry in servers.items()]
    enabled = tuple(s for s in specs if s is not None)
    if not enabled:
        raise UsageError(f"{path} declares no enabled MCP server")
    return enabled


def _server(path: Path, name: str, entry: Any) -> ServerSpec | None:
    where = f"{path}: server {shown(name, 60)}"
    if not name.strip() or name == REFERENCE:
        raise UsageError(f"{where}: that name cannot be used")
    if not isinstance(entry, dict):
        raise UsageError(f"{where} is not an object")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key {shown(unknown[0], 60)!r}",
                         "a server has command/args/env (stdio) or url/headers (HTTP)")
    if entry.get("disabled") is True:
        return None
    kind = entry.get("type")
    if kind is not None and kind not in _TYPES:
        raise UsageError(f"{where}: transport {shown(str(kind), 40)!r} is not supported",
                         "use a stdio command or a streamable HTTP url")
    command, url = entry.get("command"), entry.get("url")
    if (command is None) == (url is None):
        raise UsageError(f"{where} needs either \"command\" or \"url\"")
    if command is not None:
        if not isinstance(command, str) or not command.strip() or "\x00" in command:
            raise UsageError(f"{where}: \"command\" must be a program name")
        cwd = entry.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise UsageError(f"{where}: \"cwd\" must be a folder name")
        return ServerSpec(name, str(path), command, _texts(where, entry.get("args", [])),
                          _pairs(where, "env", entry.get("env", {})), cwd)
    if not isinstance(url, str) or not _URL.match(url):
        raise UsageError(f"{where}: \"url\" must be an http:// or https:// address")
    parts = urlsplit(url)  # a token in the address: user:password@ or ?key=...
    for secret in (parts.password, parts.query):
        secrets.register(secret)
    return ServerSpec(name, str(path), url=url,
                      headers=_pairs(where, "headers", entry.get("headers", {})))


def _texts(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and "\x00" not in v
                                              for v in value):
        raise UsageError(f"{where}: \"args\" must be a list of strings")
    return tuple(value)


def _pairs(where: str, key: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(
            isinstance(v, str) and k and "\x00" not in k + v for k, v in value.items()):
        raise UsageError(f"{where}: \"{key}\" must map names to strings")
    for name, secret in value.items():
        if key == "headers" or _SECRET_NAME.search(name):
            secrets.register(secret)
    return tuple((str(k), v) for k, v in value.items())
