"""The MLX engine adapter: MLX model folders through ``bench/mlx_engine.py``.

What a results file records of an MLX run: the prefill step size, the device, Metal's
working set and the wired limit that was set, mlx's peak memory and mlx-lm's own
``stream_generate`` rates beside the suite's measurement. llama.cpp's knobs (threads, GPU
layers, expert offload) do not exist here, so the adapter declares them unsupported.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gptoss_doctor import catalog
from gptoss_doctor.bench import harmony, mlx_engine, smoke
from gptoss_doctor.bench.engine import Progress
from gptoss_doctor.bench.records import (
    EngineConfig,
    EngineExtras,
    MemoryFigures,
    ModelFacts,
    SoftwareFacts,
)
from gptoss_doctor.bench.smoke import SmokeResult
from gptoss_doctor.errors import UsageError
from gptoss_doctor.load_settings import LoadSettings

SYNTHETIC_NAME = "gpt-oss-tiny-synthetic-seed0-mlx"


class MlxSession(mlx_engine.MlxEngine):
    """A loaded MLX model with the facts results record."""

    def config(self, settings_source: str) -> EngineConfig:
        return EngineConfig(engine="mlx", settings_source=settings_source, n_ctx=self.n_ctx,
                            prefill_step_size=self.prefill_step_size,
                            device="gpu" if self.on_gpu else "cpu",
                            working_set_bytes=mlx_engine.working_set_bytes(self.device_info),
                            wired_limit_bytes=self.wired_limit_bytes)

    def software(self, python: str | None, backends: Sequence[str]) -> SoftwareFacts:
        found = mlx_engine.versions()
        return SoftwareFacts(python=python, backends=("Metal",) if self.on_gpu else ("CPU",),
                             mlx=found["mlx"], mlx_lm=found["mlx-lm"],
                             mlx_backend_package=found["mlx-metal"] or found["mlx-cpu"],
                             device_info=dict(self.device_info))

    def memory(self, peak_rss_bytes: int, gpu_used_bytes: int | None) -> MemoryFigures:
        return MemoryFigures(peak_rss_bytes, None,
                             "mlx's peak memory is the figure for unified memory"
                             if self.on_gpu else "MLX ran on the CPU",
                             self.peak_memory_bytes())

    def extras(self) -> EngineExtras:
        return EngineExtras()

    def engine_reported(self, prompt: Sequence[int], n_gen: int) -> dict[str, Any] | None:
        streamed = self.stream(prompt, n_gen)
        return {"by": "mlx_lm.stream_generate", "prompt_tps": round(streamed.prompt_tps, 4),
                "generation_tps": round(streamed.generation_tps, 4),
                "peak_memory_bytes": streamed.peak_memory_bytes,
                "stopped_on": streamed.stopped_on}


class MlxAdapter:
    """Apple's MLX through mlx-lm: model folders."""

    name = "mlx"
    unsupported: tuple[str, ...] = ("threads", "n_gpu_layers", "n_cpu_moe")
    synthetic_shapes: tuple[str, ...] = ("tiny",)
    own_settings: str | None = "MLX defaults (mlx-lm's prefill step)"

    def owns(self, path: Path) -> bool:
        return path.is_dir()

    def read_model(self, path: Path, require_gpt_oss: bool) -> ModelFacts:
        info = mlx_engine.read_model_dir(path)
        if require_gpt_oss and not info.is_gpt_oss:
            raise UsageError(f"{path.name} is not a gpt-oss model: the tool suite speaks "
                             "harmony")
        key = catalog.identify(info.n_layers, info.n_experts, info.synthetic) \
            if info.is_gpt_oss else None
        return ModelFacts(**dataclasses.asdict(info), format="mlx", gpt_oss=key)

    def content_files(self, path: Path) -> list[Path]:
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))

    def synthetic_path(self, shape: str, folder: Path) -> Path:
        return folder / SYNTHETIC_NAME

    def write_synthetic(self, shape: str, path: Path, progress: Progress) -> None:
        mlx_engine.write_synthetic(path)

    def gpu_offload(self) -> bool:
        return True  # Metal where mlx runs on Apple silicon; the session says which

    def load(self, path: Path, settings: LoadSettings) -> MlxSession:
        return MlxSession(path, settings.n_ctx)

    def model_path(self, files: Sequence[Path]) -> Path:
        return files[0].parent  # an MLX model is its folder

    def smoke_test(self, path: Path, settings: LoadSettings) -> SmokeResult:
        """The folder loads and answers a harmony prompt through mlx-lm's stream_generate."""
        started = time.perf_counter()
        session = self.load(path, settings)
        loaded = time.perf_counter()
        try:
            prompt = harmony.chat_prompt(smoke.QUESTION)
            streamed = session.stream(prompt, smoke.SMOKE_TOKENS)
        finally:
            session.close()
        generated = [t for t in streamed.tokens if t not in harmony.stop_tokens()]
        return SmokeResult(loaded - started, len(prompt), len(generated),
                           streamed.generation_tps, streamed.stopped_on,
                           harmony.decode(generated))


ADAPTER = MlxAdapter()
