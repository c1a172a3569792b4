"""The serving load engine: open-loop rates and closed-loop concurrency over one or more
OpenAI-compatible endpoints, with the client watching itself.

- Open loop (``--rate``): requests are sent at their scheduled times (``bench.load_plan``)
  whether or not earlier ones have finished, so a server that falls behind sees the load
  grow, as real users would make it grow. The only bound is ``MAX_OUTSTANDING`` requests
  in flight per level: a scheduled request that finds the cap reached is not sent and is
  counted in ``dropped`` (and as a miss of every SLO).
- Closed loop (``--concurrency``): N streams, each sending its next request when its last
  one ended, until the level's requests are sent or its duration is over.
- A level measures ``--requests N`` requests or every request sent in ``--duration S``,
  after a warm-up (``--warmup``: the first requests or seconds, sent the same way and kept
  out of every figure).
- Replicas: request i goes to endpoint ``i % len(endpoints)``; each has its own connection
  pool; figures come per replica and in total.
- The client watches itself (``bench.client_watch``): a ticker task wakes every
  ``LAG_TICK_S`` and records how late it woke (event-loop lag), and the process's CPU time
  over the level's wall time gives its CPU share. A level whose lag p99 passes
  ``LAG_P99_LIMIT_S``, whose CPU share passes ``CPU_SHARE_LIMIT`` or (open loop) whose
  sends fell ``SEND_LAG_P99_LIMIT_S`` behind the schedule (p99) is marked
  ``client_bound``: its latencies include the client's own delays and say less about the
  server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gptoss_doctor.bench import latency, prom
from gptoss_doctor.bench.chat_stream import Stream, stream_chat
from gptoss_doctor.bench.client_watch import Monitor, client_load
from gptoss_doctor.bench.endpoint import Endpoint, async_client
from gptoss_doctor.bench.endpoint_speed import (
    count_completion,
    prompt_text,
    unreadable,
    usage_count,
)
from gptoss_doctor.bench.latency import Request
from gptoss_doctor.bench.load_plan import (
    MAX_REQUESTS,
    SWEEP_STEP,
    Arrivals,
    Slo,
    SweepResult,
    Warmup,
    find_max_rate,
    schedule,
)
from gptoss_doctor.bench.prom import ServerMetrics
from gptoss_doctor.bench.records import ClientLoad, LoadLevel

MAX_OUTSTANDING = 1024  # requests in flight at once per level (open loop); past it: dropped
# Per-request samples kept per level, spread over it (``sent`` and the figures count every
# request): a sweep's 16 levels of 2,000 stay far below the 64 MiB a results file may be.
MAX_SAMPLES = 2_000
SEND_LAG_P99_LIMIT_S = 0.05  # open loop: sends this late (p99) against the schedule: bound
PREFIX_SEED = 777_777_777  # the shared prefix's words: the same text in every request
LoadMode = Literal["rate", "concurrency"]


class Shaped(Protocol):
    """One request's shape: ``bench.workload.RequestShape`` or ``endpoint_speed.Shape``."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Profile:
    """How one level's requests are sent."""

    mode: LoadMode
    arrivals: Arrivals
    seed: int
    duration_s: float | None = None  # each level's measured length, or
    requests: int | None = None  # its measured requests
    warmup: Warmup = field(default_factory=Warmup)
    cap: int = MAX_OUTSTANDING


def body_for(model: str, shape: Shaped, seed: int) -> dict[str, Any]:
    """A streamed request: the shared prefix (``prefix_tokens`` of the same words in every
    request, when the shape has one: ``bench.workload``), then ``prompt_tokens`` fresh
    random words (seeded per request, so no prompt cache can answer them)."""
    prefix = getattr(shape, "prefix_tokens", 0) or 0
    text = (prompt_text(prefix, PREFIX_SEED) if prefix else "") + prompt_text(
        shape.prompt_tokens, seed)
    return {"model": model, "max_tokens": shape.max_tokens, "seed": seed,
            "messages": [{"role": "user", "content": text}],
            "stream_options": {"include_usage": True}}


