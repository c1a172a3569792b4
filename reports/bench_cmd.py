"""``gptoss-doctor bench speed``: llama-bench-comparable speed tests, TTFT and chat speed.

Composes the layers: the probe's snapshot and the plan's bandwidth figures, the engine and
suite from ``bench``, and a results file. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gptoss_doctor import __version__
from gptoss_doctor.bench import gguf_info, results, speed
from gptoss_doctor.bench.synth import SHAPES, write_synthetic
from gptoss_doctor.install import verify
from gptoss_doctor.install.catalog import CATALOG
from gptoss_doctor.install.plan import assess
from gptoss_doctor.install.resources import resources
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.nvml import parse_nvml_record, read_nvml
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.settings import current

CHAT_TOKENS = 64
CHAT_REPS = 3


@click.group("bench")
def bench_group() -> None:
    """Benchmarks whose results files can be published and compared."""


def _synthetic_model(shape: str, console: Console) -> Path:
    folder = current().models_dir / "synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"gpt-oss-{shape}-synthetic-seed0.gguf"
    if path.exists():
        return path  # written atomically, so an existing file is complete
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"writing synthetic {shape}", total=None)
        write_synthetic(shape, path, seed=0,
                        progress=lambda done, total: bar.update(task, completed=done,
                                                                total=total))
    return path


def _hash(path: Path, console: Console) -> str:
    """sha256 of the model, cached by (path, size, mtime) so a re-run does not re-read 12 GB."""
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"sha256 {path.name}", total=path.stat().st_size)
        return verify.cached_sha256(path, current().cache_dir / "hashes.json",
                                    lambda done: bar.update(task, completed=done))


def _gpt_oss_key(info: gguf_info.ModelInfo) -> str | None:
    """"20b"/"120b" when the file has that model's layout (real or synthetic)."""
    for entry in CATALOG:
        if info.is_gpt_oss and info.n_tensors == 3 + 19 * entry.shape.n_layer:
            return entry.key
    return None


def _planned(snap: HardwareSnapshot, info: gguf_info.ModelInfo, gpu_build: bool
             ) -> tuple[int, int, bool, str]:
    """(n_gpu_layers, n_cpu_moe, use_mmap, why) from the doctor's plan for this model."""
    key = _gpt_oss_key(info)
    verdict = assess(snap).verdict(key) if key else None
    if verdict is None or verdict.engine != "llama.cpp":
        layers = 99 if gpu_build else 0
        return layers, 0, layers > 0, "no plan for this model: all layers where the build can"
    on_gpu = verdict.load_settings.get("n_gpu_layers") == -1 and gpu_build
    n_cpu_moe = int(verdict.n_cpu_moe or 0) if on_gpu else 0
    use_mmap = bool(verdict.load_settings.get("use_mmap")) and on_gpu
    return (99 if on_gpu else 0), n_cpu_moe, use_mmap, f"the doctor's plan for gpt-oss-{key}"


def gpt_oss_key(info: gguf_info.ModelInfo) -> str | None:
    """"20b", "120b" or "tiny" (the synthetic test shape) for a gpt-oss GGUF, else None."""
    key = _gpt_oss_key(info)
    if key is None and info.is_gpt_oss and info.synthetic \
            and info.n_tensors == 3 + 19 * SHAPES["tiny"].n_layer:
        return "tiny"
    return key


