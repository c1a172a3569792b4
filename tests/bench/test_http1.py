"""The lean HTTP/1.1 stream reader (bench/http1.py) against hand-written answers: chunked
framing split anywhere, extensions and trailers, bad framing, keep-alive reuse and a
kept-alive connection the server had closed; and ``sse.parse_events``' batch parsing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from gptoss_doctor.bench import chat_stream, endpoint, http1, sse

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
EVENTS = [f'data: {{"choices":[{{"delta":{{"content":"t{i}"}}}}]}}\n\n' for i in range(5)]


def chunked(pieces: list[bytes], extension: bytes = b"", trailer: bytes = b"") -> bytes:
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in pieces)
    return body + b"0\r\n" + trailer + b"\r\n"


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


async def serve_answers(answers: list[bytes], split: int, connections: list[int],
                        close_after: int | None = None) -> Handler:
    """A handler answering each request with the next answer, written ``split`` bytes at a
    time; it counts connections and closes after ``close_after`` answers."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        served = 0
        try:
            while answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                answer = answers.pop(0)
                for start in range(0, len(answer), split):
                    writer.write(answer[start:start + split])
                    await writer.drain()
                    await asyncio.sleep(0)
                served += 1
                if close_after is not None and served >= close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def body_of(pool: http1.Pool, url: str) -> tuple[int, bytes, bool]:
    async with pool.post(url, {}, b"{}") as response:
        data = b"".join([piece async for piece in response.pieces()])
        return response.status, data, response.complete