def to_request(stream: Stream, index: int, replica: int, scheduled_s: float, sent_s: float,
               prompt_tokens: int, warmup: bool) -> Request:
    """One request's timings; tokens from ``usage``, counted only when a server sends none."""
    completion = usage_count(stream.usage, "completion_tokens")
    source = "usage"
    if completion is None:
        completion, _ = count_completion(stream.reasoning + stream.content,
                                         total_chars=stream.text_chars)
        source = "counted"
    prompt = usage_count(stream.usage, "prompt_tokens")
    return Request(index=index, replica=replica, scheduled_s=scheduled_s, sent_s=sent_s,
                   ttft_s=stream.first_s, e2e_s=stream.end_s, chunk_s=tuple(stream.chunk_s),
                   output_tokens=completion,
                   prompt_tokens=prompt_tokens if prompt is None else prompt,
                   error=stream.error, timed_out=stream.timed_out, warmup=warmup,
                   token_source=source)


@dataclass(slots=True)
class Sender:
    """Sends request ``index`` to its replica and keeps what came back."""

    endpoints: Sequence[Endpoint]
    clients: Sequence[Any]  # one httpx.AsyncClient per endpoint (bench.endpoint makes them)
    model: str
    shapes: Sequence[Shaped]  # request i has shapes[i % len(shapes)]
    seed: int
    clock: Callable[[], float]
    start: float = 0.0
    is_warmup: Callable[[int, float], bool] = lambda index, scheduled: False
    done: list[Request] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    progress: Callable[[], None] | None = None

    async def send(self, index: int, scheduled_s: float) -> None:
        replica = index % len(self.endpoints)
        shape = self.shapes[index % len(self.shapes)]
        body = body_for(self.model, shape, self.seed + index)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        sent = self.clock() - self.start
        try:
            stream = await stream_chat(self.clients[replica], self.endpoints[replica], body,
                                       self.clock)
        except Exception as exc:  # one unreadable answer must not end the run
            stream = unreadable(self.endpoints[replica], exc)
        finally:
            self.in_flight -= 1
        warm = self.is_warmup(index, scheduled_s if scheduled_s >= 0 else sent)
        sent_tokens = shape.prompt_tokens + (getattr(shape, "prefix_tokens", 0) or 0)
        self.done.append(to_request(stream, index, replica, scheduled_s, sent,
                                    sent_tokens, warm))
        if self.progress is not None:
            self.progress()


async def open_loop(sender: Sender, offsets: Sequence[float], cap: int) -> list[int]:
    """Send request i at ``offsets[i]`` s from now, whatever is still in flight (at most
    ``cap`` at once); the indices the cap dropped."""
    dropped: list[int] = []
    tasks: set[asyncio.Task[None]] = set()
    sender.start = sender.clock()
    for index, at in enumerate(offsets):
        delay = sender.start + at - sender.clock()
        if delay > 0:
            await asyncio.sleep(delay)
        if sender.in_flight >= cap:
            dropped.append(index)
            continue
        task = asyncio.create_task(sender.send(index, at))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await asyncio.sleep(0)  # let it start: its send time is its own
    while tasks:
        await asyncio.gather(*tuple(tasks))
    return dropped


async def closed_loop(sender: Sender, streams: int, total: int | None,
                      until_s: float | None) -> None:
    """``streams`` streams, each sending its next request when its last one ended, until
    ``total`` requests are sent or ``until_s`` s have passed."""
    counter = itertools.count()
    sender.start = sender.clock()

    async def stream() -> None:
        while True:
            index = next(counter)
            if total is not None and index >= total:
                return
            if until_s is not None and sender.clock() - sender.start >= until_s:
                return
            await sender.send(index, -1.0)

    await asyncio.gather(*(stream() for _ in range(streams)))


@dataclass(frozen=True, slots=True)
class LevelRun:
    """What one level sent and got back, before it is summarized."""

    requests: list[Request]
    dropped: list[int]
    warmup_dropped: int
    max_in_flight: int
    client: ClientLoad
    server: tuple[ServerMetrics, ...] = ()


