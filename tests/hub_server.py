"""A local HTTP server that speaks the Hub's download protocol, for real huggingface_hub calls.

Serves repositories from memory (files given as paths on disk). Implements what the client
and our downloader use (docs/design.md, "Hub protocol and client behaviour"):
``GET /api/models/{repo}[/revision/{rev}]``
with LFS metadata, ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``,
``ETag``/``X-Linked-Etag``, ``X-Linked-Size`` and ``Range`` (206 + ``Content-Range``), and the
``X-Error-Code`` header (``RepoNotFound``, ``GatedRepo``, ``EntryNotFound``) that makes the
client raise the right error. Switches simulate a server that dies mid-file or serves bytes
that do not match the published sha256, and a hostile or flaky one: listings with any file
name (``Repo.files`` keys are listed as given), a body longer than the listed size, with or
without a ``Content-Length``, a lying ``Content-Range``, a queue of faults (an HTTP status,
a connection reset, a body cut short) answered before the real file, and a redirect to
another server (``HubServer(state, host="127.0.0.2")`` on another loopback address) that
records the ``Authorization`` header each download request carried.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(/revision/(?P<rev>[^/?]+))?$")


@dataclass
class Repo:
    files: dict[str, Path]
    gated: bool = False
    commit: str = ""
    sha256: dict[str, str] = field(default_factory=dict)
    plain: frozenset[str] = frozenset()  # served as regular git files, not LFS

    def __post_init__(self) -> None:
        self.commit = self.commit or hashlib.sha1(repr(sorted(self.files)).encode()).hexdigest()
        for name, path in self.files.items():
            self.sha256.setdefault(name, hashlib.sha256(path.read_bytes()).hexdigest())


def _sibling(repo: Repo, name: str, path: Path) -> dict[str, object]:
    """A file as ``model_info(files_metadata=True)`` lists it: LFS with its sha256, or a
    regular git file with only its git object id (the Hub's small configs)."""
    size = path.stat().st_size
    if name in repo.plain:
        data = path.read_bytes()
        return {"rfilename": name, "size": size,
                "blobId": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
    return {"rfilename": name, "size": size, "blobId": hashlib.sha1(name.encode()).hexdigest(),
            "lfs": {"sha256": repo.sha256[name], "size": size, "pointerSize": 134}}


@dataclass
class HubState:
    repos: dict[str, Repo] = field(default_factory=dict)
    # Close the connection at this byte of the file, every time: a request resumed past it
    # gets its headers and no body (a server that died and stays dead, for every retry).
    die_after_bytes: int | None = None
    corrupt: bool = False  # serve flipped bytes (the published sha256 stays the original)
    bytes_served: int = 0
    requests: list[str] = field(default_factory=list)
    extra_bytes: int = 0  # bytes past the listed size appended to every file body
    omit_length: bool = False  # no Content-Length: the body ends when the connection closes
    content_range: str | None = None  # sent instead of the true Content-Range
    # Answered, one per download request, before the real file: an HTTP status (with
    # ``retry_after`` as its Retry-After header, if set), "reset" (the connection closes
    # without an answer) or "cut" (the body stops after ``cut_bytes``).
    faults: list[int | str] = field(default_factory=list)
    retry_after: str | None = None
    cut_bytes: int = 4096
    redirect_to: str | None = None  # base URL every download request is redirected to (once)
    ranges: list[str | None] = field(default_factory=list)  # Range of each download request
    authorizations: list[str | None] = field(default_factory=list)  # ... and Authorization


class _Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        return

    def _error(self, status: int, code: str) -> None:
        body = json.dumps({"error": code}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _repo(self, name: str) -> Repo | None:
        repo = self.state.repos.get(name)
        if repo is None:
            self._error(404, "RepoNotFound")
            return None
        if repo.gated and "authorization" not in {k.lower() for k in self.headers}:
            self._error(401, "GatedRepo")
            return None
        return repo

    def do_GET(self) -> None:
        self.state.requests.append(f"GET {self.path}")
        path = self.path.split("?", 1)[0]
        if path.startswith("/api/agent-harnesses"):
            self._json([])
            return
        info = _INFO.match(path)
        if info:
            repo = self._repo(info["repo"])
            if repo is not None:
                self._json({
                    "id": info["repo"], "modelId": info["repo"], "sha": repo.commit,
                    "private": False, "gated": "auto" if repo.gated else False,
                    "siblings": [_sibling(repo, name, p)
                                 for name, p in sorted(repo.files.items())]})
            return
        self._resolve(send_body=True)

    def do_HEAD(self) -> None:
        self.state.requests.append(f"HEAD {self.path}")
        self._resolve(send_body=False)

    def _json(self, data: object) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _resolve(self, send_body: bool) -> None:
        match = _RESOLVE.match(self.path.split("?", 1)[0])
        if match is None:
            self._error(404, "EntryNotFound")
            return
        fault = self._misbehave() if send_body else None
        if fault == "answered":
            return
        repo = self._repo(match["repo"])
        if repo is None:
            return
        name = urllib.parse.unquote(match["path"])
        if name not in repo.files:
            self._error(404, "EntryNotFound")
            return
        data = repo.files[name].read_bytes()
        if self.state.corrupt:
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        self._send_file(repo, name, data, send_body, cut=fault == "cut")

    def _misbehave(self) -> str | None:
        """Record a download request; "answered" when a redirect or a fault answered it,
        "cut" when its body is to stop after ``cut_bytes``."""
        state = self.state
        state.ranges.append(self.headers.get("Range"))
        state.authorizations.append(self.headers.get("Authorization"))
        if state.redirect_to and "redirected=1" not in self.path:
            self.send_response(302)
            self.send_header("Location", f"{state.redirect_to}{self.path.split('?', 1)[0]}"
                                         "?redirected=1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return "answered"
        fault = state.faults.pop(0) if state.faults else None
        if isinstance(fault, int):
            self.send_response(fault)
            if state.retry_after is not None:
                self.send_header("Retry-After", state.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return "answered"
        if fault == "reset":
            self.close_connection = True
            self.connection.shutdown(2)  # no status line at all
            return "answered"
        return fault

    def _send_file(self, repo: Repo, name: str, data: bytes, send_body: bool,
                   cut: bool = False) -> None:
        start = 0
        ranged = re.match(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if ranged:
            start = int(ranged.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:] + b"\0" * self.state.extra_bytes
        self.send_response(206 if ranged else 200)
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("ETag", f'"{repo.sha256[name]}"')
        self.send_header("X-Linked-Etag", f'"{repo.sha256[name]}"')
        self.send_header("X-Linked-Size", str(len(data)))
        if self.state.omit_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        if ranged:
            self.send_header("Content-Range", self.state.content_range
                             or f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not send_body:
            return
        die = self.state.die_after_bytes
        limit = self.state.cut_bytes if cut else None if die is None else max(die - start, 0)
        if limit is not None and limit < len(body):
            self.wfile.write(body[:limit])
            self.wfile.flush()
            self.state.bytes_served += limit
            self.close_connection = True
            self.connection.shutdown(2)  # the server "dies" mid-file
            return
        self.state.bytes_served += len(body)  # before: the client may check once it has it
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up mid-body: what the oversize tests make it do
        super().handle_error(request, client_address)


class HubServer:
    """``with HubServer(state) as url:`` runs the server on ``host`` (a loopback address,
    127.0.0.1 unless told) and a free port, in a thread."""

    def __init__(self, state: HubState, host: str = "127.0.0.1") -> None:
        assert host.startswith("127."), "tests only ever listen on loopback"
        handler = type("Handler", (_Handler,), {"state": state})
        self.server = _Server((host, 0), handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        # A short poll: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.02})

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
