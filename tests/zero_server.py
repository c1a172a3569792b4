"""A zero-work streaming OpenAI-compatible server: the client's own limits, measured.

asyncio on raw sockets (no HTTP library), HTTP/1.1 keep-alive. ``POST /v1/chat/completions``
with ``"stream": true`` answers server-sent events in chunked transfer encoding, one token
per event (each event its own write, with ``delay_s`` between tokens; 0 still yields to the
loop so that concurrent streams interleave as a real batch's do), then an event with
``finish_reason`` "length", an event with ``usage`` (as ``stream_options.include_usage``
asks) and ``[DONE]``. Every token event is the same pre-encoded bytes: the server does no
work per token beyond writing them. ``GET /v1/models`` lists one model; ``GET /metrics``
(when ``metrics`` is on) answers Prometheus text under llama-server's metric names (as
recorded in tests/fixtures/prometheus/), counting this server's own requests and tokens.

In the tests: ``with running(ZeroConfig(...)) as url:`` serves from a thread with its own
event loop. For benchmarks, a process of its own, so that client and server never share a
loop: ``python tests/zero_server.py --tokens 256`` prints ``listening on http://...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

MODEL = "zero"
MAX_HEADER_BYTES = 16 << 10
MAX_BODY_BYTES = 1 << 20


@dataclass
class ZeroConfig:
    tokens: int | None = None  # tokens per stream (None: the request's max_tokens)
    delay_s: float = 0.0  # between two tokens of one stream
    metrics: bool = True  # serve /metrics
    token_text: str = " tok"


@dataclass
class ZeroState:
    requests: int = 0
    running: int = 0
    peak_running: int = 0
    tokens: int = 0
    prompt_chars: int = 0
    bodies: list[dict[str, object]] = field(default_factory=list)


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def delta(content: str | None, finish: str | None) -> dict[str, object]:
    return {"id": "chatcmpl-zero", "object": "chat.completion.chunk", "created": 0,
            "model": MODEL, "choices": [{"index": 0, "delta": (
                {"content": content} if content is not None else {}),
                "finish_reason": finish}]}


class ZeroServer:
    def __init__(self, config: ZeroConfig) -> None:
        self.config = config
        self.state = ZeroState()
        self.token_chunk = chunk(event(delta(config.token_text, None)))
        self.server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.server = await asyncio.start_server(self.handle, host, port, backlog=4096)
        bound = self.server.sockets[0].getsockname()
        return f"http://{bound[0]}:{bound[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        try:
            while await self.one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                          ) -> bool:
        """Answer one request; False when the connection is done."""
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEADER_BYTES:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = ([*lines[0].split(" "), "", "", ""])[:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:] if line)}
        length = int(headers.get("content-length", "0") or 0)
        body = await reader.readexactly(min(length, MAX_BODY_BYTES)) if length else b""
        if method == "GET" and path == "/v1/models":
            self.answer(writer, 200, "application/json", json.dumps(
                {"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode())
        elif method == "GET" and path == "/metrics" and self.config.metrics:
            self.answer(writer, 200, "text/plain; version=0.0.4", self.metrics().encode())
        elif method == "POST" and path == "/v1/chat/completions":
            await self.complete(writer, json.loads(body or b"{}"))
        else:
            self.answer(writer, 404, "application/json", b'{"error":{"message":"not found"}}')
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    @staticmethod
    def answer(writer: asyncio.StreamWriter, status: int, kind: str, body: bytes) -> None:
        reason = {200: "OK", 404: "Not Found"}[status]
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (status, reason.encode(), kind.encode(), len(body), body))

    async def complete(self, writer: asyncio.StreamWriter, body: dict[str, object]) -> None:
        state = self.state
        state.requests += 1
        if len(state.bodies) < 1000:
            state.bodies.append(body)
        messages = body.get("messages")
        prompt_chars = len(json.dumps(messages)) if messages else 0
        state.prompt_chars += prompt_chars
        asked = body.get("max_tokens")
        tokens = self.config.tokens or (asked if isinstance(asked, int) and asked > 0 else 16)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
        state.running += 1
        state.peak_running = max(state.peak_running, state.running)
        try:
            for _ in range(tokens):
                await asyncio.sleep(self.config.delay_s)
                writer.write(self.token_chunk)
                state.tokens += 1
                if writer.transport.get_write_buffer_size() > 1 << 16:
                    await writer.drain()
            usage = {"prompt_tokens": prompt_chars // 4, "completion_tokens": tokens,
                     "total_tokens": prompt_chars // 4 + tokens}
            writer.write(chunk(event(delta(None, "length"))))
            writer.write(chunk(event({**delta(None, None), "choices": [], "usage": usage})))
            writer.write(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        finally:
            state.running -= 1

    def metrics(self) -> str:
        """Prometheus text under llama-server's names for this server's own counts."""
        state = self.state
        rows = [("llamacpp:prompt_tokens_total", "counter", state.prompt_chars // 4),
                ("llamacpp:tokens_predicted_total", "counter", state.tokens),
                ("llamacpp:requests_processing", "gauge", state.running),
                ("llamacpp:requests_deferred", "gauge", 0)]
        return "".join(f"# HELP {name} zero server\n# TYPE {name} {kind}\n{name} {value}\n"
                       for name, kind, value in rows)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)


@contextlib.contextmanager
def running(config: ZeroConfig | None = None) -> Iterator[tuple[str, ZeroServer]]:
    """(``http://127.0.0.1:PORT``, the server) served from a thread until the block ends."""
    zero = ZeroServer(config or ZeroConfig())
    loop = asyncio.new_event_loop()
    started = threading.Event()
    url: list[str] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        url.append(loop.run_until_complete(zero.start()))
        started.set()
        loop.run_forever()
        loop.run_until_complete(zero.close())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield url[0], zero
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()

    async def serve() -> None:
        zero = ZeroServer(ZeroConfig(tokens=args.tokens, delay_s=args.delay))
        print(f"listening on {await zero.start(port=args.port)}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