def roofline(snap: HardwareSnapshot, key: str | None, size_bytes: int, on_gpu: bool,
             tests: list[dict[str, Any]]) -> dict[str, Any]:
    """Generation's bandwidth ceiling: bytes read per token (gpt-oss's active weights, else
    the whole file) over the memory bandwidth of where the weights sit."""
    res = resources(snap)
    shape = next((e.shape for e in CATALOG if e.key == key), None)
    per_token = shape.active_bytes_per_token if shape else size_bytes
    bandwidth = res.gpu_bandwidth if on_gpu and res.gpu_bandwidth else res.cpu_bandwidth
    ceiling = bandwidth.bytes_per_s / per_token
    percent = {t["name"]: round(100 * t["mean_ts"] / ceiling, 1)
               for t in tests if t["kind"] == "tg" and t["mean_ts"]}
    return {"bytes_per_token": per_token,
            "bytes_per_token_basis": "active gpt-oss weights" if shape else "whole file (dense)",
            "bandwidth_bytes_per_s": bandwidth.bytes_per_s, "bandwidth_source": bandwidth.source,
            "ceiling_tokens_per_s": round(ceiling, 2), "tg_percent_of_ceiling": percent}


def _gpu_used_bytes() -> int | None:
    """Memory in use on all NVIDIA GPUs right now (None without a readable NVIDIA GPU)."""
    gpus, _notes = parse_nvml_record(read_nvml())
    used = [g.vram_total_bytes - g.vram_free_bytes for g in gpus
            if g.vram_total_bytes is not None and g.vram_free_bytes is not None]
    return sum(used) if used else None


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # KiB on Linux


def _table(record: dict[str, Any]) -> Table:
    config = record["config"]
    where = (f"{config['threads']} threads" if config["engine"] != "mlx"
             else f"on the {config['device']}")
    table = Table(title=f"{record['model']['file_name']} — {config['engine']}, {where}")
    for column in ("test", "t/s", "samples", "status"):
        table.add_column(column)
    for test in record["tests"]:
        rate = (f"{test['mean_ts']:.2f} ± {test['stddev_ts']:.2f}" if test["mean_ts"] is not None
                else "—")
        samples = ", ".join(f"{s:.2f}" for s in test["samples_ts"])
        table.add_row(test["name"], rate, samples, test["status"] + (
            f": {test['reason']}" if test["reason"] else ""))
    return table


def given_flags(**options: Any) -> list[str]:
    """``--flag`` names of the options that were given (not None): what a run that cannot
    use them must refuse rather than ignore."""
    return [f"--{name.replace('_', '-')}" for name, value in options.items() if value is not None]


def engine_option(function: Any) -> Any:
    return click.option("--engine", "engine_name", type=click.Choice(["auto", "llama.cpp", "mlx"]),
                        default="auto", show_default=True,
                        help="auto: MLX for a model folder, llama.cpp for a GGUF file; with "
                        "--synthetic, llama.cpp unless mlx is named.")(function)


def endpoint_options(function: Any) -> Any:
    """``--endpoint URL --api-key-env VAR --timeout S``, shared by speed and tools."""
    function = click.option("--api-key-env", metavar="VAR", default=None,
                            help="With --endpoint: the environment variable holding the API "
                            "key (default for LM Studio on :1234: LM_API_TOKEN when set). "
                            "The key is never printed or stored.")(function)
    return click.option("--endpoint", "endpoint_url", metavar="URL", default=None,
                        help="Benchmark an OpenAI-compatible server instead, e.g. "
                        "http://127.0.0.1:1234/v1 (LM Studio, Ollama, llama-server, vLLM); "
                        "--model then names the served model.")(function)


@bench_group.command("speed")
@click.option("--model", "model_arg", metavar="PATH|NAME",
              help="A GGUF file to measure (with --endpoint: the served model's name).")
@click.option("--synthetic", type=click.Choice(sorted(SHAPES)),
              help="Measure a synthetic gpt-oss of this shape (written on first use).")
