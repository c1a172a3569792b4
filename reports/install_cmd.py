"""``gptoss-doctor install``: the right engine build, verified weights, a smoke test, a recipe.

Order of work: probe and plan (read-only: the Hub's metadata, hashes of copies already on
disk), show the plan, ask (unless ``--yes``), then build/install the engine, download or
resume the files, smoke-test the model and write the recipe. ``--dry-run`` stops after the
plan. Progress goes to stderr; ``--json`` prints one envelope on stdout.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from gptoss_doctor.errors import DoctorError, UsageError
from gptoss_doctor.install import download, execute, hub, verify
from gptoss_doctor.install.catalog import CATALOG, ModelEntry
from gptoss_doctor.install.install_plan import InstallPlan, plan_install
from gptoss_doctor.install.plan import assess
from gptoss_doctor.install.recipe import build_recipe, write_recipe
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.settings import Settings, current

GIB = 1024**3
SMOKE_CTX = 4096  # the smoke test needs a short context, not the planned 131k


def _choose(snap: HardwareSnapshot, model: str, engine: str) -> tuple[ModelEntry, Any]:
    assessment = assess(snap, engine=engine)
    if model == "auto":
        fast = [v for v in assessment.verdicts if v.status == "runs"]
        runnable = fast or [v for v in assessment.verdicts if v.can_run]
        key = runnable[-1].key if runnable else "20b"
    else:
        key = model
    return next(e for e in CATALOG if e.key == key), assessment.verdict(key)


def _repo_and_files(entry: ModelEntry, engine: str | None) -> tuple[str, tuple[str, ...] | None]:
    if engine == "mlx":
        return entry.mlx_repo, None  # every file of the MLX repository
    return entry.gguf_repo, entry.gguf_files


def _candidates(remote: hub.RemoteFile, settings: Settings, model_path: Path | None,
                snap: HardwareSnapshot, single_file: bool) -> list[tuple[Path, str]]:
    """Places a copy of ``remote`` may already be, best first."""
    found: list[tuple[Path, str]] = []
    if model_path is not None:
        found.append((model_path if model_path.is_file() and single_file
                      else model_path / remote.path, "model-path"))
    found.append((_target_dir(settings, remote.repo) / remote.path, "models-dir"))
    cached = hub.cached_file(remote.repo, remote.path, settings.hf_home / "hub")
    if cached is not None:
        found.append((cached, "hf-cache"))
    if single_file:
        found.extend((Path(w.path), "lmstudio") for w in snap.software.weights
                     if w.location == "lmstudio" and w.format == "gguf" and w.complete)
    return found


def _target_dir(settings: Settings, repo: str) -> Path:
    return settings.models_dir / repo.replace("/", "--")


def _verified_local(remote_files: tuple[hub.RemoteFile, ...], settings: Settings,
                    model_path: Path | None, snap: HardwareSnapshot,
                    console: Console) -> dict[str, tuple[str, str]]:
    """Copies on disk whose size and sha256 match the Hub's (hashes are cached)."""
    local: dict[str, tuple[str, str]] = {}
    hash_cache = settings.cache_dir / "hashes.json"
    for remote in remote_files:
        for path, source in _candidates(remote, settings, model_path, snap,
                                        len(remote_files) == 1):
            if not path.is_file() or path.stat().st_size != remote.size_bytes:
                continue
            if remote.sha256 is None:
                if remote.git_sha1 and download.git_blob_sha1(path.read_bytes()) \
                        != remote.git_sha1:
                    continue  # a small file: checked by its git object id
                local[remote.path] = (str(path), source)
                break
            with _bar(console, f"verifying {path.name}", remote.size_bytes) as (bar, task):
                digest = verify.cached_sha256(path, hash_cache,
                                              lambda done: bar.update(task, completed=done))
            if digest == remote.sha256:
                local[remote.path] = (str(path), source)
                break
            console.print(f"[yellow]![/] {escape(str(path))} does not match the Hub's "
                          "sha256; not reused")
    return local


