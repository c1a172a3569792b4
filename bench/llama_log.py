"""Parse the buffer sizes llama.cpp reports while loading a model.

llama.cpp logs, per backend buffer type, lines such as::

    load_tensors:   CPU_Mapped model buffer size =    92.10 MiB
    llama_kv_cache:        CPU KV buffer size =    45.00 MiB
    sched_reserve:        CPU compute buffer size =   102.51 MiB

``parse_load_log`` sums them by kind; the estimator's tests and (later) the engine adapter use
it to compare what we predicted with what llama.cpp actually allocated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(
    r"(?P<buffer>[A-Za-z0-9_]+)\s+(?P<kind>model|KV|compute|output)\s+buffer size\s*=\s*"
    r"(?P<size>[0-9.]+)\s*MiB")
MIB = 1024 * 1024


_OVERRIDE = re.compile(r"tensor (?P<name>\S+) \(.*?\) buffer type overridden to (?P<buft>\S+)")


def parse_overrides(text: str) -> dict[str, str]:
    """Tensor name -> buffer type, from llama.cpp's "buffer type overridden to" lines."""
    return {m["name"]: m["buft"] for m in _OVERRIDE.finditer(text)}


@dataclass(frozen=True, slots=True)
class LoadBuffers:
    """MiB per buffer kind, and per (kind, buffer type) for the detail."""

    model_mib: float = 0.0
    kv_mib: float = 0.0
    compute_mib: float = 0.0
    output_mib: float = 0.0
    by_buffer: dict[str, float] = field(default_factory=dict)


def parse_load_log(text: str) -> LoadBuffers:
    """Sum every ``... <kind> buffer size = N MiB`` line of a llama.cpp load log."""
    totals = {"model": 0.0, "KV": 0.0, "compute": 0.0, "output": 0.0}
    by_buffer: dict[str, float] = {}
    for match in _LINE.finditer(text):
        size = float(match["size"])
        totals[match["kind"]] += size
        key = f"{match['kind']}:{match['buffer']}"
        by_buffer[key] = by_buffer.get(key, 0.0) + size
    return LoadBuffers(totals["model"], totals["KV"], totals["compute"], totals["output"],
                       by_buffer)
