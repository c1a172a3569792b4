"""Predicted generation speed from the memory-bandwidth roofline (an estimate, not a bench).

Generating one token reads every active weight once: the attention and router weights of
every layer, ``n_expert_used`` of ``n_expert`` experts per layer, and the output matrix.
Ceiling = bandwidth / bytes read per token. GPUs reach roughly half of it with llama.cpp
(``EFFICIENCY``; e.g. 120b on a DGX Spark's 273 GB/s), CPUs more (``CPU_EFFICIENCY``).
With expert offload the bytes are split between GPU and host memory, whose times add up. A CPU
with few cores is compute-bound before it is bandwidth-bound.

Calibration, measured on this project's 2-core CI machine (2026-11-25): llama-bench built
from the llama.cpp sources of llama-cpp-python 0.3.36, synthetic 20b, 2 threads, flash
attention, no mmap: tg32 16.39 +/- 0.53 tok/s (our suite: 16.42; README). That is 82% of the
assumed 51.2 GB/s ceiling, and 8.2 tok/s per core for 3.6 B active parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptoss_doctor.catalog import ModelShape
from gptoss_doctor.install.resources import Resources
from gptoss_doctor.types import VerdictStatus

EFFICIENCY = 0.5
CPU_EFFICIENCY = 0.8
CPU_TOKENS_PER_S_PER_CORE_AT_3_6B = 8.2
SLOW_TOKENS_PER_S = 10.0


@dataclass(frozen=True, slots=True)
class Rate:
    """Expected and ceiling tokens/s, and the figures they rest on."""

    expected: float | None
    ceiling: float | None
    basis: str


def predict(shape: ModelShape, res: Resources, *, placement: str, n_cpu_moe: int,
            cpu_cores: int | None = None) -> Rate:
    """Tokens/s for ``shape`` placed as ``placement`` on ``res``."""
    active = shape.active_bytes_per_token
    cpu_share = 0
    if placement == "expert-offload" and shape.n_expert:
        cpu_share = n_cpu_moe * shape.expert_bytes_per_layer * shape.n_expert_used // shape.n_expert
    if placement == "cpu":
        seconds = active / res.cpu_bandwidth.bytes_per_s
        basis = f"host memory, {res.cpu_bandwidth.source}"
    else:
        if res.gpu_bandwidth is None:
            return Rate(None, None, "GPU memory bandwidth unknown for this GPU")
        seconds = (active - cpu_share) / res.gpu_bandwidth.bytes_per_s
        basis = f"GPU memory, {res.gpu_bandwidth.source}"
        if cpu_share:
            seconds += cpu_share / res.cpu_bandwidth.bytes_per_s
            basis += f"; offloaded experts: host memory, {res.cpu_bandwidth.source}"
    ceiling = 1 / seconds
    expected = ceiling * (CPU_EFFICIENCY if placement == "cpu" else EFFICIENCY)
    if placement == "cpu" and cpu_cores:
        compute_cap = (cpu_cores * CPU_TOKENS_PER_S_PER_CORE_AT_3_6B
                       * 3.6e9 / max(shape.active_params, 1))
        if compute_cap < expected:
            expected = compute_cap
            basis += f"; capped by {cpu_cores} CPU cores (compute-bound)"
    bytes_gib = active / 1024**3
    return Rate(round(expected, 1), round(ceiling, 1),
                f"{bytes_gib:.2f} GiB read per token; {basis}")


def status(rate: Rate) -> VerdictStatus:
    """"slow" below reading speed, else "runs" (unknown speed counts as runs)."""
    if rate.expected is not None and rate.expected < SLOW_TOKENS_PER_S:
        return "slow"
    return "runs"
