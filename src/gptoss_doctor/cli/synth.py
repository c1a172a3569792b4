"""``gptoss-doctor synth``: write a synthetic gpt-oss GGUF or MLX folder (random weights)."""

from __future__ import annotations

from pathlib import Path

import click

from gptoss_doctor.app import synth
from gptoss_doctor.bench.synth import SHAPES
from gptoss_doctor.cli import output
from gptoss_doctor.serde import to_json


@click.command("synth")
@click.argument("shape", type=click.Choice(sorted(SHAPES)))
@click.option("-o", "--output", "destination", type=click.Path(path_type=Path), required=True,
              help="The GGUF file (with --mlx: the folder) to write.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Same seed, same bytes.")
@click.option("--mlx", "mlx_weights", type=click.Choice(["mxfp4", "float32"]), default=None,
              help="Write an MLX model folder instead (tiny only), with these weights.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def synth_command(shape: str, destination: Path, seed: int, mlx_weights: str | None,
                  as_json: bool) -> None:
    """Write a gpt-oss GGUF of the real SHAPE (tiny, 20b, 120b) with random weights.

    It runs at the real model's speed, so `bench` can measure a machine before 12 GB of
    weights are downloaded. The file is marked synthetic; its output is noise. With --mlx:
    a tiny MLX folder in mlx-lm's own gpt-oss architecture.
    """
    feedback = output.feedback()
    made = (synth.mlx(shape, destination, seed, mlx_weights, feedback) if mlx_weights
            else synth.gguf(shape, destination, seed, feedback))
    if as_json:
        output.echo_json({k: v for k, v in to_json(made).items() if v is not None})
        return
    what = (f"{made.size_bytes / 1024**2:.1f} MiB of {made.quantization} weights"
            if made.format == "mlx"
            else f"{made.size_bytes / 1024**3:.2f} GiB, {made.tensors} tensors")
    output.echo(f"wrote {made.path} ({what}, seed {made.seed}; synthetic random weights)")