async def run_level(endpoints: Sequence[Endpoint], model: str, shapes: Sequence[Shaped],
                    profile: Profile, *, rate: float | None = None,
                    streams: int | None = None, progress: Callable[[], None] | None = None,
                    clock: Callable[[], float] = time.perf_counter,
                    keep: list[Request] | None = None, metrics: bool = True) -> LevelRun:
    """One level at ``rate`` requests/s (open loop) or ``streams`` streams (closed loop).
    ``keep`` receives each finished request as it ends (Ctrl-C keeps them); with
    ``metrics`` each server's Prometheus ``/metrics`` is watched over the level."""
    cap = profile.cap if rate is not None else max(streams or 1, 1)
    body_for(model, shapes[0], profile.seed)  # loads the word list now, not on the clock
    clients = [async_client(e, cap) for e in endpoints]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        watchers = await _watch_servers(stack, endpoints) if metrics else []
        sender = Sender(endpoints, clients, model, shapes, profile.seed, clock,
                        progress=progress)
        if keep is not None:
            sender.done = keep
        monitor = Monitor()
        async with monitor.watching():
            dropped, warm_dropped = await _send_level(sender, profile, rate, streams, cap)
    return LevelRun(sender.done, dropped, warm_dropped, sender.max_in_flight,
                    monitor.verdict(), tuple(w.summary() for w in watchers))


async def _watch_servers(stack: contextlib.AsyncExitStack, endpoints: Sequence[Endpoint]
                         ) -> list[prom.Watch]:
    """Each server's Prometheus ``/metrics`` watched until ``stack`` closes, through a
    client of its own."""
    watchers = []
    for endpoint in endpoints:
        scraper = await stack.enter_async_context(async_client(endpoint, 1))
        watchers.append(await stack.enter_async_context(
            prom.watch(endpoint.base_url, scraper)))
    return watchers


async def _send_level(sender: Sender, profile: Profile, rate: float | None,
                      streams: int | None, cap: int) -> tuple[list[int], int]:
    """Send the level's requests, warm-up first: (the measured indices the cap dropped,
    how many warm-up requests it dropped)."""
    warm = profile.warmup
    if rate is not None:
        offsets, measured_from = _open_schedule(rate, profile)
        sender.is_warmup = lambda index, _at: index < measured_from
        dropped = await open_loop(sender, offsets, cap)
        return ([i for i in dropped if i >= measured_from],
                sum(1 for i in dropped if i < measured_from))
    # bounded like an open-loop schedule: a server that fails at once is asked again at
    # once, for the whole --duration
    count = warm.requests + profile.requests if profile.requests is not None else MAX_REQUESTS
    until = warm.seconds + profile.duration_s if profile.duration_s is not None else None
    sender.is_warmup = lambda index, at: index < warm.requests or at < warm.seconds
    await closed_loop(sender, streams or 1, count, until)
    return [], 0


def interrupted(finished: list[Request]) -> LevelRun:
    """What a level that Ctrl-C stopped had finished (no drops, no client figures)."""
    return LevelRun(finished, [], 0, 0, client_load([], 0.0, 0.0))


def _open_schedule(rate: float, profile: Profile) -> tuple[list[float], int]:
    """(every send offset, the index of the first measured one): the warm-up's requests
    first, at the same rate, then the measured ones."""
    warm = profile.warmup
    head: tuple[float, ...] = ()
    if warm.requests:
        head = schedule(rate, profile.arrivals, profile.seed + 1, count=warm.requests)
    elif warm.seconds:
        head = schedule(rate, profile.arrivals, profile.seed + 1, duration_s=warm.seconds)
    shift = warm.seconds if warm.seconds else (len(head) / rate if head else 0.0)
    body = schedule(rate, profile.arrivals, profile.seed, count=profile.requests,
                    duration_s=profile.duration_s)
    return [*head, *(shift + at for at in body)], len(head)