def run_pool(answers: list[bytes], split: int, requests: int, close_after: int | None = None
             ) -> tuple[list[tuple[int, bytes, bool]], int]:
    async def main() -> tuple[list[tuple[int, bytes, bool]], int]:
        connections: list[int] = []
        server = await asyncio.start_server(
            await serve_answers(answers, split, connections, close_after), "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
        pool = http1.Pool(4)
        try:
            got = [await body_of(pool, url) for _ in range(requests)]
        finally:
            await pool.close()
            server.close()
        return got, len(connections)

    return asyncio.run(main())


@pytest.mark.parametrize("split", [1, 3, 7, 64, 4096], ids=lambda n: f"{n}-byte writes")
def test_chunks_split_anywhere_come_out_whole(split: int) -> None:
    pieces = [e.encode() for e in EVENTS]
    (answer,), connections = run_pool([HEAD + chunked(pieces)], split, 1)
    assert answer == (200, b"".join(pieces), True) and connections == 1


def test_extensions_and_trailers_are_read_past() -> None:
    pieces = [e.encode() for e in EVENTS[:2]]
    answers = [HEAD + chunked(pieces, b";name=value", b"X-Trailer: 1\r\n"),
               HEAD + chunked(pieces)]
    got, connections = run_pool(answers, 5, 2)
    assert [g[1] for g in got] == [b"".join(pieces)] * 2
    assert connections == 1  # the first answer was read to its end: the connection is reused


def test_a_content_length_body_and_a_body_ending_with_the_connection() -> None:
    sized = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"
    endless = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
    got, _ = run_pool([sized, endless], 4, 2, close_after=2)
    assert got[0] == (404, b"not found", True)
    assert got[1][:2] == (200, b"until the end")


def test_a_kept_alive_connection_the_server_closed_is_replaced_once() -> None:
    pieces = [EVENTS[0].encode()]
    got, connections = run_pool([HEAD + chunked(pieces)] * 2, 4096, 2, close_after=1)
    assert [g[1] for g in got] == [pieces[0]] * 2 and connections == 2


@pytest.mark.parametrize(("answer", "kind"), [
    pytest.param(HEAD + b"zz\r\nhello\r\n", "malformed", id="a chunk size that is not hex"),
    pytest.param(HEAD + b"-5\r\nhello\r\n", "malformed", id="a negative chunk size"),
    pytest.param(HEAD + b"1_0\r\n" + b"x" * 16 + b"\r\n", "malformed",
                 id="an underscore int() would accept"),
    pytest.param(HEAD + b"5\r\nhelloXX", "malformed", id="chunk data without its CRLF"),
    pytest.param(HEAD + b"f" * 2000, "malformed", id="a chunk-size line without end"),
    pytest.param(HEAD + b"10\r\nshort", "closed", id="a chunk cut by the connection"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX: " + b"a" * (70 << 10), "malformed",
                 id="headers past their bound"),
    pytest.param(b"SSH-2.0-OpenSSH\r\n\r\n", "malformed", id="not HTTP"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "closed",
                 id="a body shorter than its length"),
])
def test_bad_framing_is_one_error_kind(answer: bytes, kind: str) -> None:
    with pytest.raises(http1.HttpError) as raised:
        run_pool([answer], 512, 1, close_after=1)
    assert raised.value.kind == kind and len(raised.value.reason) < 120


def test_refused_is_a_connect_error() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await body_of(http1.Pool(1), f"http://127.0.0.1:{port}/x")

    with pytest.raises(http1.HttpError) as raised:
        asyncio.run(main())
    assert raised.value.kind == "connect" and raised.value.reason == "connection refused"


def test_stream_chat_reads_through_the_pool_and_keeps_the_connection() -> None:
    pieces = [e.encode() for e in EVENTS] + [
        b'data: {"choices":[{"delta":{},"finish_reason":"length"}]}\n\n', b"data: [DONE]\n\n"]
    answers = [HEAD + chunked(pieces)] * 2

    async def main() -> tuple[list[chat_stream.Stream], int]:
        connections: list[int] = []
        server = await asyncio.start_server(
            await serve_answers(list(answers), 9, connections), "127.0.0.1", 0)
        target = endpoint.Endpoint(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1")
        async with endpoint.async_client(target, 2) as client:
            got = [await chat_stream.stream_chat(client, target, {"model": "m"}) for _ in range(2)]
        server.close()
        return got, len(connections)

    streams, connections = asyncio.run(main())
    assert all(s.error is None and s.content == "t0t1t2t3t4" and s.chunks == 5
               and s.finish_reason == "length" for s in streams)
    assert connections == 1


@pytest.mark.parametrize("datas", [
    pytest.param(['{"a":1}', '{"b":2}'], id="two objects"),
    pytest.param(['{"x":"', '"}'], id="two halves that join into one object"),
    pytest.param(['{"a":1},{"b":2}', '{"c":3}'], id="one line holding two objects"),
])
def test_batch_parsing_never_changes_what_each_event_says(datas: list[str]) -> None:
    try:
        alone: list[object] | str = [sse.parse_event(d) for d in datas]
    except sse.EventStreamError as exc:
        alone = exc.message
    try:
        batched: list[object] | str = list(sse.parse_events(datas))
    except sse.EventStreamError as exc:
        batched = exc.message
    assert batched == alone


def test_an_error_event_in_a_batch_is_reported() -> None:
    datas = ['{"choices":[]}', json.dumps({"error": {"message": "overloaded"}})]
    with pytest.raises(sse.EventStreamError, match="overloaded"):
        sse.parse_events(datas)


def test_a_stream_compressed_unasked_is_that_requests_error() -> None:
    gzipped = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
               b"\r\n" + chunked([b"\x1f\x8b\x08junk"]))

    async def main() -> chat_stream.Stream:
        server = await asyncio.start_server(
            await serve_answers([gzipped], 4096, []), "127.0.0.1", 0)
        target = endpoint.Endpoint(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1")
        async with endpoint.async_client(target, 1) as client:
            stream = await chat_stream.stream_chat(client, target, {"model": "m"})
        server.close()
        return stream

    stream = asyncio.run(main())
    assert stream.error is not None and "compressed its stream unasked ('gzip')" in stream.error
