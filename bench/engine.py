"""The engine interface every in-process engine adapter implements.

An adapter (one module: ``bench/llama_engine.py``, ``bench/mlx_engine.py``) says which
models it owns, reads a model's facts without loading it, writes a synthetic model, loads
a model with one ``LoadSettings`` and hands back a ``Session``: the decode loop the speed
and tool suites drive, plus the facts a results file records. ``unsupported`` names the
command-line options the adapter cannot honour; the CLI refuses those in one place
(``gptoss_doctor.app.options``). Adapters are found by name in ``bench/engines.py``.

An engine without a token-level decode loop (llama.cpp's own server) offers ``Serving``
instead: it serves the model on loopback and the suites measure it over HTTP; services
ask ``serving(adapter)``, never the engine's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gptoss_doctor.bench.records import (
    EngineConfig,
    EngineExtras,
    FitDevice,
    MemoryFigures,
    ModelFacts,
    SoftwareFacts,
)
from gptoss_doctor.bench.smoke import SmokeResult
from gptoss_doctor.load_settings import LoadSettings

Progress = Callable[[int, int], None]  # (done, total)


class Session(Protocol):
    """A loaded model: the decode loop (the suites' ``Engine``) and its recorded facts."""

    n_ctx: int
    n_vocab: int
    on_gpu: bool
    warning: str | None

    def reset(self) -> None: ...

    def decode(self, tokens: Sequence[int]) -> None: ...

    def logits(self) -> Any: ...

    def argmax_next(self) -> int: ...

    def close(self) -> None: ...

    def config(self, settings_source: str) -> EngineConfig: ...

    def software(self, python: str | None, backends: Sequence[str]) -> SoftwareFacts: ...

    def memory(self, peak_rss_bytes: int, gpu_used_bytes: int | None) -> MemoryFigures: ...

    def extras(self) -> EngineExtras: ...

    def engine_reported(self, prompt: Sequence[int], n_gen: int) -> dict[str, Any] | None:
        """The engine's own figures for a chat generation, where it has them."""
        ...


class Adapter(Protocol):
    """One engine: what it can run and how it loads it."""

    name: str
    unsupported: tuple[str, ...]  # option names (``threads``, ``n_gpu_layers``, ...)
    synthetic_shapes: tuple[str, ...]
    own_settings: str | None  # where its settings come from when not from the doctor's plan

    def owns(self, path: Path) -> bool:
        """Whether ``--engine auto`` picks this engine for ``path``."""
        ...

    def read_model(self, path: Path, require_gpt_oss: bool) -> ModelFacts:
        """The model's facts from its files alone (no sha256 yet); one-line errors."""
        ...

    def content_files(self, path: Path) -> list[Path]:
        """The files whose sha256 identify the model."""
        ...

    def synthetic_path(self, shape: str, folder: Path) -> Path: ...

    def write_synthetic(self, shape: str, path: Path, progress: Progress) -> None: ...

    def gpu_offload(self) -> bool:
        """Whether the installed build can use a GPU."""
        ...

    def load(self, path: Path, settings: LoadSettings) -> Session: ...

    def model_path(self, files: Sequence[Path]) -> Path:
        """The path this engine loads, given the files an install placed."""
        ...

    def smoke_test(self, path: Path, settings: LoadSettings) -> SmokeResult:
        """Load ``path`` and answer one harmony question (after an install)."""
        ...


@dataclass(frozen=True, slots=True)
class Served:
    """A model served on loopback: the OpenAI-compatible base URL and what it runs."""

    url: str  # ends in /v1
    model_id: str
    settings: LoadSettings  # as loaded (per slot context in ``n_ctx``)
    n_parallel: int
    load_s: float
    fit: tuple[FitDevice, ...]  # llama.cpp's own breakdown per device
    fit_notes: tuple[str, ...]  # llama.cpp's fit verdict lines
    version: str | None


@runtime_checkable
class Serving(Protocol):
    """An engine that serves models instead of handing out a decode loop."""

    plan_engine: str  # whose load plan it runs (the doctor plans per engine)

    def serve(self, path: Path, settings: LoadSettings, n_parallel: int = 1,
              port: int = 0, parse_chat: bool = True) -> AbstractContextManager[Served]: ...


def serving(adapter: Adapter) -> Serving | None:
    """The adapter's serving capability, or None for a decode-loop engine."""
    return adapter if isinstance(adapter, Serving) else None
