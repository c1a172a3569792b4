"""A server's ``usage`` is hostile: token counts that are not plausible integers (a bool, a
negative, or one too large for a float) are not taken from it; the request's tokens are
counted from its text instead, and the level's figures are numbers, never an OverflowError.
Also the ITL/TPOT edge cases: no token, one token, one chunk, duplicate arrival times."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math

import pytest

from gptoss_doctor.bench import client_watch, endpoint_speed, latency, load, results
from gptoss_doctor.bench.chat_stream import Stream
from gptoss_doctor.bench.endpoint import Endpoint
from gptoss_doctor.bench.load import to_request
from gptoss_doctor.bench.load_plan import (
    MIN_RATE,
    SWEEP_MAX_LEVELS,
    Arrivals,
    parse_rates,
    parse_slos,
)
from gptoss_doctor.errors import UsageError
from gptoss_doctor.serde import to_json


def _stream(usage: dict[str, object] | None, chunks: int = 3) -> Stream:
    return Stream(first_s=0.1, last_s=0.1 + 0.01 * (chunks - 1), end_s=0.2, chunks=chunks,
                  content="one two three", usage=usage,
                  finish_reason="stop", chunk_s=[0.1 + 0.01 * i for i in range(chunks)])


@pytest.mark.parametrize("completion", [10**400, 2**64, True, -5])
def test_an_implausible_completion_count_is_counted_from_the_text(completion: object) -> None:
    request = to_request(_stream({"completion_tokens": completion, "prompt_tokens": 10**400}),
                         0, 0, 0.0, 0.0, prompt_tokens=7, warmup=False)
    assert request.token_source == "counted" and 0 < request.output_tokens < 10
    assert request.prompt_tokens == 7
    figures = latency.figures([request], 1.0, None, parse_slos("itl_p95=1s,tpot_p50=1s"))
    json.dumps(to_json(figures), allow_nan=False)
    assert figures.output_tokens == request.output_tokens


def test_a_plausible_usage_is_taken() -> None:
    request = to_request(_stream({"completion_tokens": 5, "prompt_tokens": 11}), 0, 0, 0.0,
                         0.0, prompt_tokens=7, warmup=False)
    assert (request.output_tokens, request.prompt_tokens, request.token_source) == (5, 11,
                                                                                    "usage")


@pytest.mark.parametrize(("tokens", "chunk_s", "tpot", "itl"), [
    (0, (), None, ()),  # nothing came
    (1, (0.5,), None, ()),  # one token: no gap, no TPOT
    (2, (0.5, 0.5), 0.4, (0.0,)),  # two chunks in one read: one gap of 0
    (5, (0.5, 0.9), 0.1, (0.1, 0.1, 0.1, 0.1)),  # one gap carrying 4 tokens
])
def test_itl_and_tpot_edges(tokens: int, chunk_s: tuple[float, ...], tpot: float | None,
                            itl: tuple[float, ...]) -> None:
    request = latency.Request(0, 0, 0.0, 0.0, chunk_s[0] if chunk_s else None, 0.9,
                              chunk_s, tokens, 3)
    assert request.tpot_s == (None if tpot is None else pytest.approx(tpot))
    values, weights = latency.values([request], "itl")
    expanded = [v for v, w in zip(values, weights, strict=True) for _ in range(round(w))]
    assert expanded == pytest.approx(list(itl))
    dist = latency.distribution(values, weights)
    assert dist.n == len(values) and (dist.p50 is None) == (not itl)


@pytest.mark.parametrize("completion", [10**400, True, -5])
def test_bench_speed_over_an_endpoint_counts_past_an_implausible_usage(
        completion: object) -> None:
    row = endpoint_speed.sample(_stream({"completion_tokens": completion,
                                         "prompt_tokens": 10**400}),
                                endpoint_speed.Shape(16, 8), 1, 0, 0)
    assert row["token_source"] == "counted" and 0 < row["completion_tokens"] < 10
    assert row["prompt_tokens_source"] == "sent" and row["prompt_tokens"] == 16
    json.dumps(row, allow_nan=False)


def test_a_one_token_answer_meets_tpot_and_itl_slos_as_vllm_counts_it() -> None:
    """vllm bench serve (benchmarks/serve.py, calculate_metrics): "if output_len <= 1, we
    regard tpot as 0 for goodput". A one-token answer has no TPOT and no gap: it must not
    lower goodput, while a slow two-token answer still misses."""
    slos = parse_slos("tpot_p50=10ms,itl_p95=10ms,ttft_p95=1s")
    one = latency.Request(0, 0, 0.0, 0.0, 0.2, 0.3, (0.2,), 1, 3)
    slow = latency.Request(1, 0, 0.0, 0.0, 0.2, 0.9, (0.2, 0.9), 2, 3)
    assert latency.request_meets(one, slos)
    assert not latency.request_meets(slow, slos)
    no_text = latency.Request(2, 0, 0.0, 0.0, None, 0.3, (), 0, 3)
    assert not latency.request_meets(no_text, slos)  # no first token: no TTFT to meet
    figures = latency.figures([one, slow], 1.0, None, slos)
    assert figures.goodput_rps == 1.0 and figures.completed_rps == 2.0


def test_a_long_level_writes_samples_a_results_file_can_hold() -> None:
    """A 1000/s level of 150 s (150,000 requests; --requests allows 1,000,000) kept one
    sample per request: 16 such levels of a sweep made a results file far past the 64 MiB
    that report, publish and share read. Samples are now at most MAX_SAMPLES per level,
    spread over it (first and last kept); ``sent`` and every figure still count them all."""
    count = 150_000
    requests = [latency.Request(index=i, replica=0, scheduled_s=i / 1000, sent_s=i / 1000,
                                ttft_s=0.1, e2e_s=0.2, chunk_s=(0.1, 0.2), output_tokens=2,
                                prompt_tokens=8, error=None if i % 7 else "x" * 200)
                for i in range(count)]
    ran = load.LevelRun(requests, [], 0, 10, client_watch.client_load([0.001], 0.1, 1.0))
    profile = load.Profile("rate", Arrivals("constant"), 0, requests=count)
    level = load.summarize(ran, profile, [Endpoint("http://127.0.0.1:9/v1")], (),
                           rate=1000.0, streams=None)
    assert level.sent == count and level.total.requests == count
    indexes = [s["index"] for s in level.samples]
    assert indexes[0] == 0 and indexes[-1] == count - 1 and indexes == sorted(set(indexes))
    written = len(json.dumps(to_json(level.samples), indent=2).encode())
    assert written * SWEEP_MAX_LEVELS < results.LIMITS.max_bytes // 2


def test_a_server_that_words_every_error_differently_keeps_a_bounded_error_table() -> None:
    """``errors`` maps each message to its count, and the terminal caption prints one line
    per message: a server whose every refusal names its request ("request 17 rejected")
    made one entry per request (a million at most). The most common are kept, the rest
    counted under one entry; the counts still add up to every failed request."""
    requests = [latency.Request(index=i, replica=0, scheduled_s=0.0, sent_s=0.0, ttft_s=None,
                                e2e_s=0.1, chunk_s=(), output_tokens=0, prompt_tokens=8,
                                error=f"HTTP 503: request {i} rejected")
                for i in range(5_000)]
    requests += [dataclasses.replace(requests[0], index=5_000 + i, error="HTTP 429: busy")
                 for i in range(10)]
    errors = latency.figures(requests, 1.0, None).errors
    assert len(errors) <= latency.MAX_ERRORS + 1
    assert sum(errors.values()) == len(requests) and errors["HTTP 429: busy"] == 10


@pytest.mark.parametrize("rate", ["1e-320", "5e-324", "0.0000001"])
def test_a_rate_whose_gaps_overflow_is_a_usage_error(rate: str) -> None:
    """1/1e-320 is inf: the schedule's second send was at infinity, and an open-loop level
    of --requests 2 slept for ever on it."""
    with pytest.raises(UsageError, match="bad --rate"):
        parse_rates(rate)
    assert math.isfinite(1 / MIN_RATE) and parse_rates("0.001") == (0.001,)


def test_a_closed_loop_level_against_a_server_that_fails_at_once_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An open-loop schedule stops at MAX_REQUESTS; a closed loop with --duration had no
    bound: against a server that refuses at once, each stream sends again at once, and a
    600 s level kept millions of requests in memory. Port 9 on loopback refuses."""
    monkeypatch.setattr(load, "MAX_REQUESTS", 40)
    profile = load.Profile("concurrency", Arrivals("constant"), 0, duration_s=600.0)
    shape = endpoint_speed.Shape(16, 8)
    ran = asyncio.run(load.run_level([Endpoint("http://127.0.0.1:9/v1", None, 5)], "m",
                                     [shape], profile, streams=4, metrics=False))
    assert len(ran.requests) == 40
    assert all(r.error for r in ran.requests)
