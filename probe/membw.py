"""A short host-memory bandwidth measurement (at most about half a second; the doctor runs it
when the memory modules cannot be read and a plan uses host RAM, ``--no-measure-bandwidth``
never, ``--measure-bandwidth`` always).

Every thread copies its own slice of a buffer with numpy (which releases the GIL for the
copy), all threads at once, repeatedly until the time budget — the untimed first copy
included — is spent; the best repetition counts, and a copy moves its bytes twice (read
and write). Like llama.cpp's CPU kernels it streams memory from every core, so the rate is
used as what the CPU achieves — no further efficiency factor applies (``install.predict``).
The clock and the copy are injected so that tests can check the arithmetic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from gptoss_doctor.probe.dimm import HostBandwidth

MIB = 1024 * 1024
BUFFER_BYTES = 256 * MIB  # far beyond any CPU cache, small enough for any machine
BUDGET_S = 0.5  # the whole measurement, the first (untimed) copy included
MAX_REPS = 5


def _numpy_copy(pool: ThreadPoolExecutor, threads: int, size_bytes: int
                ) -> Callable[[], None]:
    """One parallel copy of ``size_bytes`` in ``threads`` slices, as a callable."""
    import numpy as np

    per = size_bytes // threads
    pairs = [(np.ones(per, dtype=np.uint8), np.empty(per, dtype=np.uint8))
             for _ in range(threads)]

    def copy() -> None:
        list(pool.map(lambda pair: np.copyto(pair[1], pair[0]), pairs))

    return copy


def measure(threads: int, *, size_bytes: int = BUFFER_BYTES, budget_s: float = BUDGET_S,
            copy: Callable[[], None] | None = None,
            clock: Callable[[], float] = time.perf_counter) -> HostBandwidth | None:
    """Best-of-N parallel copy rate (bytes read + written per second), or None."""
    threads = max(1, threads)
    if copy is not None:
        return _timed(copy, threads, size_bytes, budget_s, clock)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return _timed(_numpy_copy(pool, threads, size_bytes), threads, size_bytes, budget_s,
                      clock)


def _timed(run: Callable[[], None], threads: int, size_bytes: int, budget_s: float,
           clock: Callable[[], float]) -> HostBandwidth | None:
    start = clock()
    run()  # touch every page first
    best: float | None = None
    reps = 0
    while reps < MAX_REPS and (reps == 0 or clock() - start < budget_s):
        began = clock()
        run()
        took = clock() - began
        reps += 1
        if took > 0 and (best is None or took < best):
            best = took
    if best is None:
        return None
    return HostBandwidth(2 * size_bytes / best,
                         f"measured: {f'best of {reps} copies' if reps > 1 else 'one copy'} "
                         f"of {size_bytes // MIB} MiB on "
                         f"{threads} threads", measured=True)