class _bar:
    """A transient download-style progress bar on stderr, as ``(bar, task)``."""

    def __init__(self, console: Console, label: str, total: int) -> None:
        self.progress = Progress("[progress.description]{task.description}", BarColumn(),
                                 DownloadColumn(), TimeRemainingColumn(), console=console,
                                 transient=True)
        self.label, self.total = label, total

    def __enter__(self) -> tuple[Progress, Any]:
        self.progress.start()
        return self.progress, self.progress.add_task(self.label, total=self.total)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _plan_lines(plan: InstallPlan) -> list[str]:
    engine = plan.engine
    lines = [f"Install plan for {plan.model}",
             f"  engine: {engine.engine} ({engine.backend}) — {engine.action}"]
    lines += [f"    • {reason}" for reason in engine.reasons]
    if engine.command:
        env = " ".join(f"{k}={v!r}" for k, v in engine.env)
        lines.append(f"    $ {env + ' ' if env else ''}{' '.join(engine.command)}")
    for step in plan.files:
        what = {"reuse": f"reuse ({step.source})", "resume": "resume download",
                "download": "download"}[step.action]
        lines.append(f"  {step.path}: {step.size_bytes / GIB:.2f} GiB, {what} -> "
                     f"{step.local_path}")
    lines.append(f"  to download: {plan.bytes_to_download / GIB:.2f} GiB; already on disk: "
                 f"{plan.bytes_present / GIB:.2f} GiB")
    if plan.disk_free_after_bytes is not None:
        lines.append(f"  disk free after: {plan.disk_free_after_bytes / GIB:.1f} GiB")
    settings = ", ".join(f"{k}={v}" for k, v in plan.verdict.load_settings.items())
    lines.append(f"  settings: {settings}")
    lines += [f"  ✗ {problem}" for problem in plan.problems]
    return lines


def _smoke(plan: InstallPlan, files: list[Path]) -> dict[str, Any]:
    from gptoss_doctor.bench.gguf_info import read_info
    from gptoss_doctor.bench.llama_engine import LlamaSettings
    from gptoss_doctor.bench.smoke import smoke_test

    settings = plan.verdict.load_settings
    on_gpu = settings.get("n_gpu_layers") == -1
    planned_ctx = settings.get("n_ctx", SMOKE_CTX)
    result = smoke_test(files[0], LlamaSettings(
        n_ctx=min(planned_ctx if isinstance(planned_ctx, int) else SMOKE_CTX, SMOKE_CTX),
        n_gpu_layers=99 if on_gpu
        else 0, n_cpu_moe=int(plan.verdict.n_cpu_moe or 0), use_mmap=bool(
            settings.get("use_mmap", False))), gpt_oss=read_info(files[0]).is_gpt_oss)
    return dataclasses.asdict(result)


def _smoke_mlx(files: list[Path]) -> dict[str, Any]:
    """The MLX folder loads and answers a harmony prompt through mlx-lm's stream_generate."""
    import time

    from gptoss_doctor.bench import harmony
    from gptoss_doctor.bench.mlx_engine import MlxEngine
    from gptoss_doctor.bench.smoke import QUESTION, SMOKE_TOKENS

    started = time.perf_counter()
    engine = MlxEngine(files[0].parent, n_ctx=SMOKE_CTX)
    loaded = time.perf_counter()
    try:
        prompt = harmony.chat_prompt(QUESTION)
        streamed = engine.stream(prompt, SMOKE_TOKENS)
    finally:
        engine.close()
    generated = [t for t in streamed.tokens if t not in harmony.stop_tokens()]
    return {"load_s": loaded - started, "prompt_tokens": len(prompt),
            "generated_tokens": len(generated), "tokens_per_s": streamed.generation_tps,
            "stopped_on": streamed.stopped_on, "text": harmony.decode(generated)}


@click.command("install")
@click.option("--model", type=click.Choice(["auto", "20b", "120b"]), default="auto",
              show_default=True)
@click.option("--engine", type=click.Choice(["auto", "llama.cpp", "mlx"]), default="auto",
              show_default=True)
@click.option("--models-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where to put the weights (default: ~/.cache/gptoss-doctor/models).")
@click.option("--model-path", type=click.Path(path_type=Path, exists=True),
              help="Weights you already have (a file or a folder); verified, then reused.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and result as JSON.")
