"""Speed of an OpenAI-compatible endpoint: streamed Chat Completions, a concurrency sweep.

Each request sends a user message of exactly N o200k tokens of random words (fresh words
for every request, so no server's prompt cache can answer it) and asks for M tokens:
``ppN`` and ``tgM`` name the shape like llama-bench's tests. Per request, from the stream:

- TTFT: request start -> the first chunk with content or reasoning text (LocalScore's
  definition); it includes HTTP, queueing and the chat template's own tokens, so the
  prompt rate ``prompt tokens / TTFT`` is an estimate, labelled as such;
- decode rate: tokens after the first / time after the first chunk;
- end-to-end latency; token counts from ``usage`` when the server sends it in the stream
  (asked for with ``stream_options.include_usage``), else counted with the o200k tokenizer
  and marked "counted" — in pieces, and at most ``COUNT_LIMIT_CHARS`` of it: the tokenizer
  is quadratic in the length of one piece of text and panics on a long run of one
  character, which a server can send. Beyond the limit, or should the tokenizer fail
  anyway, ``token_estimate`` says how the count was estimated (None when it is exact).

A level of the sweep runs N streams at once, each making ``reps`` requests one after the
other: aggregate tok/s (all generated tokens / the level's wall time), per-stream decode
rates, TTFT p50/p95 and the errors. It is bounded in count (N x reps requests) and in time
(each request's own deadline). One warm-up request runs first, untimed. A failed request is
kept with its reason and never hides the others — whatever the server sent, the request
becomes a sample, its error if need be; Ctrl-C keeps every finished request.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gptoss_doctor.bench import harmony, stats
from gptoss_doctor.bench.chat_stream import Stream, stream_chat
from gptoss_doctor.bench.endpoint import Endpoint, async_client
from gptoss_doctor.bench.speed import SpeedTest
from gptoss_doctor.errors import UsageError

WARMUP_TOKENS = 8
WARMUP_SEED = 999_999_999  # a prompt no timed request sends (theirs are seeded from 0 up)
TTFT_BASIS = "endpoint: prompt tokens / TTFT, including HTTP, queueing and the chat template"
DECODE_BASIS = "endpoint: streamed tokens after the first / time after the first"
COUNT_CHUNK_CHARS = 512  # one tokenizer call: its cost grows with the square of this
COUNT_LIMIT_CHARS = 1 << 18  # 256 Ki characters (~64K tokens of prose): bounds one count's time
BYTES_PER_TOKEN = 4  # o200k on English prose: the last resort when the tokenizer fails


@dataclass(frozen=True, slots=True)
class Shape:
    """One request: a prompt of ``prompt_tokens`` random-word tokens, ``max_tokens`` out."""

    prompt_tokens: int
    max_tokens: int

    @property
    def name(self) -> str:
        return f"pp{self.prompt_tokens}+tg{self.max_tokens}"


def shapes_for(tests: Sequence[SpeedTest]) -> tuple[Shape, ...]:
    """Every ppN paired with every tgM (``pp512,tg128`` is one request shape)."""
    if any(t.depth for t in tests):
        raise UsageError("depths are not measured over an endpoint",
                         "prefilling a depth relies on each server's own prompt cache")
    prompts = sorted({t.n_tokens for t in tests if t.kind == "pp"}) or [16]
    outputs = sorted({t.n_tokens for t in tests if t.kind == "tg"}) or [1]
    return tuple(Shape(p, m) for p in prompts for m in outputs)


def parse_levels(text: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> (1, 2, 4, 8); a bad level is a usage error."""
    try:
        levels = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise UsageError(f"bad --concurrency {text!r}: use numbers like 1,2,4,8") from None
    if not levels or levels[0] < 1 or levels[-1] > 256:
        raise UsageError(f"bad --concurrency {text!r}: levels from 1 to 256")
    return levels


def prompt_text(n_tokens: int, seed: int) -> str:
    """Exactly ``n_tokens`` o200k tokens of random words (one token each, with the leading
    space that makes it one token: stripping the first would split some words)."""
    words = harmony.single_token_words()
    rng = random.Random(seed)
    return "".join(rng.choice(words) for _ in range(n_tokens))


def request_body(model: str, shape: Shape, seed: int) -> dict[str, Any]:
    return {"model": model, "max_tokens": shape.max_tokens, "seed": seed,
            "messages": [{"role": "user", "content": prompt_text(shape.prompt_tokens, seed)}],
            "stream_options": {"include_usage": True}}


