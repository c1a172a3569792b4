"""The engine registry: ``--engine NAME`` looks the adapter up here.

A new engine is one adapter module (implementing ``bench.engine.Adapter``) plus one line
in ``ENGINES``. Adapter modules import their engine library lazily, so looking an adapter
up never imports llama_cpp or mlx.
"""

from __future__ import annotations

from pathlib import Path

from gptoss_doctor.bench import llama_engine, mlx_adapter, xllamacpp_engine
from gptoss_doctor.bench.engine import Adapter
from gptoss_doctor.errors import UsageError

ENGINES: dict[str, Adapter] = {
    "llama.cpp": llama_engine.ADAPTER,
    "mlx": mlx_adapter.ADAPTER,
    "llama-server": xllamacpp_engine.ADAPTER,
}
AUTO = "auto"


def names() -> tuple[str, ...]:
    """The choices of ``--engine``: ``auto`` and every registered engine."""
    return (AUTO, *ENGINES)


def adapter(name: str, model: Path | None = None) -> Adapter:
    """The adapter called ``name``; for ``auto``, the first that owns ``model`` (a folder is
    an MLX model, a file a GGUF) or llama.cpp when there is no model path."""
    if name != AUTO:
        if name not in ENGINES:
            raise UsageError(f"unknown engine {name!r}: one of {', '.join(names())}")
        return ENGINES[name]
    if model is not None:
        for candidate in ENGINES.values():
            if candidate.owns(model):
                return candidate
    return ENGINES["llama.cpp"]
