"""A lean HTTP/1.1 client for streamed answers: asyncio streams, a keep-alive pool, and
chunked transfer decoding done once per socket read instead of once per chunk.

Why: a server streams one HTTP chunk per token, and a general HTTP stack (httpx on h11)
runs its state machine for every one of them; at 256 concurrent streams that, not the
server, was the benchmark's limit (docs/serving-client.md). Here the body comes out as
whatever one ``read`` delivered, every complete chunk in it joined, so the SSE parser
above sees a few large pieces. Plain ``http://`` only (``endpoint`` keeps httpx for TLS,
proxies and every non-streamed request).

Bounded like the rest of the endpoint code: headers at ``MAX_HEAD_BYTES``, a chunk-size
line at ``MAX_SIZE_LINE``; what a server sends past those, or framing that does not parse,
is an ``HttpError`` of kind "malformed"; a connection that ends mid-answer is "closed"; a
refused or unreachable host is "connect". Callers put their own deadline around requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 << 10  # status line and headers
MAX_SIZE_LINE = 1024  # a chunk-size line with its extensions
READ_BYTES = 1 << 16
# a chunk-size line: hex digits, then optional extensions (";name=value") to the CRLF
CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,15})[ \t]*(?:;[^\r\n]*)?\r\n")

ErrorKind = Literal["connect", "closed", "malformed"]


class HttpError(Exception):
    def __init__(self, kind: ErrorKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(slots=True)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reused: bool = False

    def close(self) -> None:
        self.writer.close()


@dataclass(slots=True)
class Response:
    """An answer whose body is read with ``pieces()`` (or ``read``) inside the request."""

    status: int
    headers: dict[str, str]
    connection: Connection
    complete: bool = False  # the whole body was read: the connection can serve again
    _buffer: bytearray = field(default_factory=bytearray)

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body as it comes: one piece per socket read (chunked framing removed)."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            async for piece in self._chunked():
                yield piece
            return
        length = self.headers.get("content-length")
        left = int(length) if length and length.isdigit() and len(length) < 19 else None
        if self._buffer:
            data, self._buffer = bytes(self._buffer[:left]), bytearray()
            left = None if left is None else left - len(data)
            yield data
        while left is None or left > 0:
            data = await self.connection.reader.read(
                READ_BYTES if left is None else min(READ_BYTES, left))
            if not data:
                if left is None:  # no length: the body ends with the connection
                    return
                raise HttpError("closed", "the server closed the connection mid-response")
            left = None if left is None else left - len(data)
            yield data
        self.complete = True

    async def read(self, limit: int) -> bytes:
        """At most ``limit`` bytes of the body (the rest left unread)."""
        data = bytearray()
        async for piece in self.pieces():
            data += piece
            if len(data) >= limit:
                break
        return bytes(data[:limit])

    async def _chunked(self) -> AsyncIterator[bytes]:
        chunks = _Dechunker(self._buffer)
        reader = self.connection.reader
        while True:
            parts = chunks.cut()
            if parts:
                yield b"".join(parts)
            if chunks.done:
                # trailers: none expected; the empty line that ends them
                if chunks.buffer[:2] == b"\r\n" or await _trailers(reader, chunks.buffer):
                    self.complete = True
                return
            data = await reader.read(READ_BYTES)
            if not data:
                raise HttpError("closed", "the server closed the connection mid-response")
            chunks.buffer += data


CRLF_DUE = -2  # ``_Dechunker.left`` when a chunk's data is in and its CRLF is next


@dataclass(slots=True)
class _Dechunker:
    """Chunked transfer decoding of what a connection has delivered so far, in ``buffer``."""

    buffer: bytearray
    left: int = 0  # a chunk's data still due, or CRLF_DUE
    done: bool = False  # the last (size 0) chunk's size line was read
    at: int = 0  # parsed up to here: one cut per read, not one per chunk

    def cut(self) -> list[bytes | bytearray]:
        """The chunk data the buffer holds (a chunk cut across reads in part), removed from
        the buffer with its framing; what is left waits for the next read."""
        parts: list[bytes | bytearray] = []
        self.at = 0
        while not self.done:
            if self.left == 0:  # the common case first: whole chunks in the buffer
                self.at = _whole_chunks(self.buffer, self.at, parts)
            if not (self._rest_of_chunk(parts) and self._size_line()):
                break
        del self.buffer[:self.at]
        return parts

    def _rest_of_chunk(self, parts: list[bytes | bytearray]) -> bool:
        """The data still due of a chunk cut across reads, then its CRLF; False when the
        buffer ends first."""
        buffer, at = self.buffer, self.at
        if self.left > 0:
            take = min(self.left, len(buffer) - at)
            parts.append(buffer[at:at + take])
            self.at = at = at + take
            self.left -= take
            if self.left:
                return False
            self.left = CRLF_DUE
        if self.left == CRLF_DUE:
            if len(buffer) - at < 2:
                return False
            if buffer[at:at + 2] != b"\r\n":
                raise HttpError("malformed", "a chunk did not end with CRLF")
            self.at = at + 2
            self.left = 0
        return True

    def _size_line(self) -> bool:
        """The next chunk-size line; False when the buffer holds no whole one yet."""
        buffer, at = self.buffer, self.at
        end = buffer.find(b"\r\n", at)
        if end < 0:
            if len(buffer) - at > MAX_SIZE_LINE:
                raise HttpError("malformed", "a chunk-size line too long")
            return False
        size = CHUNK_SIZE.fullmatch(buffer, at, end + 2)
        if size is None:
            raise HttpError("malformed", f"a bad chunk size {buffer[at:end][:20]!r}")
        self.left = int(size.group(1), 16)
        self.done = self.left == 0
        self.at = end + 2
        return True


def _whole_chunks(buffer: bytearray, at: int, parts: list[bytes | bytearray]) -> int:
    """The data of every whole chunk (size line, data, CRLF) from ``at`` on, appended to
    ``parts``: one regex match and one slice each. Where the first partial chunk, the last
    (empty) chunk or anything unusual begins."""
    while (size := CHUNK_SIZE.match(buffer, at)) is not None:
        start = size.end()
        stop = start + int(size.group(1), 16)
        if stop == start or buffer[stop:stop + 2] != b"\r\n":
            break
        parts.append(buffer[start:stop])
        at = stop + 2
    return at


async def drain(pieces: AsyncIterator[bytes], limit: int = MAX_HEAD_BYTES,
                timeout_s: float = 1.0) -> None:
    """Read the rest of a body the caller is done with (a stream's last chunk after its
    ``[DONE]``) so that its connection can serve again: at most ``limit`` bytes within
    ``timeout_s``, else the connection is simply not reused."""
    seen = 0
    with contextlib.suppress(TimeoutError, HttpError):
        async with asyncio.timeout(timeout_s):
            async for piece in pieces:
                seen += len(piece)
                if seen > limit:
                    break


async def _trailers(reader: asyncio.StreamReader, buffer: bytearray) -> bool:
    """Read past trailer lines to the empty line; False when the server did not end them."""
    while b"\r\n\r\n" not in b"\r\n" + buffer:
        if len(buffer) > MAX_HEAD_BYTES:
            return False
        data = await reader.read(READ_BYTES)
        if not data:
            return False
        buffer += data
    return True


class Pool:
    """Keep-alive connections per host and port, at most ``size`` idle ones each."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._idle: dict[tuple[str, int], list[Connection]] = {}

    async def _connect(self, host: str, port: int) -> Connection:
        idle = self._idle.get((host, port))
        while idle:
            connection = idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                connection.reused = True
                return connection
            connection.close()
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD_BYTES)
        except OSError as exc:
            refused = isinstance(exc, ConnectionRefusedError)
            raise HttpError("connect", "connection refused" if refused else
                            (str(exc) or type(exc).__name__).splitlines()[0][:200]) from None
        return Connection(reader, writer)

    @contextlib.asynccontextmanager
    async def post(self, url: str, headers: dict[str, str], body: bytes
                   ) -> AsyncIterator[Response]:
        """POST ``body`` to ``url``; the response open inside the block. A connection whose
        answer was read to its end goes back to the pool, any other is closed."""
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 80
        head = "".join(f"{name}: {value}\r\n" for name, value in {
            "Host": parts.netloc, "Content-Type": "application/json",
            "Content-Length": str(len(body)), **headers}.items())
        request = f"POST {parts.path or '/'} HTTP/1.1\r\n{head}\r\n".encode() + body
        for attempt in range(2):
            connection = await self._connect(host, port)
            try:
                connection.writer.write(request)
                response = await _read_head(connection)
                break
            except HttpError as exc:
                connection.close()
                # a kept-alive connection the server had closed: once more on a fresh one
                if attempt or not connection.reused or exc.kind != "closed":
                    raise
            except BaseException:
                connection.close()
                raise
        try:
            yield response
        finally:
            keep = response.complete and "close" not in response.headers.get(
                "connection", "").lower()
            idle = self._idle.setdefault((host, port), [])
            if keep and len(idle) < self.size:
                connection.reused = False
                idle.append(connection)
            else:
                connection.close()

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
                with contextlib.suppress(Exception):
                    await connection.writer.wait_closed()
        self._idle.clear()


async def _read_head(connection: Connection) -> Response:
    try:
        head = await connection.reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise HttpError("malformed", f"headers over {MAX_HEAD_BYTES >> 10} KiB") from None
    except asyncio.IncompleteReadError:
        raise HttpError("closed", "the server closed the connection mid-response") from None
    except ConnectionError:
        raise HttpError("closed", "the server closed the connection mid-response") from None
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or not status[0].startswith("HTTP/1.") or not (
            status[1].isdigit() and len(status[1]) == 3):
        raise HttpError("malformed", f"a bad status line {lines[0][:40]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Response(int(status[1]), headers, connection)
