"""The load client watching itself over a level: event-loop lag and CPU share.

A ticker task wakes every ``LAG_TICK_S`` and records how late it woke (event-loop lag); the
process's CPU time over the level's wall time is its CPU share. Past ``LAG_P99_LIMIT_S``
(lag p99) or ``CPU_SHARE_LIMIT``, the level is client-bound: its latencies include the
client's own delays (``bench.load``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from gptoss_doctor.bench import latency
from gptoss_doctor.bench.records import ClientLoad

LAG_TICK_S = 0.01  # the lag ticker's period
LAG_P99_LIMIT_S = 0.02  # event-loop lag p99 past this: the level is client-bound
CPU_SHARE_LIMIT = 0.9  # this process's CPU share past this (of one core): client-bound


@dataclass(slots=True)
class Monitor:
    """Event-loop lag (a ticker task) and this process's CPU share over a level."""

    lags: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Monitor]:
        cpu, wall = time.process_time(), time.perf_counter()
        ticker = asyncio.create_task(self._tick())
        try:
            yield self
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self.cpu_s = time.process_time() - cpu
            self.wall_s = time.perf_counter() - wall

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_TICK_S
            await asyncio.sleep(LAG_TICK_S)
            self.lags.append(max(0.0, loop.time() - due))

    def verdict(self) -> ClientLoad:
        return client_load(self.lags, self.cpu_s, self.wall_s)


def client_load(lags: Sequence[float], cpu_s: float, wall_s: float) -> ClientLoad:
    """The client's own load, and whether it passed a threshold (the reason says which)."""
    p99 = latency.percentile(lags, 99)
    share = cpu_s / wall_s if wall_s > 0 else None
    reasons = []
    if p99 is not None and p99 > LAG_P99_LIMIT_S:
        reasons.append(f"event-loop lag p99 {p99 * 1000:.1f} ms > "
                       f"{LAG_P99_LIMIT_S * 1000:g} ms")
    if share is not None and share > CPU_SHARE_LIMIT:
        reasons.append(f"client CPU {share:.0%} of a core > {CPU_SHARE_LIMIT:.0%}")
    return ClientLoad(lag_p99_s=None if p99 is None else round(p99, 6),
                      lag_max_s=round(max(lags), 6) if lags else None,
                      cpu_share=None if share is None else round(share, 4),
                      client_bound=bool(reasons), reason="; ".join(reasons) or None)