def install_command(model: str, engine: str, models_dir: Path | None, model_path: Path | None,
                    dry_run: bool, yes: bool, as_json: bool) -> None:
    """Install gpt-oss: the engine built for this machine, verified weights, a smoke test."""
    settings = current()
    if models_dir is not None:
        settings = dataclasses.replace(settings, models_dir=models_dir.resolve())
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    snap = take_snapshot(settings=settings)
    entry, verdict = _choose(snap, model, engine)
    if not verdict.can_run:
        raise DoctorError(f"{verdict.model} does not fit this machine: {verdict.reasons[0]}",
                          verdict.fixes[0] if verdict.fixes else "run `gptoss-doctor`")
    repo, wanted = _repo_and_files(entry, verdict.engine)
    if settings.hf_offline:
        remote = _offline_files(entry, repo, wanted, settings, model_path)
    else:
        remote = hub.remote_files(repo, wanted, endpoint=settings.hf_endpoint)
    local = _verified_local(remote, settings, model_path, snap, err)
    partial_dir = settings.models_dir / ".partial"
    partial = {r.path: download.partial_path(partial_dir, r.sha256).stat().st_size
               for r in remote if r.sha256 and r.path not in local
               and download.partial_path(partial_dir, r.sha256).exists()}
    plan = plan_install(snap, entry, verdict, remote, local, partial,
                        str(_target_dir(settings, repo)))
    envelope: dict[str, Any] = {"kind": "gptoss-doctor/install", "schema_version": 1,
                                "plan": dataclasses.asdict(plan)}
    if not as_json or not plan.ready:
        for line in _plan_lines(plan):
            err.print(escape(line))
    if not plan.ready:
        if as_json:
            click.echo(json.dumps(envelope, indent=2))
        raise click.exceptions.Exit(1)
    if dry_run:
        if as_json:
            click.echo(json.dumps(envelope, indent=2))
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to confirm on", "add --yes to install without asking")
        click.confirm("Proceed?", default=True, abort=True, err=True)
    log = execute.run_engine_step(plan.engine, settings.cache_dir / "logs")
    with _bar(err, "downloading", max(plan.bytes_to_download, 1)) as (bar, task):
        base = {s.path: s.present_bytes for s in plan.files}
        done_by_file: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            done_by_file[name] = done - base[name]
            bar.update(task, completed=sum(done_by_file.values()))

        files = execute.fetch_files(plan, settings.hf_endpoint, partial_dir,
                                    settings.cache_dir / "hashes.json", progress)
    smoke = _smoke(plan, files) if plan.engine.engine == "llama.cpp" else _smoke_mlx(files)
    recipe_path = settings.models_dir / "recipes" / f"{plan.model}.json"
    write_recipe(build_recipe(plan, [str(f) for f in files]), recipe_path)
    envelope.update(engine_log=str(log) if log else None, files=[str(f) for f in files],
                    smoke_test=smoke, recipe=str(recipe_path))
    if as_json:
        click.echo(json.dumps(envelope, indent=2))
        return
    click.echo(f"installed {plan.model}: {', '.join(str(f) for f in files)}")
    if smoke:
        click.echo(f"smoke test: loaded in {smoke['load_s']:.1f} s, {smoke['generated_tokens']} "
                   f"tokens at {smoke['tokens_per_s']:.1f} tok/s (stopped on "
                   f"{smoke['stopped_on']})")
    click.echo(f"recipe: {recipe_path}")


def _offline_files(entry: ModelEntry, repo: str, wanted: tuple[str, ...] | None,
                   settings: Settings, model_path: Path | None) -> tuple[hub.RemoteFile, ...]:
    """Offline (HF_HUB_OFFLINE=1): files already on disk, verified earlier, or a clear stop."""
    if wanted is None:
        raise hub.HubError("HF_HUB_OFFLINE=1: MLX weights can only be installed online",
                           "connect and unset HF_HUB_OFFLINE")
    files = []
    hash_cache = settings.cache_dir / "hashes.json"
    for name in wanted:
        places = [(model_path / name) if model_path and model_path.is_dir() else model_path,
                  _target_dir(settings, repo) / name,
                  hub.cached_file(repo, name, settings.hf_home / "hub")]
        path = next((p for p in places if p is not None and p.is_file()), None)
        if path is None:
            raise hub.HubError(f"HF_HUB_OFFLINE=1 and {name} is not on disk",
                               "connect and unset HF_HUB_OFFLINE, or give --model-path")
        files.append(hub.RemoteFile(repo, name, path.stat().st_size,
                                    verify.known_sha256(path, hash_cache), "offline"))
    return tuple(files)
