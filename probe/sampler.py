"""A background thread that reads power and conditions every ``interval_s`` while a
benchmark runs, on the same clock the benchmark times with.

``Sampler.sample()`` takes one reading now (tests drive it frame by frame over a replayed
trace, with no thread); ``start()``/``stop()`` run the thread and return the ``PowerTrace``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gptoss_doctor.probe.power import PowerSources, Tick, read_tick, unavailable

DEFAULT_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True)
class PowerTrace:
    """Every tick of one run, and what the machine could not tell."""

    ticks: tuple[Tick, ...]
    interval_s: float
    unavailable: tuple[str, ...]  # why a family of power sources gives nothing here
    processes_before: dict[int, tuple[str, float]] | None = None
    processes_after: dict[int, tuple[str, float]] | None = None
    self_pid: int = 0


class Sampler:
    """Collects ``Tick``s from ``sources``; never raises from the thread."""

    def __init__(self, sources: PowerSources, *, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.perf_counter,
                 self_pid: int | None = None) -> None:
        self.sources = sources
        self.interval_s = interval_s
        self.clock = clock
        self.self_pid = os.getpid() if self_pid is None else self_pid
        self.ticks: list[Tick] = []
        self._before: dict[int, tuple[str, float]] | None = None
        self._unavailable = unavailable(sources)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> Tick:
        tick = read_tick(self.sources, self.clock(), self.self_pid)
        self.ticks.append(tick)
        return tick

    def begin(self) -> None:
        """The first reading, and every process's CPU time so far."""
        self._before = self.sources.processes()
        self.sample()

    def start(self) -> None:
        """``begin()``, then a reading every ``interval_s`` on a thread until ``stop()``."""
        self.begin()
        self._thread = threading.Thread(target=self._loop, name="power-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # a reader bug must not end the benchmark
                return

    def stop(self) -> PowerTrace:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        return self.trace(self.sources.processes())

    def trace(self, processes_after: dict[int, tuple[str, float]] | None = None
              ) -> PowerTrace:
        return PowerTrace(tuple(self.ticks), self.interval_s, self._unavailable,
                          self._before, processes_after, self.self_pid)
