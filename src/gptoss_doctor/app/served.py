"""``bench speed|tools --engine llama-server``: the suites on an engine that serves.

An adapter with the ``Serving`` capability (llama.cpp's own server through xllamacpp) has
no decode loop to time in-process: it serves the model on loopback with the doctor's load
settings and ``n_parallel`` slots, and the endpoint services measure it (streamed TTFT and
decode rates, the concurrency table, tool calls through the server's own harmony parsing).
The results file is an endpoint run whose ``endpoint.served`` section says what was
started: the engine, its version, the settings, the slots, and llama.cpp's own memory
breakdown per device beside the doctor's estimate (over 10 % apart is reported).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor import catalog
from gptoss_doctor.app import conformance as checks
from gptoss_doctor.app import endpoint, models
from gptoss_doctor.app.endpoint import EndpointRun
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.app.options import (
    EndpointOptions,
    EngineFlags,
    SpeedOptions,
    refuse,
    refuse_for_engine,
)
from gptoss_doctor.app.tools import DEFAULT_CTX, ToolsOptions
from gptoss_doctor.bench import endpoint_speed, engines, results, tool_suite
from gptoss_doctor.bench.engine import Served, Serving, serving
from gptoss_doctor.bench.records import FitDevice, ModelFacts
from gptoss_doctor.errors import UsageError
from gptoss_doctor.install.estimate import MemorySettings, estimate
from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.serde import to_json

OPTIONS = ("concurrency", "api")  # endpoint options an engine that serves takes too
SPEED_TIMEOUT_S = 600.0  # per request: a pp2048 on a 2-core CPU takes minutes
SLOT_MARGIN = 512  # the chat template's own tokens around a speed request's prompt
FIT_TOLERANCE = 0.10


def serves(engine: str) -> bool:
    """Whether ``--engine engine`` names an engine that serves (not ``auto``)."""
    return engine != engines.AUTO and engine in engines.ENGINES \
        and serving(engines.ENGINES[engine]) is not None


@dataclass(frozen=True, slots=True)
class Prepared:
    name: str
    server: Serving
    path: Path
    facts: ModelFacts
    settings: LoadSettings
    source: str


def _prepare(engine: str, model: Path | None, synthetic: str | None, flags: EngineFlags,
             n_ctx: int, require_gpt_oss: bool, feedback: Feedback,
             recipe: LoadSettings | None = None) -> Prepared:
    adapter = engines.adapter(engine, model)
    server = serving(adapter)
    if server is None:
        raise UsageError(f"{adapter.name} does not serve models")
    refuse_for_engine(adapter.unsupported, adapter.name, flags)
    path = models.synthetic_model(adapter, synthetic, feedback) if synthetic else model
    assert path is not None
    facts = adapter.read_model(models.require_model(path), require_gpt_oss=require_gpt_oss)
    snap = take_snapshot()
    facts = models.with_digest(facts, models.digest(adapter, path, feedback))
    plan = models.planned(snap, facts, adapter)
    base, source = (recipe, "the recipe") if recipe else (plan.settings, plan.source)
    settings = base.with_overrides(
        n_ctx=n_ctx, n_threads=flags.threads or models.threads_for(snap),
        n_gpu_layers=flags.n_gpu_layers, n_cpu_moe=flags.n_cpu_moe)
    feedback.note(f"serving {facts.file_name} with {adapter.name} on loopback "
                  f"({(facts.size_bytes or 0) / 1024**3:.2f} GiB"
                  f"{', synthetic random weights' if facts.synthetic else ''})")
    return Prepared(adapter.name, server, path, facts, settings, source)


def speed(options: SpeedOptions, concurrency: str, feedback: Feedback) -> EndpointRun:
    """The endpoint speed sweep against the model served with ``max(levels)`` slots."""
    if options.protocol or any(t.depth for t in options.tests):
        raise UsageError("--depths/--protocol: a served model is measured with requests, "
                         "which have no KV depth setting")
    refuse({"no_chat": not options.chat}, ("no_chat",), "does not apply to a served model: "
           "every request's TTFT is measured, there is no separate chat test to leave out")
    refuse({"cooldown_s": options.cooldown_s}, ("cooldown_s",), "does not apply to a served "
           "model: its tests run as one request sweep, without pauses between them")
    levels = endpoint_speed.parse_levels(concurrency)
    shapes = endpoint_speed.shapes_for(options.tests)
    per_slot = max(s.prompt_tokens + s.max_tokens for s in shapes) + SLOT_MARGIN
    ready = _prepare(options.engine, options.model, options.synthetic, options.flags,
                     -(-per_slot // 256) * 256, False, feedback)
    with ready.server.serve(ready.path, ready.settings, max(levels),
                            parse_chat=False) as served:
        feedback.note(f"{ready.name} {served.version} loaded in {served.load_s:.1f} s, "
                      f"{served.n_parallel} slot(s)")
        ran = endpoint.speed(EndpointOptions(served.url, served.model_id, None,
                                             SPEED_TIMEOUT_S),
                             options.tests, options.reps, concurrency, feedback)
    return _amended(ran, ready, served)


def tools(options: ToolsOptions, cases: Sequence[tool_suite.Case], api: str,
          feedback: Feedback) -> EndpointRun:
    """The tool suite through the served model's own tool-call parsing (one slot): Chat
    Completions, or the Responses API with ``api`` "responses"."""
    recipe = options.recipe
    ready = _prepare(recipe.engine if recipe else options.engine,
                     recipe.model_path if recipe else options.model, options.synthetic,
                     options.flags, options.n_ctx or DEFAULT_CTX, True, feedback,
                     recipe.settings if recipe else None)
    with ready.server.serve(ready.path, ready.settings) as served:
        ran = endpoint.tools(EndpointOptions(served.url, served.model_id, None,
                                             options.run.timeout_s),
                             list(cases), options.repeats, options.run, api, feedback)
    return _amended(ran, ready, served)


def conformance(engine: str, model: Path | None, synthetic: str | None, flags: EngineFlags,
                timeout_s: float, feedback: Feedback, force: bool = True) -> EndpointRun:
    """``bench conformance`` against the model served with llama.cpp's own chat parsing."""
    ready = _prepare(engine, model, synthetic, flags, DEFAULT_CTX, False, feedback)
    with ready.server.serve(ready.path, ready.settings) as served:
        ran = checks.run(EndpointOptions(served.url, served.model_id, None, timeout_s),
                         feedback, ready.facts, force)
    return _amended(ran, ready, served)


