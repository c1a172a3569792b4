"""Hostile servers: a run ends with one line per bad request, in bounded time and memory.

Each misbehaviour of ``tests/openai_server.py`` is bounded (a trickle ends when its answer is
sent, a flood when its size is reached), so these tests end even against a client without
defences; they assert what the run ended with, never how long it took.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.bench import endpoint_speed, sse
from gptoss_doctor.bench.speed import parse_tests

from openai_server import ServerState, serve

CHAT = {"model": "openai/gpt-oss-20b", "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}]}


def _sweep(state: ServerState, timeout: float = 10) -> dict[str, Any]:
    """The one sample of a pp16+tg8 sweep at concurrency 1 against ``state``'s server."""
    with serve(state) as url:
        endpoint = ep.Endpoint(url, state.api_key, timeout)
        shapes = endpoint_speed.shapes_for(parse_tests("tg8"))
        swept, interrupted = endpoint_speed.run_sweep(endpoint, state.model, shapes, (1,), 1)
    assert not interrupted and swept[0]["requests"] == 1
    sample: dict[str, Any] = swept[0]["samples"][0]
    return sample


# -- class 7: token counting never ends the run ----------------------------------------------

def test_a_long_run_of_one_character_is_counted_not_a_crash() -> None:
    # 1 MiB of "a" without usage: the o200k tokenizer panics on it in one piece
    sample = _sweep(ServerState(mode="flood", flood_chars=1 << 20))
    assert sample["error"] is None and sample["token_source"] == "counted"
    assert sample["completion_tokens"] == (1 << 20) // 8  # o200k: eight "a" per token
    assert "estimated" in sample["token_estimate"]


def test_short_answers_are_counted_exactly_without_an_estimate() -> None:
    sample = _sweep(ServerState(mode="no_usage"))
    assert (sample["completion_tokens"], sample["token_source"]) == (8, "counted")
    assert sample["token_estimate"] is None


class PanicException(BaseException):
    """Stands in for ``pyo3_runtime.PanicException``: a Rust panic, not an ``Exception``."""


def _panics(text: str) -> int:
    raise PanicException("called `Result::unwrap()` on an `Err` value: StackOverflow")


def _interrupted(text: str) -> int:
    raise KeyboardInterrupt


def test_a_tokenizer_panic_becomes_a_labelled_estimate() -> None:
    tokens, note = endpoint_speed.count_completion("x" * 4000, _panics)
    assert tokens == 1000 and note is not None and "estimated" in note
    with pytest.raises(KeyboardInterrupt):  # only the panic is caught, never Ctrl-C
        endpoint_speed.count_completion("x", _interrupted)


MIXED = "".join(random.Random(7).choice(
    [" hello", " world", ",", "\n\n", "  ", "\t", " é", "😀", " 12345", ".\n", "   x", "'s",
     " (", ") ", " don't", "/", "\r\n"]) for _ in range(5000))


@pytest.mark.parametrize("text", [
    pytest.param(" word" * 3000, id="words"),
    pytest.param("line one.\n\n  indented two\n" * 500, id="punctuation before blank lines"),
    pytest.param(MIXED, id="a random mix of words, spaces, digits, emoji and line breaks"),
])
def test_counting_in_pieces_counts_exactly_what_counting_whole_does(text: str) -> None:
    from gptoss_doctor.bench import harmony

    pieces = list(endpoint_speed.count_pieces(text))
    assert "".join(pieces) == text and max(map(len, pieces)) <= endpoint_speed.COUNT_CHUNK_CHARS
    assert endpoint_speed.count_completion(text) == (harmony.count_tokens(text), None)


def test_text_without_spaces_is_cut_at_the_piece_size() -> None:
    pieces = list(endpoint_speed.count_pieces("1234567" * 1000))
    assert {len(p) for p in pieces[:-1]} == {endpoint_speed.COUNT_CHUNK_CHARS}


