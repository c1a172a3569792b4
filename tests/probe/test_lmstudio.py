"""LM Studio detection against a real HTTP server on loopback and a real folder layout."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gptoss_doctor.app.checks import checks
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe import snapshot

BODY = {"object": "list", "data": [{"id": "openai/gpt-oss-20b", "object": "model"}]}


class _Models(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/v1/models":
            self.send_error(404)
            return
        payload = json.dumps(BODY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def lmstudio_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_running_lm_studio_server_and_its_models_are_reported(
        lmstudio_server: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_LMSTUDIO_URL", lmstudio_server)
    lms = isolated_env / ".lmstudio" / "bin" / "lms"
    lms.parent.mkdir(parents=True)
    lms.write_text("#!/bin/sh\n")
    snap = snapshot()
    assert snap.software.lmstudio_server_models == ("openai/gpt-oss-20b",)
    assert snap.software.lmstudio_installed
    assert snap.software.lmstudio_cli == str(lms)
    line = next(c for c in checks(snap, assess(snap)) if c.name == "lm-studio")
    assert line.status == "ok" and "openai/gpt-oss-20b" in line.summary


def test_no_server_and_no_folder_means_not_installed() -> None:
    snap = snapshot()
    assert snap.software.lmstudio_server_models is None
    assert not snap.software.lmstudio_installed and snap.software.lmstudio_cli is None