def summarize(run: LevelRun, profile: Profile, endpoints: Sequence[Endpoint],
              slos: Sequence[Slo], *, rate: float | None, streams: int | None) -> LoadLevel:
    """One level's record: totals, per replica, SLOs, the client's own load."""
    measured = sorted((r for r in run.requests if not r.warmup), key=lambda r: r.index)
    warm = sum(1 for r in run.requests if r.warmup) + run.warmup_dropped
    if measured:
        first = min(r.sent_s for r in measured)
        wall = max(r.sent_s + r.e2e_s for r in measured) - first
    else:
        wall = 0.0
    sends = sorted(r.sent_s for r in measured)
    span = sends[-1] - sends[0] if len(sends) > 1 else 0.0
    # An SLO figure that failed requests made infinite is written as None (JSON has no
    # infinity) and misses the SLO like any other.
    slo_values = {s.name: _finite(latency.level_value(measured, s, len(run.dropped)))
                  for s in slos}
    met = (all(v is not None and v <= s.limit_s for s, v in zip(slos, slo_values.values(),
                                                                  strict=True))
           if slos else None)
    lags = [r.sent_s - r.scheduled_s for r in measured if r.scheduled_s >= 0]
    send_lag = latency.percentile(lags, 99)
    client = run.client
    if send_lag is not None and send_lag > SEND_LAG_P99_LIMIT_S:
        behind = (f"sends {send_lag * 1000:.0f} ms behind the schedule (p99) > "
                  f"{SEND_LAG_P99_LIMIT_S * 1000:g} ms")
        client = dataclasses.replace(client, client_bound=True, reason="; ".join(
            filter(None, (client.reason, behind))))
    return LoadLevel(
        mode="rate" if rate is not None else "concurrency", requested_rate=rate,
        concurrency=streams, arrivals=profile.arrivals.name if rate is not None else None,
        seed=profile.seed, wall_s=round(wall, 6), sent=len(measured), warmup=warm,
        dropped=len(run.dropped), max_outstanding=run.max_in_flight,
        achieved_rate=round((len(sends) - 1) / span, 4) if span > 0 else None,
        send_lag_p99_s=_r(send_lag), slo_met=met, slo_values=slo_values,
        total=latency.figures(measured, wall, None, slos),
        replicas=tuple(latency.figures([r for r in measured if r.replica == i], wall,
                                       e.base_url, slos) for i, e in enumerate(endpoints))
        if len(endpoints) > 1 else (),
        client=client, server=run.server,
        samples=tuple(_sample(r) for r in spread(measured, MAX_SAMPLES)))


def spread(items: Sequence[Request], most: int) -> list[Request]:
    """At most ``most`` of ``items``, evenly over them, the first and the last included."""
    if len(items) <= most:
        return list(items)
    return [items[round(i * (len(items) - 1) / (most - 1))] for i in range(most)]


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def _sample(r: Request) -> dict[str, Any]:
    gaps, weight = r.itl()
    return {"index": r.index, "replica": r.replica,
            "scheduled_s": _r(r.scheduled_s) if r.scheduled_s >= 0 else None,
            "sent_s": _r(r.sent_s), "ttft_s": _r(r.ttft_s), "e2e_s": _r(r.e2e_s),
            "tpot_s": _r(r.tpot_s), "chunks": len(r.chunk_s),
            "itl_max_s": _r(max(gaps)) if gaps else None, "tokens_per_chunk": round(weight, 4),
            "prompt_tokens": r.prompt_tokens, "output_tokens": r.output_tokens,
            "token_source": r.token_source, "error": r.error, "timed_out": r.timed_out}


def sweep(level_at: Callable[[float], LoadLevel], start: float, slos: Sequence[Slo]
          ) -> tuple[list[LoadLevel], SweepResult]:
    """The highest rate meeting every SLO (``load_plan.find_max_rate``): every level that
    ran, in order, and the answer."""
    levels: list[LoadLevel] = []

    def meets(rate: float) -> bool:
        level = level_at(rate)
        levels.append(level)
        return bool(level.slo_met)

    best, failing, tried, reason = find_max_rate(meets, start)
    return levels, SweepResult(tuple(s.name for s in slos), start, SWEEP_STEP, best, failing,
                               tried, reason)
