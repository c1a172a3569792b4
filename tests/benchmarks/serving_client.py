"""Benchmark (not a unit test): is the endpoint client ever the bottleneck?

A zero-work streaming server (tests/zero_server.py, in a process of its own so that client
and server never share an event loop) answers every request with 256 tokens, one per
server-sent event. At 256 concurrent streams, in alternating rounds, two clients in this
process make the same requests:

- ours: ``bench.chat_stream.stream_chat`` on ``endpoint.async_client``, the streaming path the
  load engine uses (httpx, bounded SSE lines, every event's JSON read, timestamps);
- with ``--httpx``, also ours through httpx alone (the path before bench/http1.py);
- raw: a minimal asyncio client on raw sockets that writes the request bytes and counts
  ``"content"`` in what comes back, without parsing HTTP framing or JSON: an upper bound
  for any Python client on this machine.

It prints each run's tokens/s, the CPU seconds client and server used (a run whose server
was busy the whole time measured the server, not the client) and the ratio ours / raw per
round, then the median ratio. The target (issue 17) is ours >= 80% of raw.

    python tests/benchmarks/serving_client.py [--streams 256] [--tokens 256]
        [--requests 2] [--rounds 3] [--delay 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from gptoss_doctor.bench import chat_stream, endpoint

SERVER = Path(__file__).resolve().parents[1] / "zero_server.py"
BODY = {"model": "zero", "max_tokens": 256, "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hello " * 16}]}


async def ours(url: str, streams: int, requests: int, lean: bool = True) -> int:
    """Tokens streamed through the project's client (``lean`` False: through httpx alone,
    as before bench/http1.py)."""
    target = endpoint.Endpoint(url + "/v1", None, 300)
    client = endpoint.async_client(target, streams) if lean else httpx.AsyncClient(
        trust_env=False, timeout=httpx.Timeout(300.0),
        limits=httpx.Limits(max_connections=streams, max_keepalive_connections=streams))
    async with client:
        async def one() -> int:
            tokens = 0
            for _ in range(requests):
                stream = await chat_stream.stream_chat(client, target, BODY)
                if stream.error:
                    raise SystemExit(f"our client failed: {stream.error}")
                tokens += stream.chunks
            return tokens

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


async def raw(url: str, streams: int, requests: int) -> int:
    """Tokens streamed through a minimal raw-socket client (keep-alive, one connection per
    stream, like ours)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = json.dumps(BODY).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
               % (host.encode(), len(payload), payload))
    marker, end = b'"content"', b"\r\n0\r\n\r\n"

    async def one() -> int:
        reader, writer = await asyncio.open_connection(host, port)
        tokens = 0
        try:
            for _ in range(requests):
                writer.write(request)
                tail = b""
                while True:
                    data = await reader.read(65536)
                    if not data:
                        raise SystemExit("the zero server closed a raw connection")
                    buffer = tail + data
                    tokens += buffer.count(marker)
                    if buffer.endswith(end):
                        break
                    tail = buffer[-(len(end) - 1):]
        finally:
            writer.close()
        return tokens

    return sum(await asyncio.gather(*(one() for _ in range(streams))))


def measure(name: str, run: Callable[[], Coroutine[Any, Any, int]], server: psutil.Process
            ) -> tuple[float, float]:
    """(tokens/s, client CPU microseconds per token) of one run."""
    me = psutil.Process()
    cpu0, server0 = me.cpu_times(), server.cpu_times()
    start = time.perf_counter()
    tokens = asyncio.run(run())
    wall = time.perf_counter() - start
    cpu1, server1 = me.cpu_times(), server.cpu_times()
    client_cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    server_cpu = server1.user + server1.system - server0.user - server0.system
    rate = tokens / wall
    cost = client_cpu / tokens * 1e6
    print(f"  {name:5} {tokens:7d} tokens in {wall:6.2f} s = {rate:9.0f} tok/s   "
          f"client CPU {cost:5.1f} us/token; CPU busy: client {client_cpu / wall:4.0%}, "
          f"server {server_cpu / wall:4.0%}", flush=True)
    return rate, cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--requests", type=int, default=2, help="per stream, per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.0, help="server: s between tokens")
    parser.add_argument("--httpx", action="store_true", help="also time ours through httpx")
    args = parser.parse_args()
    process = subprocess.Popen([sys.executable, str(SERVER), "--tokens", str(args.tokens),
                                "--delay", str(args.delay)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        server = psutil.Process(process.pid)
        print(f"zero server {url}: {args.tokens} tokens per stream, {args.streams} streams, "
              f"{args.requests} requests each per run; {psutil.cpu_count()} CPUs, "
              f"Python {sys.version.split()[0]}, {endpoint.client_version()}")
        clients = {"ours": lambda: ours(url, args.streams, args.requests),
                   "raw": lambda: raw(url, args.streams, args.requests),
                   "httpx": lambda: ours(url, args.streams, args.requests, lean=False)}
        measure("warm", clients["raw"], server)
        ratios, costs, httpx_ratios = [], [], []
        for number in range(args.rounds):
            order = ["ours", "raw"] if number % 2 == 0 else ["raw", "ours"]
            order += ["httpx"] if args.httpx else []
            print(f"round {number + 1}")
            runs = {name: measure(name, clients[name], server) for name in order}
            ratios.append(runs["ours"][0] / runs["raw"][0])
            costs.append(runs["raw"][1] / runs["ours"][1])
            print(f"  tokens/s ours / raw = {ratios[-1]:.0%}; "
                  f"CPU per token raw / ours = {costs[-1]:.0%}")
            if args.httpx:
                httpx_ratios.append(runs["httpx"][0] / runs["raw"][0])
                print(f"  tokens/s httpx alone / raw = {httpx_ratios[-1]:.0%}")
        print(f"median over {args.rounds} rounds: tokens/s ours / raw "
              f"{statistics.median(ratios):.0%} (target >= 80%); "
              f"CPU per token raw / ours {statistics.median(costs):.0%}")
        if httpx_ratios:
            print(f"median tokens/s through httpx alone / raw: "
                  f"{statistics.median(httpx_ratios):.0%}")
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