def count_pieces(text: str, size: int = COUNT_CHUNK_CHARS) -> Iterator[str]:
    """``text`` in pieces of at most ``size`` characters, each cut before a single space
    between two other characters: o200k's pre-tokenizer always splits there, so the pieces'
    counts add up to the whole's. A piece with no such space in its second half (a run of
    one character, text without spaces) is cut at ``size``, which can move a token or two."""
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            end = next((cut for cut in range(end - 1, start + size // 2, -1)
                        if text[cut] == " " and not text[cut - 1].isspace()
                        and not text[cut + 1].isspace()), end)
        yield text[start:end]
        start = end


def count_completion(text: str, count: Callable[[str], int] = harmony.count_tokens,
                     total_chars: int | None = None) -> tuple[int, str | None]:
    """(o200k tokens in ``text``, None) — or (an estimate, how it was made) for a text over
    ``COUNT_LIMIT_CHARS`` or one the tokenizer fails on. The one place endpoint answers are
    counted: a server's text must never end the run. ``total_chars``: the whole answer's
    length when ``text`` is only its head (``Stream.text_chars``)."""
    total = len(text) if total_chars is None else max(total_chars, len(text))
    head = text[:COUNT_LIMIT_CHARS]
    try:
        tokens = sum(count(piece) for piece in count_pieces(head))
    except BaseException as exc:
        # openai-harmony's Rust tokenizer reports a panic as pyo3_runtime.PanicException,
        # a BaseException (so that `except Exception` cannot swallow it) that no module
        # exports for importing: it is known by name; Ctrl-C and the rest go on up.
        if type(exc).__name__ != "PanicException":
            raise
        return (math.ceil(len(text.encode()) * total / max(len(text), 1) / BYTES_PER_TOKEN),
                f"estimated as UTF-8 bytes / {BYTES_PER_TOKEN}: the o200k tokenizer failed")
    if not head or len(head) == total:
        return tokens, None
    return (round(tokens * total / len(head)),
            f"estimated: the first {len(head)} of {total} characters counted, "
            "the rest at their rate")


def usage_count(usage: dict[str, Any] | None, key: str) -> int | None:
    """A token count from a server's ``usage``, or None where it is no plausible count (not
    an integer, a bool, negative, or past 2**53: 10**400 tokens overflow every rate)."""
    value = (usage or {}).get(key)
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53
    return value if ok else None


def sample(stream: Stream, shape: Shape, streams: int, index: int, rep: int
           ) -> dict[str, Any]:
    """One request's numbers from its stream (None where the stream did not get that far)."""
    told = usage_count(stream.usage, "completion_tokens")
    counted = told is None
    completion, estimate = (count_completion(stream.reasoning + stream.content,
                                             total_chars=stream.text_chars)
                            if told is None else (told, None))
    prompt = usage_count(stream.usage, "prompt_tokens")
    decode_s = (stream.last_s - stream.first_s
                if stream.first_s is not None and stream.last_s is not None else None)
    ttft = stream.first_s
    return {
        "shape": shape.name, "streams": streams, "stream": index, "rep": rep,
        "prompt_tokens": prompt if prompt is not None else shape.prompt_tokens,
        "prompt_tokens_source": "usage" if prompt is not None else "sent",
        "completion_tokens": completion, "token_source": "counted" if counted else "usage",
        "token_estimate": estimate,
        "chunks": stream.chunks,
        "ttft_s": _round(ttft),
        "prompt_ts": _round((prompt or shape.prompt_tokens) / ttft if ttft else None),
        "decode_ts": _round((completion - 1) / decode_s
                            if decode_s and completion > 1 else None),
        "e2e_s": _round(stream.end_s), "finish_reason": stream.finish_reason,
        # the server's finish reason, not a count: counted text can merge or drop tokens
        "stopped_early": stream.error is None and stream.finish_reason not in (None, "length"),
        "error": stream.error,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def level_summary(shape: Shape, streams: int, samples: Sequence[dict[str, Any]],
                  wall_s: float) -> dict[str, Any]:
    """Aggregate and per-stream rates, TTFT percentiles and errors of one level."""
    ok = [s for s in samples if s["error"] is None]
    ttfts = [s["ttft_s"] for s in ok if s["ttft_s"] is not None]
    decode = [s["decode_ts"] for s in ok if s["decode_ts"] is not None]
    generated = sum(s["completion_tokens"] for s in ok)
    p50, p95 = percentile(ttfts, 50), percentile(ttfts, 95)
    return {
        "shape": shape.name, "streams": streams, "requests": len(samples), "ok": len(ok),
        "errors": dict(Counter(s["error"] for s in samples if s["error"])),
        "wall_s": round(wall_s, 6), "generated_tokens": generated,
        "aggregate_ts": round(generated / wall_s, 4) if wall_s > 0 and ok else None,
        "per_stream_ts": round(stats.mean(decode), 4) if decode else None,
        "ttft_p50_s": _round(p50), "ttft_p95_s": _round(p95),
        "e2e_p50_s": _round(percentile([s["e2e_s"] for s in ok], 50)),
        "samples": list(samples),
    }


@dataclass(frozen=True, slots=True)
class _Level:
    """One level of the sweep: ``streams`` streams, each sending ``reps`` requests of
    ``shape`` in turn, seeded from ``seed`` (+ 1000 per stream, + 1 per request)."""

    shape: Shape
    streams: int
    reps: int
    seed: int


async def _level(endpoint: Endpoint, model: str, level: _Level,
                 samples: list[dict[str, Any]], done: Callable[[], None],
                 clock: Callable[[], float]) -> None:
    """Run one level, appending each finished request to ``samples`` as it ends."""
    shape, streams = level.shape, level.streams
    async with async_client(endpoint, streams) as client:
        async def one_stream(index: int) -> None:
            for rep in range(level.reps):
                body = request_body(model, shape, level.seed + 1000 * index + rep)
                try:
                    stream = await stream_chat(client, endpoint, body, clock)
                    record = sample(stream, shape, streams, index, rep)
                except Exception as exc:  # one unreadable answer must not end the run
                    record = sample(unreadable(endpoint, exc), shape, streams, index, rep)
                samples.append(record)
                done()

        await asyncio.gather(*(one_stream(i) for i in range(streams)))


def unreadable(endpoint: Endpoint, exc: Exception) -> Stream:
    """A request whose answer could not be turned into numbers, as its own one-line error."""
    reason = endpoint.redact(f"{type(exc).__name__}: {exc}".splitlines()[0])[:200]
    return Stream(error=f"the answer could not be read: {reason}")


def warm_up(endpoint: Endpoint, model: str, shape: Shape) -> Stream:
    """One untimed request; its error, if any, is the run's first clear line."""
    async def run() -> Stream:
        async with async_client(endpoint, 1) as client:
            return await stream_chat(client, endpoint, request_body(
                model, Shape(shape.prompt_tokens, min(shape.max_tokens, WARMUP_TOKENS)),
                WARMUP_SEED))

    return asyncio.run(run())


def run_sweep(endpoint: Endpoint, model: str, shapes: Sequence[Shape],
              levels: Sequence[int], reps: int, *,
              progress: Callable[[str], None] | None = None,
              clock: Callable[[], float] = time.perf_counter
              ) -> tuple[list[dict[str, Any]], bool]:
    """Every shape at every concurrency level; (levels, interrupted). Ctrl-C keeps what ran."""
    results: list[dict[str, Any]] = []
    for number, streams in enumerate(levels):
        for index, shape in enumerate(shapes):
            label = f"{shape.name} x{streams}"

            def tick(label: str = label) -> None:
                if progress is not None:
                    progress(label)

            seed = 1_000_000 * number + 100_000 * index
            samples: list[dict[str, Any]] = []
            start = clock()
            try:
                asyncio.run(_level(endpoint, model, _Level(shape, streams, reps, seed),
                                   samples, tick, clock))
            except KeyboardInterrupt:
                if samples:
                    results.append(level_summary(shape, streams, _ordered(samples),
                                                 clock() - start))
                return results, True
            results.append(level_summary(shape, streams, _ordered(samples), clock() - start))
    return results, False


def _ordered(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(samples, key=lambda s: (s["stream"], s["rep"]))


def tests_from(levels: Sequence[dict[str, Any]], shapes: Sequence[Shape],
               kinds: frozenset[str] = frozenset({"pp", "tg"})) -> list[dict[str, Any]]:
    """llama-bench-named tests from the lowest concurrency level: ``ppN`` as prompt tokens /
    TTFT and ``tgM`` as the decode rate, each marked with its basis; only the ``kinds``
    asked for (a filler shape's other half is not a test)."""
    if not levels:
        return []
    lowest = min(level["streams"] for level in levels)
    samples = [x for level in levels if level["streams"] == lowest for x in level["samples"]]
    prompts = sorted({s.prompt_tokens for s in shapes})
    outputs = sorted({s.max_tokens for s in shapes})
    pp = [_test("pp", n, [x for x in samples if x["shape"].startswith(f"pp{n}+")], lowest)
          for n in prompts] if "pp" in kinds else []
    tg = [_test("tg", n, [x for x in samples if x["shape"].endswith(f"+tg{n}")], lowest)
          for n in outputs] if "tg" in kinds else []
    return pp + tg


def _test(kind: str, size: int, samples: Sequence[dict[str, Any]], streams: int
          ) -> dict[str, Any]:
    rate_key = "prompt_ts" if kind == "pp" else "decode_ts"
    ok = [x for x in samples if x["error"] is None and x[rate_key] is not None]
    rates = [x[rate_key] for x in ok]
    durations = [x["ttft_s"] if kind == "pp" else (x["completion_tokens"] - 1) / x[rate_key]
                 for x in ok]
    failed = [x["error"] for x in samples if x["error"]]
    notes = [f"measured at concurrency {streams}"] if streams > 1 else []
    if failed:
        notes.append(f"{len(failed)} request(s) failed: {failed[0]}")
    elif not rates:
        notes.append("no request streamed enough tokens")
    return {"name": f"{kind}{size}", "kind": kind, "n_tokens": size, "depth": 0,
            "status": "ok" if rates else "failed", "reason": "; ".join(notes) or None,
            "durations_s": [round(d, 6) for d in durations], "samples_ts": rates,
            "mean_ts": round(stats.mean(rates), 4) if rates else None,
            "stddev_ts": round(stats.sample_stddev(rates), 4) if rates else None,
            "basis": TTFT_BASIS if kind == "pp" else DECODE_BASIS}