@engine_option
@click.option("--reps", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--tests", "tests_text", default=None, help="e.g. pp512,tg128 (default).")
@click.option("--depths", default=None, help="Comma-separated KV depths, e.g. 0,4096.")
@click.option("--protocol", type=click.Choice(sorted(speed.PROTOCOLS)), default=None,
              help="ggml: pp2048 and tg32 at depths 0..32768, as ggml-org publishes.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads (default: physical cores, like llama-bench).")
@click.option("--n-gpu-layers", type=int, default=None,
              help="Layers to offload (default: the doctor's plan).")
@click.option("--n-cpu-moe", type=click.IntRange(min=0), default=None,
              help="Keep the experts of the first N layers on the CPU (default: the plan).")
@click.option("--chat/--no-chat", default=True, show_default=True,
              help="Also measure TTFT and generation through a harmony prompt (gpt-oss).")
@endpoint_options
@click.option("--concurrency", default="1", show_default=True,
              help="With --endpoint: parallel streams per level, e.g. 1,2,4,8.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=120.0, show_default=True, help="With --endpoint: seconds per request.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Results file (default: gptoss-bench-speed-<time>.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the results record as JSON.")
def speed_command(model_arg: str | None, synthetic: str | None, engine_name: str, reps: int,
                  tests_text: str | None, depths: str | None, protocol: str | None,
                  threads: int | None, n_gpu_layers: int | None, n_cpu_moe: int | None,
                  chat: bool, endpoint_url: str | None, api_key_env: str | None,
                  concurrency: str, timeout_s: float,
                  output: Path | None, as_json: bool) -> None:
    """Speed tests named and measured like llama-bench, plus TTFT and chat speed.

    With --endpoint: the same shapes over streamed Chat Completions (TTFT, decode tok/s,
    end-to-end latency) at each --concurrency level.
    """
    if endpoint_url is not None:
        from gptoss_doctor.reports import endpoint_cmd

        if synthetic or protocol or depths:
            raise click.UsageError("--synthetic, --protocol and --depths are for in-process "
                                   "runs; an endpoint serves its own model")
        endpoint_cmd.check_no_local_options(threads=threads, n_gpu_layers=n_gpu_layers,
                                            n_cpu_moe=n_cpu_moe,
                                            engine=None if engine_name == "auto" else engine_name)
        endpoint_cmd.speed(endpoint_url, model_arg, api_key_env, timeout_s,
                           speed.parse_tests(tests_text or "pp512,tg128"), reps, concurrency,
                           _target("speed", output), as_json)
        return
    if api_key_env or concurrency != "1":
        raise click.UsageError("--api-key-env and --concurrency need --endpoint URL")
    model_path = Path(model_arg) if model_arg else None
    if (model_path is None) == (synthetic is None):
        raise click.UsageError("give exactly one of --model PATH or --synthetic SHAPE")
    if protocol and (tests_text or depths):
        raise click.UsageError("--protocol sets the tests and depths; drop --tests/--depths")
    try:
        depth_list = tuple(int(d) for d in depths.split(",")) if depths else (0,)
    except ValueError:
        raise click.UsageError(f"bad --depths {depths!r}: use numbers like 0,4096") from None
    tests = (speed.protocol_tests(protocol) if protocol
             else speed.parse_tests(tests_text or "pp512,tg128", depth_list))
    target = _target("speed", output)
    err = Console(stderr=True)
    if engine_choice(engine_name, model_path) == "mlx":
        _speed_mlx(model_path, synthetic, tests, reps, chat, protocol, target, as_json, err,
                   threads=threads, n_gpu_layers=n_gpu_layers, n_cpu_moe=n_cpu_moe)
        return
    path = _synthetic_model(synthetic, err) if synthetic else model_path
    assert path is not None
    info = gguf_info.read_info(path, require_gpt_oss=synthetic is not None)
    snap = take_snapshot()
    digest = _hash(path, err)

    from gptoss_doctor.bench import harmony
    from gptoss_doctor.bench.llama_engine import LlamaEngine, LlamaSettings, build_info

    build = build_info()
    planned_layers, planned_moe, use_mmap, settings_source = _planned(
        snap, info, bool(build["gpu_offload"]))
    layers = n_gpu_layers if n_gpu_layers is not None else planned_layers
    moe = n_cpu_moe if n_cpu_moe is not None else planned_moe
    prompt = harmony.chat_prompt() if chat and info.is_gpt_oss else []
    settings = LlamaSettings(n_ctx=_ctx_for(tests, prompt), n_threads=threads
                             or snap.cpu.cores_physical or snap.cpu.cores_logical,
                             n_gpu_layers=layers, n_cpu_moe=moe, use_mmap=use_mmap)
    err.print(f"loading {path.name} ({info.size_bytes / 1024**3:.2f} GiB"
              f"{', synthetic random weights' if info.synthetic else ''})")
    gpu_before = _gpu_used_bytes()
    engine = LlamaEngine(path, settings)
    gpu_after = _gpu_used_bytes()
    try:
        outcomes, chat_result, interrupted = _run_speed(
            engine, tests, reps, chat, prompt, info.architecture, err,
            lambda: _asdict(speed.run_chat(engine, prompt, CHAT_TOKENS, CHAT_REPS)))
    finally:
        engine.close()
    test_dicts = [_asdict(t) for t in outcomes]
    record: dict[str, Any] = {
        **envelope("speed", interrupted, snap, llama_software(snap, build),
                   llama_model(info, digest)),
        "config": {"engine": "llama.cpp", "threads": engine.threads, "reps": reps,
                   "n_ctx": settings.n_ctx, "n_batch": settings.n_batch,
                   "n_ubatch": settings.n_ubatch, "n_gpu_layers": layers,
                   "flash_attn": settings.flash_attn, "swa_full": settings.swa_full,
                   "use_mmap": settings.use_mmap, "n_cpu_moe": settings.n_cpu_moe,
                   "settings_source": settings_source, "seed": 0, "protocol": protocol},
        "load_buffers": _asdict(engine.buffers),
        "overridden_tensors": engine.overridden_tensors,
        "tests": test_dicts,
        "chat": chat_result,
        "memory": {"peak_rss_bytes": _peak_rss_bytes(),
                   "gpu_used_by_model_bytes": (gpu_after - gpu_before
                                               if gpu_after is not None
                                               and gpu_before is not None else None),
                   "gpu_note": None if gpu_after is not None
                   else "no NVIDIA GPU readable through NVML"},
        "roofline": roofline(snap, gpt_oss_key(info), info.size_bytes, layers > 0, test_dicts),
    }
    _emit_speed(record, target, as_json, interrupted)


def engine_choice(engine: str, model_path: Path | None) -> str:
    """``--engine auto``: a folder is an MLX model, a file a GGUF."""
    if engine != "auto":
        return engine
    return "mlx" if model_path is not None and model_path.is_dir() else "llama.cpp"


def _ctx_for(tests: tuple[speed.SpeedTest, ...], prompt: list[int]) -> int:
    n_ctx = max([t.depth + t.n_tokens for t in tests] + [len(prompt) + CHAT_TOKENS])
    return -(-n_ctx // 256) * 256


def _run_speed(engine: Any, tests: tuple[speed.SpeedTest, ...], reps: int, chat: bool,
               prompt: list[int], architecture: str, err: Console,
               run_chat: Callable[[], dict[str, Any]]
               ) -> tuple[tuple[speed.TestResult, ...], dict[str, Any], bool]:
    """The suite with a progress bar, then the chat measurement (or why it was skipped)."""
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("warming up", total=len(tests) * reps)

        def advance(name: str, rep: int, total: int) -> None:
            bar.update(task, description=f"{name} ({rep + 1}/{total})",
                       completed=tests.index(next(t for t in tests if t.name == name))
                       * total + rep)

        outcomes, interrupted = speed.run_suite(engine, tests, reps, progress=advance)
    chat_result: dict[str, Any]
    if not chat:
        chat_result = {"status": "skipped", "reason": "--no-chat"}
    elif not prompt:
        chat_result = {"status": "skipped",
                       "reason": f"{architecture} model: the harmony prompt is gpt-oss's"}
    elif interrupted:
        chat_result = {"status": "skipped", "reason": "stopped by Ctrl-C"}
    else:
        err.print("chat: TTFT and generation through a harmony prompt")
        chat_result = run_chat()
        interrupted = chat_result["status"] == "interrupted"
    return outcomes, chat_result, interrupted


def _speed_mlx(model_path: Path | None, synthetic: str | None,
               tests: tuple[speed.SpeedTest, ...], reps: int, chat: bool,
               protocol: str | None, target: Path, as_json: bool, err: Console,
               **llama_only: Any) -> None:
    from gptoss_doctor.reports import mlx_cmd

    named = given_flags(**llama_only)
    if named:
        raise click.UsageError(f"{', '.join(named)}: llama.cpp settings; MLX has none")
    path = mlx_cmd.synthetic_model(synthetic, err) if synthetic else model_path
    assert path is not None
    snap = take_snapshot()
    prompt = mlx_cmd.chat_prompt_for(path) if chat else []
    engine, model = mlx_cmd.load(path, _ctx_for(tests, prompt), err)
    try:
        outcomes, chat_result, interrupted = _run_speed(
            engine, tests, reps, chat, prompt, model["architecture"], err,
            lambda: mlx_cmd.chat(engine, prompt, CHAT_TOKENS, CHAT_REPS))
        test_dicts = [_asdict(t) for t in outcomes]
        record: dict[str, Any] = {
            **envelope("speed", interrupted, snap, mlx_cmd.software(snap, engine), model),
            "config": {**mlx_cmd.config(engine, "MLX defaults (mlx-lm's prefill step)"),
                       "reps": reps, "seed": 0, "protocol": protocol},
            "tests": test_dicts, "chat": chat_result,
            **mlx_cmd.speed_record_parts(snap, engine, model, test_dicts)}
    finally:
        engine.close()
    _emit_speed(record, target, as_json, interrupted)


def _emit_speed(record: dict[str, Any], target: Path, as_json: bool,
                interrupted: bool) -> None:
    record["key_properties"] = results.key_properties(record)
    results.save(record, target)
    chat_result = record["chat"]
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        Console(highlight=False).print(_table(record))
        if chat_result.get("ttft_mean_s") is not None:
            click.echo(f"chat (harmony prompt, {chat_result['prompt_tokens']} tokens): TTFT "
                       f"{chat_result['ttft_mean_s']:.3f} s, generation "
                       f"{chat_result['generation_mean_ts']:.2f} t/s")
        click.echo(f"results: {target}")
    if interrupted:
        Console(stderr=True).print("interrupted: finished tests were kept")
        sys.exit(130)


def _target(suite: str, output: Path | None) -> Path:
    """The results file to write (default: gptoss-bench-<suite>-<time>.json here)."""
    target = output or Path(f"gptoss-bench-{suite}-{dt.datetime.now():%Y%m%d-%H%M%S}.json")
    if not target.resolve().parent.is_dir():
        raise click.UsageError(f"folder {target.parent} does not exist")
    return target


def envelope(suite: str, interrupted: bool, snap: HardwareSnapshot, software: dict[str, Any],
             model: dict[str, Any]) -> dict[str, Any]:
    """What every suite's results record starts with: the run, machine, software, model."""
    return {
        "kind": results.RESULTS_KIND, "schema_version": results.SCHEMA_VERSION,
        "tool_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "suite": suite, "status": "interrupted" if interrupted else "complete",
        "machine": to_dict(snap), "software": software, "model": model,
    }


def llama_software(snap: HardwareSnapshot, build: dict[str, Any]) -> dict[str, Any]:
    return {"python": snap.os.python_version, **build,
            "backends": list(snap.software.llama_cpp.backends)
            if snap.software.llama_cpp else []}


def llama_model(info: gguf_info.ModelInfo, digest: str) -> dict[str, Any]:
    return {**_asdict(info), "sha256": digest, "format": "gguf", "gpt_oss": gpt_oss_key(info)}


def _asdict(value: Any) -> dict[str, Any]:
    import dataclasses

    converted: dict[str, Any] = dataclasses.asdict(value)
    return converted
