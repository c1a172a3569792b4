"""Streamed Chat Completions as a server sends them: bounded lines, then one chunk per event.

Pure functions over the bytes and text a server sent, for ``endpoint``, which does the HTTP.
A server is hostile until proven otherwise: lines are cut from the bytes as they come and
refused past ``MAX_EVENT_BYTES`` (one line) or ``MAX_STREAM_BYTES`` (the whole stream), so
nothing a server sends grows without bound; JSON fields of the wrong type count as absent.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from gptoss_doctor.errors import DoctorError

MAX_EVENT_BYTES = 2 << 20  # one server-sent event line (counted as decoded characters)
MAX_STREAM_BYTES = 8 << 20  # a whole stream: 16x what a full 131072-token context holds
NEWLINE = re.compile(r"\r\n|\r|\n")  # SSE ends a line with any of the three


class EventStreamError(DoctorError):
    """A stream that is malformed, reports an error or outgrows its bounds, in one line."""


class LineSplitter:
    """Bytes in, complete lines out, decoded as UTF-8 (SSE's only encoding)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending: list[str] = []
        self._pending_chars = 0
        self._total = 0

    def feed(self, data: bytes) -> list[str]:
        """The lines that ``data`` completes; EventStreamError past either bound."""
        self._total += len(data)
        if self._total > MAX_STREAM_BYTES:
            raise EventStreamError(f"the stream went past {MAX_STREAM_BYTES >> 20} MiB")
        text = self._decoder.decode(data)
        # str.split is several times faster than the regex; SSE's CR endings are rare
        *complete, rest = NEWLINE.split(text) if "\r" in text else text.split("\n")
        if complete:
            complete[0] = "".join([*self._pending, complete[0]])
            self._pending, self._pending_chars = [], 0
        self._pending.append(rest)
        self._pending_chars += len(rest)
        if self._pending_chars > MAX_EVENT_BYTES:
            raise EventStreamError(f"a server-sent event longer than {MAX_EVENT_BYTES >> 20} MiB")
        return complete

    def close(self) -> list[str]:
        """The last line, when the stream did not end with a line break."""
        last = "".join([*self._pending, self._decoder.decode(b"", final=True)])
        self._pending, self._pending_chars = [], 0
        return [last] if last else []


def error_text(body: str) -> str:
    """What an error body says, on one line of at most 200 characters."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return " ".join(body.split())[:200]
    error = data.get("error", data) if isinstance(data, dict) else data
    message = error.get("message", error) if isinstance(error, dict) else error
    return " ".join(str(message).split())[:200]


def parse_event(data: str) -> dict[str, Any]:
    """One event's JSON object; EventStreamError when it is not one or reports an error."""
    try:
        chunk = json.loads(data)
    except (ValueError, RecursionError):
        chunk = None
    if not isinstance(chunk, dict):
        raise EventStreamError(f"malformed server-sent event: {data[:60]!r}")
    if "error" in chunk:
        raise EventStreamError(f"the server reported an error mid-stream: {error_text(data)}")
    return chunk


def parse_events(datas: list[str]) -> list[dict[str, Any]]:
    """The JSON objects of several events in one ``json.loads`` (an array of them, which
    saves the per-call cost at hundreds of events per read); on any doubt — it does not
    parse, or not into as many objects as events, or one reports an error — each event is
    parsed alone, so errors are the same as ``parse_event``'s."""
    if len(datas) > 1:
        try:
            batch = json.loads("[" + ",".join(datas) + "]")
        except (ValueError, RecursionError):
            batch = None
        if (isinstance(batch, list) and len(batch) == len(datas)
                and all(isinstance(c, dict) and "error" not in c for c in batch)):
            return batch
    return [parse_event(data) for data in datas]


def delta_text(chunk: dict[str, Any]) -> tuple[str, str, str | None]:
    """(content, reasoning, finish_reason) of one Chat Completions chunk."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", "", None
    delta = choices[0].get("delta")
    delta = delta if isinstance(delta, dict) else {}
    # llama-server and vLLM say reasoning_content; LM Studio and Ollama say reasoning.
    reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
    finish = choices[0].get("finish_reason")
    return (str(delta.get("content") or ""), str(reasoning),
            finish[:40] if isinstance(finish, str) else None)