def test_one_bad_request_is_that_requests_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = endpoint_speed.sample
    calls: list[int] = []

    def sample_once_broken(*args: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("an answer nobody expected")
        return real(*args)

    monkeypatch.setattr(endpoint_speed, "sample", sample_once_broken)
    with serve(ServerState()) as url:
        swept, _ = endpoint_speed.run_sweep(ep.Endpoint(url, None, 10), "openai/gpt-oss-20b",
                                            endpoint_speed.shapes_for(parse_tests("tg8")),
                                            (1,), 2)
    assert [s["error"] for s in swept[0]["samples"]] == [
        "the answer could not be read: ValueError: an answer nobody expected", None]


# -- class 10: one deadline per request, trickle or not --------------------------------------

DEADLINE = "no complete answer within 1 s"


@pytest.mark.parametrize("mode", [
    pytest.param("trickle", id="a body trickled a byte at a time"),
    pytest.param("trickle_headers", id="headers trickled a byte at a time"),
])
def test_discovery_from_a_trickling_server_ends_at_the_deadline(mode: str) -> None:
    with serve(ServerState(mode=mode, trickle_s=0.05)) as url, \
            pytest.raises(ep.EndpointError) as caught:
        ep.discover(ep.Endpoint(url, timeout_s=1), None)
    assert caught.value.message == f"{url}/models: {DEADLINE}"


def test_a_tool_turn_from_a_trickling_server_ends_at_the_deadline() -> None:
    with serve(ServerState(mode="trickle")) as url, pytest.raises(ep.EndpointError) as caught:
        ep.post_json(ep.Endpoint(url, timeout_s=1), "/chat/completions", CHAT)
    assert caught.value.message == f"{url}/chat/completions: {DEADLINE}"


def test_a_trickled_stream_is_that_requests_deadline_error() -> None:
    sample = _sweep(ServerState(mode="trickle", trickle_s=0.05), timeout=1)
    assert sample["error"] is not None and sample["error"].endswith(DEADLINE)


# -- class 3: what a server sends is bounded before it is stored or printed ------------------

def _bounded(message: str) -> bool:
    return len(message) < 400 and "\n" not in message


@pytest.mark.parametrize("call", [
    pytest.param(lambda url: ep.discover(ep.Endpoint(url), None), id="discovery"),
    pytest.param(lambda url: ep.post_json(ep.Endpoint(url), "/chat/completions", CHAT),
                 id="a tool turn"),
])
def test_a_huge_error_body_is_read_only_as_far_as_shown(call: Callable[[str], Any]) -> None:
    with serve(ServerState(mode="huge_error")) as url, pytest.raises(ep.EndpointError) as caught:
        call(url)
    assert _bounded(caught.value.message)


def test_a_huge_error_body_is_not_read_to_its_end() -> None:
    state = ServerState(mode="huge_error")
    with serve(state) as url, pytest.raises(ep.EndpointError) as caught:
        ep.post_json(ep.Endpoint(url), "/chat/completions", CHAT)
    assert caught.value.message.startswith("the server answered 500: EEEE")
    assert _bounded(caught.value.message) and state.sent < state.error_bytes


def test_a_huge_streamed_error_is_that_requests_bounded_error() -> None:
    sample = _sweep(ServerState(mode="huge_error"))
    assert sample["error"].startswith("the server answered 500: EEEE")
    assert _bounded(sample["error"])


def test_a_huge_json_answer_is_refused() -> None:
    state = ServerState(script=[{"role": "assistant", "content": "x" * (9 << 20)}])
    with serve(state) as url, pytest.raises(ep.EndpointError) as caught:
        ep.post_json(ep.Endpoint(url), "/chat/completions", CHAT)
    assert caught.value.message == f"{url}/chat/completions answered more than 8 MiB"


def test_identity_headers_are_stored_truncated_and_redacted() -> None:
    state = ServerState(api_key="sk-secret-1",
                        extra_headers={"X-Powered-By": "sk-secret-1 " + "A" * 60000})
    with serve(state) as url:
        info, _ = ep.discover(ep.Endpoint(url, "sk-secret-1"), None)
    powered = info.headers["x-powered-by"]
    assert powered.startswith("*** AAAA") and len(powered) <= ep.MAX_HEADER_CHARS


def test_a_header_past_the_http_parsers_limit_is_one_line() -> None:
    state = ServerState(extra_headers={"X-Pad": "A" * (1 << 20)})
    with serve(state) as url, pytest.raises(ep.EndpointError) as caught:
        ep.discover(ep.Endpoint(url), None)
    assert caught.value.message == (f"{url}/models: the server sent a malformed or oversized "
                                    "answer (Receive buffer too long)")


@pytest.mark.parametrize(("state", "error"), [
    pytest.param(ServerState(mode="flood", flood_chars=3 << 20, flood_event_chars=3 << 20),
                 "a server-sent event longer than 2 MiB", id="one endless event line"),
    pytest.param(ServerState(mode="flood", flood_chars=9 << 20),
                 "the stream went past 8 MiB", id="a stream longer than any answer"),
])
def test_oversized_streams_are_that_requests_error(state: ServerState, error: str) -> None:
    sample = _sweep(state)
    assert sample["error"] == error


def test_events_of_the_wrong_shape_are_read_around() -> None:
    sample = _sweep(ServerState(events=[
        '{"choices": [{"delta": "text"}]}', '{"choices": {"0": 1}}',
        '{"choices": [{"delta": {"content": " hi"}, "finish_reason": ["x"]}]}',
        '{"choices": [{"delta": {}, "finish_reason": "stop"}]}']))
    assert (sample["error"], sample["finish_reason"], sample["completion_tokens"]) == (
        None, "stop", 1)


def test_an_event_nested_too_deep_to_parse_is_that_requests_error() -> None:
    sample = _sweep(ServerState(events=["[" * 100_000 + "]" * 100_000]))
    assert sample["error"] == "malformed server-sent event: '" + "[" * 60 + "'"


def test_lines_are_cut_from_bytes_as_they_come() -> None:
    lines = sse.LineSplitter()
    parts = [b"data: a\r", b"\ndata: \xc3", b"\xa9\rdata: b\n\n", b"data: [DONE]"]
    got = [line for part in parts for line in lines.feed(part)]
    assert [*got, *lines.close()] == ["data: a", "", "data: é", "data: b", "", "data: [DONE]"]


@pytest.mark.parametrize(("data", "error"), [
    pytest.param("[" * 100_000 + "]" * 100_000, "malformed server-sent event",
                 id="arrays nested a hundred thousand deep"),
    pytest.param('"just a string"', "malformed server-sent event", id="not an object"),
    pytest.param('{"error": {"message": "' + "x" * 100_000 + '"}}',
                 "the server reported an error mid-stream: xxx", id="a huge error"),
])
def test_bad_events_are_one_bounded_line(data: str, error: str) -> None:
    with pytest.raises(sse.EventStreamError) as caught:
        sse.parse_event(data)
    assert caught.value.message.startswith(error) and _bounded(caught.value.message)


@pytest.mark.parametrize("chunk", [
    pytest.param({"choices": {"0": {}}}, id="choices as an object"),
    pytest.param({"choices": [{"delta": "text"}]}, id="a delta that is a string"),
    pytest.param({"choices": [{"delta": {}, "finish_reason": ["stop"]}]},
                 id="a finish_reason that is a list"),
])
def test_fields_of_the_wrong_type_count_as_absent(chunk: dict[str, Any]) -> None:
    assert sse.delta_text(chunk) == ("", "", None)
