"""``bench speed|tools`` on the MLX engine: an MLX model folder, or ``--synthetic tiny``.

The suites are the llama.cpp ones — the same random-token tests with warm-up and
repetitions and the same test names, the same harmony chat prompt, the same tool cases,
sampler and grader — so an MLX run and a llama.cpp run of one model compare side by side.
The results add what MLX has instead of llama.cpp's buffers: the prefill step size, Metal's
working set and the wired limit that was set, and mlx-lm's own peak memory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from gptoss_doctor.bench import harmony, mlx_engine, speed
from gptoss_doctor.bench.mlx_engine import MlxEngine, MlxModelInfo
from gptoss_doctor.errors import UsageError
from gptoss_doctor.install import verify
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.reports.bench_cmd import _asdict, _peak_rss_bytes, roofline
from gptoss_doctor.settings import current

SYNTHETIC_NAME = "gpt-oss-tiny-synthetic-seed0-mlx"
CATALOG_SHAPES = {(24, 32): "20b", (36, 128): "120b"}


def synthetic_model(shape: str, console: Console) -> Path:
    """The tiny synthetic MLX gpt-oss (written on first use, atomically)."""
    if shape != "tiny":
        raise UsageError(f"--synthetic {shape} --engine mlx: MLX synthetic models come in the "
                         "tiny shape only", "use --synthetic tiny, or llama.cpp for 20b/120b")
    path = current().models_dir / "synthetic" / SYNTHETIC_NAME
    if path.exists():
        return path
    with Progress(console=console, transient=True) as bar:
        bar.add_task("writing the synthetic MLX model", total=None)
        mlx_engine.write_synthetic(path)
    return path


def folder_sha256(info: MlxModelInfo, console: Console) -> str:
    """One digest for the folder: sha256 over each file's name and sha256 (cached)."""
    folder = Path(info.path)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    lines = []
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"sha256 {folder.name}", total=sum(p.stat().st_size for p in files))
        done = 0
        for path in files:
            def advance(n: int, base: int = done) -> None:
                bar.update(task, completed=base + n)

            digest = verify.cached_sha256(path, current().cache_dir / "hashes.json", advance)
            done += path.stat().st_size
            lines.append(f"{path.name} {digest}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def gpt_oss_key(info: MlxModelInfo) -> str | None:
    if not info.is_gpt_oss:
        return None
    if info.synthetic and info.n_layers == mlx_engine.TINY_CONFIG["num_hidden_layers"]:
        return "tiny"
    return CATALOG_SHAPES.get((info.n_layers or 0, info.n_experts or 0))


def load(path: Path, n_ctx: int, console: Console) -> tuple[MlxEngine, dict[str, Any]]:
    """(the engine, the results' model section); one-line errors for a bad folder."""
    info = mlx_engine.read_model_dir(path)
    digest = folder_sha256(info, console)
    console.print(f"loading {info.file_name} with MLX ({info.size_bytes / 1024**3:.2f} GiB"
                  f"{', synthetic random weights' if info.synthetic else ''})")
    engine = MlxEngine(path, n_ctx)
    if engine.warning:
        console.print(f"warning: {engine.warning}")
    return engine, {**_asdict(info), "sha256": digest, "format": "mlx",
                    "gpt_oss": gpt_oss_key(info)}


def software(snap: HardwareSnapshot, engine: MlxEngine) -> dict[str, Any]:
    found = mlx_engine.versions()
    return {"python": snap.os.python_version, "mlx": found["mlx"], "mlx_lm": found["mlx-lm"],
            "mlx_backend_package": found["mlx-metal"] or found["mlx-cpu"],
            "device_info": engine.device_info,
            "backends": ["Metal"] if engine.on_gpu else ["CPU"]}


def config(engine: MlxEngine, source: str) -> dict[str, Any]:
    """The engine settings a results file records (llama.cpp's knobs are null here)."""
    return {"engine": "mlx", "threads": None, "n_ctx": engine.n_ctx,
            "prefill_step_size": engine.prefill_step_size, "n_batch": None, "n_ubatch": None,
            "n_gpu_layers": None, "n_cpu_moe": None, "flash_attn": None, "swa_full": None,
            "use_mmap": None, "device": "gpu" if engine.on_gpu else "cpu",
            "working_set_bytes": mlx_engine.working_set_bytes(engine.device_info),
            "wired_limit_bytes": engine.wired_limit_bytes, "settings_source": source}


def memory(engine: MlxEngine) -> dict[str, Any]:
    return {"peak_rss_bytes": _peak_rss_bytes(), "gpu_used_by_model_bytes": None,
            "mlx_peak_memory_bytes": engine.peak_memory_bytes(),
            "gpu_note": "mlx's peak memory is the figure for unified memory"
            if engine.on_gpu else "MLX ran on the CPU"}


def chat(engine: MlxEngine, prompt: list[int], n_gen: int, reps: int) -> dict[str, Any]:
    """Our TTFT/generation method, plus mlx-lm's own stream_generate figures beside it."""
    result = _asdict(speed.run_chat(engine, prompt, n_gen, reps))
    if result["status"] == "ok":
        streamed = engine.stream(prompt, n_gen)
        result["engine_reported"] = {
            "by": "mlx_lm.stream_generate", "prompt_tps": round(streamed.prompt_tps, 4),
            "generation_tps": round(streamed.generation_tps, 4),
            "peak_memory_bytes": streamed.peak_memory_bytes,
            "stopped_on": streamed.stopped_on}
    return result


def speed_record_parts(snap: HardwareSnapshot, engine: MlxEngine, model: dict[str, Any],
                       tests: list[dict[str, Any]]) -> dict[str, Any]:
    return {"memory": memory(engine),
            "roofline": roofline(snap, model["gpt_oss"], model["size_bytes"], engine.on_gpu,
                                 tests)}


def chat_prompt_for(path: Path) -> list[int]:
    """The harmony chat prompt for a gpt-oss folder; none for other models."""
    return harmony.chat_prompt() if mlx_engine.read_model_dir(path).is_gpt_oss else []
