"""Streamed Chat Completions, timed chunk by chunk: one request in, one ``Stream`` out.

``stream_chat`` sends the request through ``endpoint``'s one deadline and error wording and
reads the answer's server-sent events (``sse``) as they arrive. On the client
``endpoint.async_client`` makes, a plain ``http://`` stream is read by the lean HTTP/1.1
pool (``http1``); any other goes through httpx (``endpoint.exchange``). Either way a
failure is kept in ``Stream.error`` with what had come, the API key scrubbed from it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from gptoss_doctor.bench import http1, sse
from gptoss_doctor.bench.endpoint import (
    MAX_ERROR_BYTES,
    AsyncClient,
    DeadlineError,
    Endpoint,
    EndpointError,
    StreamingClient,
    deadline_error,
    exchange,
    raise_for_status,
    status_error,
)

# A streamed answer's text kept: it is only ever counted (when a server sends no usage), and
# counting reads the first 256 Ki characters and scales by ``Stream.text_chars``. Kept whole,
# the 1,024 streams an open-loop level may have in flight could hold 8 MiB each.
MAX_KEPT_CHARS = 1 << 18


@dataclass(slots=True)
class Stream:
    """One streamed completion: timestamps relative to the request's start (seconds)."""

    first_s: float | None = None  # first content or reasoning text
    last_s: float | None = None
    end_s: float = 0.0
    chunks: int = 0
    content: str = ""
    reasoning: str = ""
    usage: dict[str, Any] | None = None
    text_chars: int = 0  # of content and reasoning received; text past MAX_KEPT_CHARS is not kept
    finish_reason: str | None = None
    error: str | None = None
    timed_out: bool = False  # the error is the deadline (--timeout)
    chunk_s: list[float] = field(default_factory=list)  # each content chunk's arrival


async def stream_chat(client: AsyncClient, endpoint: Endpoint, body: dict[str, Any],
                      clock: Callable[[], float] = time.perf_counter) -> Stream:
    """Stream one Chat Completion; failures are kept in ``Stream.error`` with what came.
    On a ``StreamingClient`` (``async_client``'s) over plain HTTP the answer is read by the
    lean HTTP/1.1 pool (bench/http1.py), else by httpx: the same bounds and errors."""
    url = f"{endpoint.base_url}/chat/completions"
    result = Stream()
    start = clock()
    try:
        if isinstance(client, StreamingClient) and url.startswith("http://"):
            done = await _stream_lean(client.lean, endpoint, url, body, result, start, clock)
        else:
            async with exchange(client, endpoint, url, {**body, "stream": True}) as response:
                await raise_for_status(endpoint, response, body.get("model"))
                done = await _read_events(response.aiter_bytes(), result, start, clock)
        if result.error is None and result.finish_reason is None:
            # llama-cpp-python's server ends a stream this way when a newer request
            # interrupts it (its --interrupt_requests defaults to true).
            result.error = ("the stream ended without a finish_reason" if done else
                            "the stream ended before the completion did (no [DONE])")
    except (EndpointError, sse.EventStreamError) as exc:
        result.error = exc.message
        result.timed_out = isinstance(exc, DeadlineError)
    finally:
        result.end_s = clock() - start
    if result.error:
        result.error = endpoint.redact(result.error)
    return result


async def _stream_lean(pool: http1.Pool, endpoint: Endpoint, url: str, body: dict[str, Any],
                       result: Stream, start: float, clock: Callable[[], float]) -> bool:
    """``stream_chat``'s request through the lean pool, under the same one deadline."""
    payload = json.dumps({**body, "stream": True}).encode()
    headers = {"Accept": "text/event-stream", **endpoint.headers()}
    try:
        async with asyncio.timeout(endpoint.timeout_s), pool.post(
                url, headers, payload) as response:
            await _refuse_lean(endpoint, url, response, body.get("model"))
            pieces = response.pieces()
            done = await _read_events(pieces, result, start, clock)
            if done:  # the chunked stream's end, so that the connection serves again
                await http1.drain(pieces)
            return done
    except TimeoutError:
        raise deadline_error(url, endpoint.timeout_s) from None
    except http1.HttpError as exc:
        raise _lean_error(url, exc) from None


async def _refuse_lean(endpoint: Endpoint, url: str, response: http1.Response,
                       model: str | None) -> None:
    """An EndpointError for an error status or a stream compressed unasked."""
    if response.status >= 400:
        said = await response.read(MAX_ERROR_BYTES)
        raise status_error(endpoint, response.status, said.decode("utf-8", "replace"), model)
    encoding = response.headers.get("content-encoding", "").lower()
    if encoding not in ("", "identity"):  # none was asked for (no Accept-Encoding)
        raise EndpointError(f"{url}: the server compressed its stream unasked "
                            f"({encoding[:20]!r})")


def _lean_error(url: str, exc: http1.HttpError) -> EndpointError:
    """The lean pool's failure in the words ``endpoint.describe`` gives httpx's."""
    if exc.kind == "connect":
        return EndpointError(f"cannot connect to {url}: {exc.reason}",
                             "is the server running, and is this its address and port?")
    if exc.kind == "closed":
        return EndpointError(f"{url}: the server closed the connection mid-response")
    return EndpointError(f"{url}: the server sent a malformed or oversized answer "
                         f"({exc.reason})")


async def _read_events(pieces: AsyncIterator[bytes], result: Stream, start: float,
                       clock: Callable[[], float]) -> bool:
    """Fill ``result`` from the SSE lines; True when ``[DONE]`` arrived. Text is gathered in
    lists (joined into ``result`` however the stream ends): ``+=`` on a field would copy the
    whole answer for every chunk."""
    texts: tuple[list[str], list[str]] = ([], [])  # content, reasoning
    lines = sse.LineSplitter()
    try:
        async for data in pieces:
            if _take(lines.feed(data), result, texts, clock() - start):
                return True
        return _take(lines.close(), result, texts, clock() - start)
    finally:
        result.content += "".join(texts[0])
        result.reasoning += "".join(texts[1])


def _take(lines: list[str], result: Stream, texts: tuple[list[str], list[str]], now: float
          ) -> bool:
    """Apply complete SSE lines received at ``now``; True at ``[DONE]`` (lines after it are
    ignored). The events of one read are parsed together (``sse.parse_events``) and share
    its arrival time."""
    # not blank separators, ": ping" comments, "event:" names
    datas = [line[5:].strip() for line in lines if line.startswith("data:")]
    done = "[DONE]" in datas
    if done:
        del datas[datas.index("[DONE]"):]
    arrived = 0
    for chunk in sse.parse_events(datas):
        content, reasoning, finish = sse.delta_text(chunk)
        if content or reasoning:
            arrived += 1
            if result.text_chars < MAX_KEPT_CHARS:
                texts[0].append(content)
                texts[1].append(reasoning)
            result.text_chars += len(content) + len(reasoning)
        result.finish_reason = finish or result.finish_reason
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            result.usage = usage
    if arrived:
        result.chunks += arrived
        result.first_s = now if result.first_s is None else result.first_s
        result.last_s = now
        result.chunk_s.extend([now] * arrived)
    return done
