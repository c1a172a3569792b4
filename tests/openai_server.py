"""A small OpenAI-compatible server for the endpoint tests, well-behaved or not on purpose.

``GET /v1/models``, ``POST /v1/chat/completions`` (streamed as server-sent events or as one
JSON answer) and, when asked, ``POST /v1/responses`` and LM Studio's native
``/api/v1/models``. The ``mode`` switch makes
it misbehave the ways real servers do: drop the connection mid-stream, hang, send events that
are not JSON, answer 500, or require a bearer key (401 without it). Non-streamed answers come
from a script (a list of assistant messages, one per request) so tool calls can be exact.
Every request's ``Authorization`` header and body are recorded for the tests to inspect.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("ok", "drop", "hang", "garbage", "error500", "no_usage")


@dataclass
class ServerState:
    model: str = "openai/gpt-oss-20b"
    mode: str = "ok"
    api_key: str | None = None  # required as "Bearer <key>" when set
    lmstudio: dict[str, Any] | None = None  # the body of /api/v1/models, when LM Studio
    script: list[dict[str, Any]] = field(default_factory=list)  # non-streamed answers
    responses: list[list[dict[str, Any]]] | None = None  # Responses API outputs; None: 404
    tokens: int = 0  # streamed tokens per request (default: max_tokens)
    hang_s: float = 30.0
    fail_after: int | None = None  # streamed requests that succeed before mode "drop" applies
    streamed: int = 0
    authorizations: list[str | None] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    state: ServerState
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1.0"

    def log_message(self, *args: object) -> None:
        return

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization")
        self.state.authorizations.append(header)
        if self.state.api_key and header != f"Bearer {self.state.api_key}":
            # Real servers often echo what they got: the client must scrub it.
            self._json(401, {"error": {"message": f"invalid api key: {header}"}})
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [
                {"id": self.state.model, "object": "model", "owned_by": "me"}]})
        elif self.path == "/api/v1/models" and self.state.lmstudio is not None:
            self._json(200, self.state.lmstudio)
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.state.bodies.append(body)
        if not self._authorized():
            return
        if self.path == "/v1/responses" and self.state.responses is not None:
            output = (self.state.responses.pop(0) if self.state.responses else [
                {"type": "message", "role": "assistant",
                 "content": [{"type": "output_text", "text": "I cannot help with that."}]}])
            self._json(200, {"id": "resp_1", "object": "response", "status": "completed",
                             "model": self.state.model, "output": output,
                             "usage": {"input_tokens": 50, "output_tokens": 10}})
        elif self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found"}})
        elif body.get("model") != self.state.model:
            self._json(404, {"error": {"message": f"model {body.get('model')} not found"}})
        elif self.state.mode == "error500":
            self._json(500, {"error": {"message": "CUDA out of memory"}})
        elif body.get("stream"):
            self._stream(body)
        else:
            self._answer(body)

    def _answer(self, body: dict[str, Any]) -> None:
        if self.state.mode == "hang":
            time.sleep(self.state.hang_s)
        message = (self.state.script.pop(0) if self.state.script
                   else {"role": "assistant", "content": "I cannot help with that."})
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        self._json(200, {"id": "x", "object": "chat.completion", "model": self.state.model,
                         "choices": [{"index": 0, "message": message,
                                      "finish_reason": finish}],
                         "usage": {"prompt_tokens": 50, "completion_tokens": 10,
                                   "total_tokens": 60}})

    def _event(self, data: str) -> None:
        line = f"data: {data}\n\n".encode()
        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        self.wfile.flush()

    def _stream(self, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        n = self.state.tokens or int(body.get("max_tokens") or 16)
        self.state.streamed += 1
        drop = self.state.mode == "drop" and (self.state.fail_after is None
                                              or self.state.streamed > self.state.fail_after)
        words = [" word"] * n
        for index, word in enumerate(words):
            if drop and index == 2:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk
                return
            if self.state.mode == "hang" and index == 2:
                time.sleep(self.state.hang_s)
            if self.state.mode == "garbage" and index == 2:
                self._event("{this is not json")
                continue
            delta = {"reasoning_content": word} if index == 0 else {"content": word}
            self._event(json.dumps({"choices": [{"index": 0, "delta": delta,
                                                 "finish_reason": None}]}))
            time.sleep(0.002)
        self._event(json.dumps({"choices": [{"index": 0, "delta": {},
                                             "finish_reason": "length"}]}))
        if self.state.mode != "no_usage" and body.get("stream_options", {}).get("include_usage"):
            self._event(json.dumps({"choices": [], "usage": {
                "prompt_tokens": 40, "completion_tokens": n, "total_tokens": 40 + n}}))
        self._event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        return  # the connections "drop" and "hang" break on purpose


@contextmanager
def serve(state: ServerState) -> Iterator[str]:
    """Run the server on a free loopback port; yields its ``/v1`` URL."""
    handler = type("Handler", (_Handler,), {"state": state})
    server = _Server(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
