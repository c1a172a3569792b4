"""The ``synth`` service: a synthetic gpt-oss (random weights) as a GGUF or an MLX folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.bench import mlx_engine
from gptoss_doctor.bench.synth import SHAPES, weights_bytes, write_synthetic
from gptoss_doctor.errors import UsageError
from gptoss_doctor.files import check_target


@dataclass(frozen=True, slots=True)
class Synthesized:
    path: str
    shape: str
    seed: int
    size_bytes: int
    format: str  # "gguf" | "mlx"
    tensors: int | None = None
    quantization: str | None = None
    synthetic: bool = True


def gguf(shape: str, output: Path, seed: int, feedback: Feedback) -> Synthesized:
    """A GGUF of the real ``shape`` (tiny, 20b, 120b), written atomically."""
    if output.is_dir():
        raise UsageError(f"{output} is a folder; give the GGUF file to write",
                         f"e.g. -o {output / f'gpt-oss-{shape}-synthetic.gguf'}")
    check_target(output)
    with feedback.task(f"writing {shape}", weights_bytes(SHAPES[shape]), size=True) as task:
        result = write_synthetic(shape, output, seed,
                                 progress=lambda done, _total: task.update(completed=done))
    return Synthesized(str(result.path), result.shape, result.seed, result.size_bytes, "gguf",
                       tensors=result.n_tensors)


def mlx(shape: str, output: Path, seed: int, weights: str, feedback: Feedback) -> Synthesized:
    """A tiny MLX folder in mlx-lm's own gpt-oss architecture."""
    if shape != "tiny":
        raise UsageError(f"--mlx writes the tiny shape only, not {shape}")
    with feedback.task("writing the MLX folder"):
        info = mlx_engine.write_synthetic(output, seed, weights)
    return Synthesized(info.path, shape, seed, info.size_bytes, "mlx",
                       quantization=info.quantization or weights)
