"""The ``install`` service: the right engine build, verified weights, a smoke test, a recipe.

Order of work: probe and plan (read-only: the Hub's metadata, hashes of copies already on
disk), show the plan, ask (unless ``--yes``), then build/install the engine, download or
resume the files, smoke-test the model and write the recipe. ``--dry-run`` stops after the
plan. ``prepare`` gathers facts and plans (read-only); ``execute`` changes the machine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor.app import calibrate
from gptoss_doctor.app.doctor import needs_measurement, with_measured_bandwidth
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.app.served import fit_comparison
from gptoss_doctor.bench import engines
from gptoss_doctor.bench.engine import serving
from gptoss_doctor.catalog import CATALOG, ModelEntry
from gptoss_doctor.install import download, execute, hub, verify
from gptoss_doctor.install.install_plan import InstallPlan, plan_install
from gptoss_doctor.install.recipe import build_recipe, write_recipe
from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.settings import Settings, current

GIB = 1024**3
SMOKE_CTX = 4096  # the smoke test needs a short context, not the planned 131k


def _plan_engine(engine: str) -> str:
    """The engine whose verdict applies: an engine that serves runs another's plan."""
    server = serving(engines.adapter(engine)) if engine != engines.AUTO else None
    return server.plan_engine if server is not None else engine


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
                    feedback: Feedback) -> dict[str, tuple[str, str]]:
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
            with feedback.task(f"verifying {path.name}", remote.size_bytes, size=True) as task:
                digest = verify.cached_sha256(path, hash_cache,
                                              lambda done: task.update(completed=done))
            if digest == remote.sha256:
                local[remote.path] = (str(path), source)
                break
            feedback.note(f"! {path} does not match the Hub's sha256; not reused")
    return local


def _smoke(plan: InstallPlan, files: list[Path]) -> dict[str, Any]:
    """The installed model loads with the planned settings (at a short context) and
    answers a question."""
    adapter = engines.adapter(plan.engine.engine)
    planned = plan.verdict.load_settings or LoadSettings()
    settings = dataclasses.replace(planned, n_ctx=min(planned.n_ctx, SMOKE_CTX))
    result = adapter.smoke_test(adapter.model_path(files), settings)
    found = dataclasses.asdict(result)
    if result.llama_cpp_memory:  # llama.cpp's own figures beside the doctor's estimate
        found["fit"] = fit_comparison(plan.key, settings, result.llama_cpp_memory, ())
    return found


@dataclass(frozen=True, slots=True)
class InstallOptions:
    model: str  # "auto" | "20b" | "120b"
    engine: str  # "auto" | a registered engine
    models_dir: Path | None
    model_path: Path | None


@dataclass(frozen=True, slots=True)
class Prepared:
    """The plan, and what executing it needs."""

    plan: InstallPlan
    settings: Settings
    partial_dir: Path


@dataclass(frozen=True, slots=True)
class Installed:
    engine_log: str | None
    files: tuple[str, ...]
    smoke_test: dict[str, Any]
    recipe: str


def prepare(options: InstallOptions, feedback: Feedback) -> Prepared:
    """Probe, choose, look at the Hub and the disk, and plan: nothing is changed."""
    settings = current()
    if options.models_dir is not None:
        settings = dataclasses.replace(settings, models_dir=options.models_dir.resolve())
    snap = take_snapshot(settings=settings)
    if needs_measurement(snap):  # as the doctor does: the same plan and expected speed
        snap = with_measured_bandwidth(snap, feedback)
    verdict = calibrate.chosen(snap, options.model, _plan_engine(options.engine))
    entry = next(e for e in CATALOG if e.key == verdict.key)
    repo, wanted = _repo_and_files(entry, verdict.engine)
    if settings.hf_offline:
        remote = _offline_files(entry, repo, wanted, settings, options.model_path)
    else:
        remote = hub.remote_files(repo, wanted, endpoint=settings.hf_endpoint)
    local = _verified_local(remote, settings, options.model_path, snap, feedback)
    partial_dir = settings.models_dir / ".partial"
    partial = {r.path: download.partial_path(partial_dir, r.sha256).stat().st_size
               for r in remote if r.sha256 and r.path not in local
               and download.partial_path(partial_dir, r.sha256).exists()}
    plan = plan_install(snap, entry, verdict, remote, local, partial,
                        str(_target_dir(settings, repo)), options.engine)
    return Prepared(plan, settings, partial_dir)


def execute_plan(prepared: Prepared, feedback: Feedback) -> Installed:
    """Install the engine, fetch the files, smoke-test the model and write the recipe."""
    plan, settings = prepared.plan, prepared.settings
    log = execute.run_engine_step(plan.engine, settings.cache_dir / "logs")
    with feedback.task("downloading", max(plan.bytes_to_download, 1), size=True) as task:
        base = {s.path: s.present_bytes for s in plan.files}
        done_by_file: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            done_by_file[name] = done - base[name]
            task.update(completed=sum(done_by_file.values()))

        files = execute.fetch_files(plan, settings.hf_endpoint, prepared.partial_dir,
                                    settings.cache_dir / "hashes.json", progress)
    smoke = _smoke(plan, files)
    recipe_path = settings.models_dir / "recipes" / f"{plan.model}.json"
    write_recipe(build_recipe(plan, [str(f) for f in files]), recipe_path)
    return Installed(str(log) if log else None, tuple(str(f) for f in files), smoke,
                     str(recipe_path))


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
