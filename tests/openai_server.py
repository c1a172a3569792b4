"""A small OpenAI-compatible server for the endpoint tests, well-behaved or not on purpose.

``GET /v1/models``, ``POST /v1/chat/completions`` (streamed as server-sent events or as one
JSON answer) and, when asked, ``POST /v1/responses`` and LM Studio's native
``/api/v1/models`` and native chat with its ``stats`` (``native_chat``). The ``mode`` switch makes
it misbehave the ways real servers do: drop the connection mid-stream, hang, send events that
are not JSON, answer 500, or require a bearer key (401 without it). Hostile modes: trickle
every answer one byte per ``trickle_s`` (headers included with "trickle_headers"), answer
500 with an ``error_bytes`` body, flood a stream with ``flood_chars`` of one character, or
stream the raw ``events`` a test gives.
Every misbehaviour is bounded, so a client without defences still ends: a trickle stops when
its answer is sent, a flood or a huge body when its size is reached. Non-streamed answers
come from a script (a list of assistant messages, one per request) so tool calls can be
exact. Every request's ``Authorization`` header and body are recorded for the tests to
inspect; ``extra_headers`` go out with every answer.
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

MODES = ("ok", "drop", "hang", "garbage", "error500", "no_usage", "trickle", "trickle_headers",
         "huge_error", "flood")
# The example numbers of LM Studio's REST API reference (developer/rest/chat): /api/v1/chat
# "stats" as documented; v0's "stats" and "usage" are derived from the same figures.
NATIVE_STATS = {"input_tokens": 646, "total_output_tokens": 586, "reasoning_output_tokens": 0,
                "tokens_per_second": 29.753900615398926, "time_to_first_token_seconds": 1.088}
REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}


@dataclass
class ServerState:
    model: str = "openai/gpt-oss-20b"
    mode: str = "ok"
    api_key: str | None = None  # required as "Bearer <key>" when set
    lmstudio: dict[str, Any] | None = None  # the body of /api/v1/models, when LM Studio
    # LM Studio's native chat with its stats: "v1" (/api/v1/chat), "v0"
    # (/api/v0/chat/completions) or None (404), answering with native_stats.
    native_chat: str | None = None
    native_stats: dict[str, Any] = field(default_factory=lambda: dict(NATIVE_STATS))
    script: list[dict[str, Any]] = field(default_factory=list)  # non-streamed answers
    responses: list[list[dict[str, Any]]] | None = None  # Responses API outputs; None: 404
    tokens: int = 0  # streamed tokens per request (default: max_tokens)
    hang_s: float = 30.0
    fail_after: int | None = None  # streamed requests that succeed before mode "drop" applies
    trickle_s: float = 0.02  # "trickle": seconds between two bytes of an answer
    error_bytes: int = 64 << 20  # "huge_error": the size of the 500 answer's body
    flood_chars: int = 1 << 20  # "flood": characters streamed, in events of flood_event_chars
    flood_event_chars: int = 4096
    extra_headers: dict[str, str] = field(default_factory=dict)
    events: list[str] | None = None  # streamed as they are (then [DONE]) instead of words
    sent: int = 0  # body bytes written ("huge_error"), for tests of how much was read
    streamed: int = 0
    authorizations: list[str | None] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    state: ServerState
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1.0"

    def log_message(self, *args: object) -> None:
        return

    def setup(self) -> None:
        super().setup()
        # Streaming servers send each event at once (uvicorn, which vLLM and SGLang use, sets
        # TCP_NODELAY); with Nagle's algorithm a kept-alive connection's events would wait
        # for the client's delayed ACK and arrive together.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        if self.state.mode == "trickle_headers":
            # Written by hand so that the status line and headers trickle too.
            head = "".join(f"{k}: {v}\r\n" for k, v in (
                ("Server", self.version_string()), ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))), *self.state.extra_headers.items()))
            self._write(f"HTTP/1.1 {status} {REASONS[status]}\r\n{head}\r\n".encode() + data,
                        trickle=True)
            return
        self._head(status, "application/json", {"Content-Length": str(len(data))})
        self._write(data)

    def _head(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in {**headers, **self.state.extra_headers}.items():
            self.send_header(name, value)
        self.end_headers()

    def _write(self, data: bytes, trickle: bool = False) -> None:
        """Send ``data``: at once, or one byte per ``trickle_s`` in the trickle modes."""
        if not (trickle or self.state.mode == "trickle"):
            self.wfile.write(data)
            return
        for index in range(len(data)):
            self.wfile.write(data[index:index + 1])
            self.wfile.flush()
            time.sleep(self.state.trickle_s)

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
        if self.state.mode == "huge_error":
            self._huge_error()
        elif self.path == "/v1/models":
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
        elif self.path == "/api/v1/chat" and self.state.native_chat == "v1":
            self._json(200, {"model_instance_id": self.state.model, "output": [
                {"type": "reasoning", "content": "The user wants numbers."},
                {"type": "message", "content": "one, two, three"}],
                "stats": self.state.native_stats})
        elif self.path == "/api/v0/chat/completions" and self.state.native_chat == "v0":
            stats = self.state.native_stats
            self._json(200, {"id": "x", "object": "chat.completion", "model": self.state.model,
                             "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                 "role": "assistant", "content": "one, two, three"}}],
                             "usage": {"prompt_tokens": stats.get("input_tokens"),
                                       "completion_tokens": stats.get("total_output_tokens"),
                                       "completion_tokens_details": {"reasoning_tokens":
                                       stats.get("reasoning_output_tokens")}},
                             "stats": {"tokens_per_second": stats.get("tokens_per_second"),
                                       "time_to_first_token":
                                       stats.get("time_to_first_token_seconds"),
                                       "stop_reason": "eosFound"}})
        elif self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found"}})
        elif body.get("model") != self.state.model:
            self._json(404, {"error": {"message": f"model {body.get('model')} not found"}})
        elif self.state.mode == "error500":
            self._json(500, {"error": {"message": "CUDA out of memory"}})
        elif self.state.mode == "huge_error":
            self._huge_error()
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

    def _huge_error(self) -> None:
        """A 500 whose body is ``error_bytes`` long, sent until the client stops reading."""
        self._head(500, "text/plain", {"Content-Length": str(self.state.error_bytes)})
        block = b"E" * (64 << 10)
        for start in range(0, self.state.error_bytes, len(block)):
            part = block[:self.state.error_bytes - start]
            self.wfile.write(part)
            self.state.sent += len(part)

    def _event(self, data: str) -> None:
        line = f"data: {data}\n\n".encode()
        self._write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        self.wfile.flush()

    def _flood(self) -> list[str]:
        """``flood_chars`` of one character, no usage: a model stuck repeating itself."""
        step = self.state.flood_event_chars
        return [json.dumps({"choices": [{"index": 0, "delta": {
            "content": "a" * min(step, self.state.flood_chars - start)}}]})
            for start in range(0, self.state.flood_chars, step)] + [
            json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})]

    def _stream(self, body: dict[str, Any]) -> None:
        self._head(200, "text/event-stream", {"Transfer-Encoding": "chunked"})
        if self.state.mode == "flood" or self.state.events is not None:
            for data in self._flood() if self.state.events is None else self.state.events:
                self._event(data)
            self._event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            return
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


def main() -> None:
    """``python tests/openai_server.py --port N --model ID``: serve until killed, with LM
    Studio's native model list (the fake ``lms server start`` runs this)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="openai/gpt-oss-20b")
    args = parser.parse_args()
    native = {"models": [{"type": "llm", "publisher": args.model.split("/")[0],
                          "key": args.model, "architecture": "gpt-oss", "format": "gguf",
                          "quantization": {"name": "MXFP4", "bits_per_weight": 4},
                          "max_context_length": 131072, "loaded_instances": [
                              {"id": args.model, "config": {"context_length": 4096}}]}]}
    state = ServerState(model=args.model, lmstudio=native, native_chat="v1")
    handler = type("Handler", (_Handler,), {"state": state})
    server = _Server(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
