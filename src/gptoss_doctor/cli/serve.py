"""``gptoss-doctor serve``: llama.cpp's own server on a chosen port with the doctor's plan."""

from __future__ import annotations

from pathlib import Path

import click

from gptoss_doctor.app import served
from gptoss_doctor.app.options import EngineFlags
from gptoss_doctor.cli import output


@click.command("serve")
@click.option("--model", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The GGUF file to serve (a split GGUF: its first shard).")
@click.option("--port", type=click.IntRange(min=1, max=65535), default=1234,
              show_default=True, help="Port on 127.0.0.1 (1234 is LM Studio's).")
@click.option("--ctx", "n_ctx", type=click.IntRange(min=512), default=None,
              help="Context per slot (default 16384).")
@click.option("--parallel", "n_parallel", type=click.IntRange(min=1), default=1,
              show_default=True, help="Slots: requests decoded together (continuous batching).")
@click.option("--threads", type=click.IntRange(min=1), default=None)
@click.option("--n-gpu-layers", type=int, default=None)
@click.option("--n-cpu-moe", type=click.IntRange(min=0), default=None)
def serve_command(model: Path, port: int, n_ctx: int | None, n_parallel: int,
                  threads: int | None, n_gpu_layers: int | None, n_cpu_moe: int | None) -> None:
    """Serve MODEL with llama.cpp's own server (xllamacpp), OpenAI-compatible, until Ctrl-C."""
    served.serve(model, port, n_ctx, n_parallel, EngineFlags(threads, n_gpu_layers, n_cpu_moe),
                 output.feedback())
