"""``gptoss-doctor synth``: write a synthetic gpt-oss GGUF or MLX folder (random weights)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from gptoss_doctor.bench.synth import SHAPES, weights_bytes, write_synthetic
from gptoss_doctor.errors import UsageError


@click.command("synth")
@click.argument("shape", type=click.Choice(sorted(SHAPES)))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The GGUF file (with --mlx: the folder) to write.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Same seed, same bytes.")
@click.option("--mlx", "mlx_weights", type=click.Choice(["mxfp4", "float32"]), default=None,
              help="Write an MLX model folder instead (tiny only), with these weights.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def synth_command(shape: str, output: Path, seed: int, mlx_weights: str | None,
                  as_json: bool) -> None:
    """Write a gpt-oss GGUF of the real SHAPE (tiny, 20b, 120b) with random weights.

    It runs at the real model's speed, so `bench` can measure a machine before 12 GB of
    weights are downloaded. The file is marked synthetic; its output is noise. With --mlx:
    a tiny MLX folder in mlx-lm's own gpt-oss architecture.
    """
    if mlx_weights is not None:
        _synth_mlx(shape, output, seed, mlx_weights, as_json)
        return
    size = weights_bytes(SHAPES[shape])
    console = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"writing {shape}", total=size)
        result = write_synthetic(shape, output, seed,
                                 progress=lambda done, _total: bar.update(task, completed=done))
    if as_json:
        click.echo(json.dumps({"path": str(result.path), "shape": result.shape,
                               "seed": result.seed, "size_bytes": result.size_bytes,
                               "tensors": result.n_tensors, "synthetic": True}))
    else:
        click.echo(f"wrote {result.path} ({result.size_bytes / 1024**3:.2f} GiB, "
                   f"{result.n_tensors} tensors, seed {result.seed}; synthetic random weights)")


def _synth_mlx(shape: str, output: Path, seed: int, weights: str, as_json: bool) -> None:
    from gptoss_doctor.bench import mlx_engine

    if shape != "tiny":
        raise UsageError(f"--mlx writes the tiny shape only, not {shape}")
    with Progress(console=Console(stderr=True), transient=True) as bar:
        bar.add_task("writing the MLX folder", total=None)
        info = mlx_engine.write_synthetic(output, seed, weights)
    if as_json:
        click.echo(json.dumps({"path": info.path, "shape": shape, "seed": seed,
                               "size_bytes": info.size_bytes, "format": "mlx",
                               "quantization": info.quantization, "synthetic": True}))
    else:
        click.echo(f"wrote {info.path} ({info.size_bytes / 1024**2:.1f} MiB of "
                   f"{info.quantization or weights} weights, seed {seed}; synthetic random "
                   "weights)")