def _amended(ran: EndpointRun, ready: Prepared, served: Served) -> EndpointRun:
    """The endpoint record with what was served: settings in ``config``, the rest in
    ``endpoint.served``; key properties recomputed from them."""
    record = dict(ran.record)
    s = served.settings
    record["config"] = {**record["config"], "settings_source": ready.source,
                        "threads": s.n_threads, "n_ctx": s.n_ctx, "n_batch": s.n_batch,
                        "n_ubatch": s.n_ubatch, "n_gpu_layers": s.n_gpu_layers,
                        "n_cpu_moe": s.n_cpu_moe, "flash_attn": s.flash_attn,
                        "swa_full": s.swa_full, "use_mmap": s.use_mmap}
    record["endpoint"] = {**record["endpoint"], "served": {
        "engine": ready.name, "version": served.version,
        "n_parallel": served.n_parallel, "load_s": round(served.load_s, 3),
        "fit": fit_comparison(ready.facts.gpt_oss, s, served.fit, served.fit_notes)}}
    record["key_properties"] = results.key_properties(record)
    return EndpointRun(record, ran.status, ran.failed, ran.first_error)


def _is_host(device: FitDevice) -> bool:
    return device.name == "Host" or device.name.startswith("CPU")


def fit_comparison(key: str | None, settings: LoadSettings, fit: Sequence[FitDevice],
                   notes: Sequence[str]) -> dict[str, Any]:
    """llama.cpp's own memory figures per device beside the doctor's estimate for the same
    settings (without the runtime overhead, which llama.cpp does not count); a difference
    over 10 % is listed in ``disagreements``."""
    llama = {"host": sum(d.self_bytes for d in fit if _is_host(d)),
             "gpu": sum(d.self_bytes for d in fit if not _is_host(d))}
    entry = catalog.entry(key) if key else None
    ours: dict[str, int] | None = None
    if entry is not None:
        est = estimate(entry.shape, MemorySettings(
            n_ctx=settings.n_ctx, n_ubatch=settings.n_ubatch, flash_attn=settings.flash_attn,
            swa_full=settings.swa_full, use_mmap=settings.use_mmap,
            repack=settings.n_gpu_layers == 0), on_gpu=settings.n_gpu_layers != 0,
            n_cpu_moe=settings.n_cpu_moe)
        ours = {"host": est.cpu_total_bytes - est.overhead_bytes, "gpu": est.gpu_total_bytes}
    disagreements = []
    for where in ("host", "gpu") if ours else ():
        theirs, mine = llama[where], (ours or {})[where]
        if max(theirs, mine) and abs(theirs - mine) > FIT_TOLERANCE * max(theirs, mine):
            disagreements.append(f"{where}: llama.cpp {theirs / 1024**3:.2f} GiB, the doctor "
                                 f"{mine / 1024**3:.2f} GiB")
    return {"llama_cpp": {"devices": [to_json(d) for d in fit], **llama,
                          "notes": list(notes)},
            "doctor": ours, "tolerance": FIT_TOLERANCE, "disagreements": disagreements,
            "estimate": None if ours else "the doctor estimates released gpt-oss shapes only"}


def serve(model: Path, port: int, n_ctx: int | None, n_parallel: int, flags: EngineFlags,
          feedback: Feedback, until: Callable[[], None] = lambda: _forever()) -> None:
    """Serve ``model`` on ``127.0.0.1:port`` with the doctor's plan (``--engine
    llama-server``) until ``until`` returns (by default: until Ctrl-C)."""
    ready = _prepare("llama-server", model, None, flags, n_ctx or DEFAULT_CTX, False, feedback)
    with ready.server.serve(ready.path, ready.settings, n_parallel, port) as served:
        feedback.note(f"llama-server {served.version} serves {ready.facts.file_name} at "
                      f"{served.url} ({n_parallel} slot(s) of {ready.settings.n_ctx} tokens; "
                      "Ctrl-C stops it)")
        until()


def _forever() -> None:
    while True:
        time.sleep(3600)
