"""A local HTTP server that speaks the Hub's download protocol, for real huggingface_hub calls.

Serves repositories from memory (files given as paths on disk). Implements what the client
and our downloader use (DESIGN.md appendix): ``GET /api/models/{repo}[/revision/{rev}]``
with LFS metadata, ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``,
``ETag``/``X-Linked-Etag``, ``X-Linked-Size`` and ``Range`` (206 + ``Content-Range``), and the
``X-Error-Code`` header (``RepoNotFound``, ``GatedRepo``, ``EntryNotFound``) that makes the
client raise the right error. Switches simulate a server that dies mid-file or serves bytes
that do not match the published sha256.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
    die_after_bytes: int | None = None  # close the connection after this many body bytes
    corrupt: bool = False  # serve flipped bytes (the published sha256 stays the original)
    bytes_served: int = 0
    requests: list[str] = field(default_factory=list)


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
        repo = self._repo(match["repo"])
        if repo is None:
            return
        if match["path"] not in repo.files:
            self._error(404, "EntryNotFound")
            return
        data = repo.files[match["path"]].read_bytes()
        if self.state.corrupt:
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
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
        body = data[start:]
        self.send_response(206 if ranged else 200)
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("ETag", f'"{repo.sha256[match["path"]]}"')
        self.send_header("X-Linked-Etag", f'"{repo.sha256[match["path"]]}"')
        self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Content-Length", str(len(body)))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not send_body:
            return
        limit = self.state.die_after_bytes
        if limit is not None and limit < len(body):
            self.wfile.write(body[:limit])
            self.wfile.flush()
            self.state.bytes_served += limit
            self.close_connection = True
            self.connection.shutdown(2)  # the server "dies" mid-file
            return
        self.wfile.write(body)
        self.state.bytes_served += len(body)


class HubServer:
    """``with HubServer(state) as url:`` runs the server on 127.0.0.1 in a thread."""

    def __init__(self, state: HubState) -> None:
        handler = type("Handler", (_Handler,), {"state": state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
