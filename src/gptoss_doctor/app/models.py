"""Getting a model ready for an in-process run, the same for every engine and suite.

The model is a path the user gave, a recipe's, or a synthetic one written on first use;
its facts are read by the engine adapter, its sha256 computed (cached by path, size and
mtime so a re-run does not re-read 12 GB), and its load settings come from the doctor's
plan for this machine, a recipe, and the user's flags, in that order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

from gptoss_doctor import catalog
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.app.options import EngineFlags, refuse_for_engine
from gptoss_doctor.bench import engines
from gptoss_doctor.bench.engine import Adapter, serving
from gptoss_doctor.bench.records import ModelFacts
from gptoss_doctor.errors import UsageError
from gptoss_doctor.install import verify
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.nvml import parse_nvml_record, read_nvml
from gptoss_doctor.settings import current


@dataclass(frozen=True, slots=True)
class PlannedSettings:
    settings: LoadSettings
    source: str  # where they came from, recorded in results


@dataclass(frozen=True, slots=True)
class Prepared:
    """A model ready to load: its engine, path, facts (with sha256), the machine and the
    doctor's settings for it."""

    adapter: Adapter
    path: Path
    facts: ModelFacts
    snap: HardwareSnapshot
    plan: PlannedSettings


def prepare(engine: str, model: Path | None, synthetic: str | None,
            flags: EngineFlags, require_gpt_oss: bool,
            feedback: Feedback) -> Prepared:
    """The adapter (``--engine``), refusing options it cannot honour; the model (a path, or
    the synthetic one written on first use), read, hashed and planned for."""
    adapter = engines.adapter(engine, model)
    refuse_for_engine(adapter.unsupported, adapter.name, flags)
    path = synthetic_model(adapter, synthetic, feedback) if synthetic else model
    if path is None:
        raise UsageError("give a model")
    facts = adapter.read_model(require_model(path), require_gpt_oss=require_gpt_oss)
    snap = take_snapshot()
    facts = with_digest(facts, digest(adapter, path, feedback))
    return Prepared(adapter, path, facts, snap, planned(snap, facts, adapter))


def loading_note(prepared: Prepared, synthetic_warning: str) -> str:
    facts = prepared.facts
    return (f"loading {facts.file_name} with {prepared.adapter.name} "
            f"({(facts.size_bytes or 0) / 1024**3:.2f} GiB"
            f"{', ' + synthetic_warning if facts.synthetic else ''})")


def require_model(path: Path) -> Path:
    """``path`` if it is a model file or folder this engine may read; one usage error if it
    is missing or not a regular file or folder (a FIFO would hang, a device never ends)."""
    if not path.exists():
        raise UsageError(f"model {path} does not exist")
    if not (path.is_file() or path.is_dir()):
        raise UsageError(f"model {path} is not a regular file or folder")
    return path


def synthetic_model(adapter: Adapter, shape: str, feedback: Feedback) -> Path:
    """The synthetic model of ``shape`` for ``adapter``, written atomically on first use."""
    if shape not in adapter.synthetic_shapes:
        raise UsageError(f"--synthetic {shape} --engine {adapter.name}: this engine's synthetic "
                         f"models come in {', '.join(adapter.synthetic_shapes)}",
                         "use --synthetic tiny, or llama.cpp for 20b/120b")
    folder = current().models_dir / "synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    path = adapter.synthetic_path(shape, folder)
    if path.exists():
        return path  # written atomically, so an existing one is complete
    with feedback.task(f"writing synthetic {shape}") as task:
        adapter.write_synthetic(shape, path,
                                lambda done, total: task.update(completed=done, total=total))
    return path


def digest(adapter: Adapter, path: Path, feedback: Feedback) -> str:
    """sha256 of a model file, or over each file's name and sha256 for a folder."""
    files = adapter.content_files(path)
    cache = current().cache_dir / "hashes.json"
    digests: list[str] = []
    with feedback.task(f"sha256 {path.name}", sum(p.stat().st_size for p in files),
                       size=True) as task:
        done = 0
        for file in files:
            def advance(n: int, base: int = done) -> None:
                task.update(completed=base + n)

            digests.append(verify.cached_sha256(file, cache, advance))
            done += file.stat().st_size
    if path.is_file():
        return digests[0]
    lines = "".join(f"{f.name} {d}\n" for f, d in zip(files, digests, strict=True))
    return hashlib.sha256(lines.encode()).hexdigest()


def with_digest(facts: ModelFacts, sha256: str) -> ModelFacts:
    return dataclasses.replace(facts, sha256=sha256)


def planned(snap: HardwareSnapshot, facts: ModelFacts, adapter: Adapter) -> PlannedSettings:
    """The doctor's load settings for this model on this machine, engine and build (an
    engine that serves runs the plan of the engine it serves: ``Serving.plan_engine``)."""
    gpu_offload = adapter.gpu_offload()
    key = facts.gpt_oss if facts.gpt_oss in catalog.RELEASED else None
    verdict = assess(snap).verdict(key) if key else None
    server = serving(adapter)
    engine = server.plan_engine if server is not None else adapter.name
    if verdict is None or verdict.engine != engine or verdict.load_settings is None:
        settings = LoadSettings(n_gpu_layers=-1, use_mmap=True)
        return PlannedSettings(_for(settings, gpu_offload),
                               "no plan for this model: all layers where the build can")
    return PlannedSettings(_for(verdict.load_settings, gpu_offload),
                           f"the doctor's plan for gpt-oss-{key}")


def _for(settings: LoadSettings, gpu_offload: bool) -> LoadSettings:
    """A plan's settings on this build (a GPU plan on a CPU-only build runs on the CPU)."""
    if not gpu_offload or settings.n_gpu_layers == 0:
        return settings.on_cpu_only()
    return settings.for_build(gpu_offload)


def threads_for(snap: HardwareSnapshot) -> int | None:
    """llama-bench's default: one thread per physical core."""
    return snap.cpu.cores_physical or snap.cpu.cores_logical


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # KiB on Linux


def gpu_used_bytes() -> int | None:
    """Memory in use on all NVIDIA GPUs right now (None without a readable NVIDIA GPU)."""
    gpus, _notes = parse_nvml_record(read_nvml())
    used = [g.vram_total_bytes - g.vram_free_bytes for g in gpus
            if g.vram_total_bytes is not None and g.vram_free_bytes is not None]
    return sum(used) if used else None
