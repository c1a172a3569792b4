"""The ``bench speed|tools --endpoint URL`` services: the suites against an OpenAI-compatible
server.

Discovery first (``/v1/models``, LM Studio's native model list), then the speed sweep or
the tool suite through ``bench.endpoint_speed`` / ``bench.endpoint_tools``, and a results
file in the same schema as in-process runs, with an ``endpoint`` section saying what was
measured: the URL (local, private or remote host), the served model id, the server's
identity headers and what LM Studio says of its loaded model. The API key is read from the
environment variable the user names and is never printed or stored: results keep the
variable's name only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor import __version__, catalog
from gptoss_doctor.app import models
from gptoss_doctor.app.feedback import Feedback, Task
from gptoss_doctor.app.options import EndpointOptions, LoadOptions
from gptoss_doctor.app.records import now
from gptoss_doctor.app.sampling import Sampling, endpoint_fields
from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.bench import (
    endpoint_speed,
    endpoint_tools,
    engines,
    grade,
    latency,
    lmstudio_stats,
    load,
    load_plan,
    records,
    results,
    tool_run,
    tool_suite,
)
from gptoss_doctor.bench import workload as workload_mod
from gptoss_doctor.bench.records import EngineConfig
from gptoss_doctor.errors import UsageError
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.secrets import register
from gptoss_doctor.serde import to_json

SERVER_SETTINGS = "the server's own settings"
APIS = ("chat", "responses")  # endpoint_tools.APIS: chat completions, responses


def connect(options: EndpointOptions) -> tuple[ep.Endpoint, ep.ServerInfo, str, dict[str, Any]]:
    """(endpoint, what it is, the model id, how the key was found) — or one clear line."""
    try:
        base = ep.normalize_url(options.url)
        ep.port_of(base)  # a port out of range raises here, not mid-run
    except (ep.EndpointError, ValueError) as exc:
        raise UsageError(getattr(exc, "message", f"bad endpoint {options.url!r}: {exc}"),
                         getattr(exc, "hint", None)) from None
    key_env = options.api_key_env
    if key_env is None and ep.port_of(base) == ep.LMSTUDIO_PORT \
            and os.environ.get(ep.LMSTUDIO_TOKEN_ENV):
        key_env = ep.LMSTUDIO_TOKEN_ENV  # LM Studio's own variable, for its own port only
    key = None
    if key_env is not None:
        key = os.environ.get(key_env)
        if not key:
            raise UsageError(f"--api-key-env {key_env}: that environment variable is not set")
        register(key)  # scrubbed from everything that leaves the process from now on
        if not key.isascii() or not key.isprintable():
            raise UsageError(f"--api-key-env {key_env}: the key holds characters an HTTP "
                             "header cannot carry (non-ASCII or control characters)")
    endpoint = ep.Endpoint(base, key, options.timeout_s)
    info, model_id = ep.discover(endpoint, options.model or None)
    return endpoint, info, model_id, {"api_key_env": key_env, "api_key_sent": key is not None}


def _model(info: ep.ServerInfo, model_id: str, feedback: Feedback) -> dict[str, Any]:
    """What is known of the served model; a local server naming a GGUF file gives its facts."""
    path = Path(model_id)
    if info.host_class == "local" and path.suffix == ".gguf" and path.is_file():
        adapter = engines.ENGINES["llama.cpp"]
        facts = adapter.read_model(path, require_gpt_oss=False)
        facts = models.with_digest(facts, models.digest(adapter, path, feedback))
        return {**to_json(facts), "id": model_id}
    lms = info.lmstudio or {}
    return {"path": None, "file_name": model_id, "name": model_id, "id": model_id,
            "size_bytes": lms.get("size_bytes"), "architecture": None,
            "file_type": lms.get("quantization"), "synthetic": None, "sha256": None,
            "format": lms.get("format"), "gpt_oss": catalog.match_name(model_id)}


@dataclass(frozen=True, slots=True)
class Connection:
    endpoint: ep.Endpoint
    info: ep.ServerInfo
    model_id: str
    key: dict[str, Any]


def _envelope(suite: str, status: str, conn: Connection, feedback: Feedback,
              api: str = "chat.completions") -> dict[str, Any]:
    snap = take_snapshot()
    info = conn.info
    return {
        "kind": results.RESULTS_KIND, "schema_version": results.SCHEMA_VERSION,
        "tool_version": __version__, "created_at": now(),
        "suite": suite, "status": status, "machine": to_dict(snap),
        "software": {"python": snap.os.python_version, "client": ep.client_version(),
                     "server": info.headers.get("server"), "backends": []},
        "model": _model(info, conn.model_id, feedback),
        "endpoint": {"url": conn.endpoint.base_url, "host_class": info.host_class,
                     "api": api, "model_id": conn.model_id,
                     "models": list(info.models), "headers": info.headers,
                     "lmstudio": info.lmstudio, "is_lmstudio": info.is_lmstudio,
                     # LM Studio's version is not exposed by its HTTP APIs
                     "lmstudio_version": None, **conn.key},
    }


def _server_config(info: ep.ServerInfo) -> dict[str, Any]:
    """The load settings the client can know: LM Studio's loaded config, else unknown."""
    loaded = (info.lmstudio or {}).get("loaded_config") or {}

    def count(key: str) -> int | None:  # the server's word: a count only if it is one
        value = loaded.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    flash = loaded.get("flash_attention")
    return {**to_json(EngineConfig(engine="endpoint", settings_source=SERVER_SETTINGS,
                                   n_ctx=count("context_length"),
                                   n_batch=count("eval_batch_size"),
                                   flash_attn=flash if isinstance(flash, bool) else None))}


@dataclass(frozen=True, slots=True)
class EndpointRun:
    """A finished endpoint run: its results JSON, and how it ended."""

    record: dict[str, Any]
    status: str
    failed: int
    first_error: str | None


def _connect(options: EndpointOptions, feedback: Feedback, what: str) -> Connection:
    endpoint, info, model_id, key = connect(options)
    feedback.note(f"{endpoint.base_url} ({info.host_class}) serves {model_id}; {what}")
    return Connection(endpoint, info, model_id, key)


def speed(options: EndpointOptions, tests: tuple[Any, ...], reps: int, concurrency: str,
          feedback: Feedback) -> EndpointRun:
    """The concurrency sweep over streamed Chat Completions."""
    levels = endpoint_speed.parse_levels(concurrency)
    shapes = endpoint_speed.shapes_for(tests)
    conn = _connect(options, feedback, "warming up")
    warm = endpoint_speed.warm_up(conn.endpoint, conn.model_id, shapes[0])
    if warm.error:
        raise ep.EndpointError(f"the warm-up request failed: {warm.error}")
    # A server on this machine is sampled like an in-process run (docs/design.md, "Energy
    # and conditions"); one elsewhere cannot be.
    sampled = Sampling() if conn.info.host_class == "local" else None
    with (feedback.task("requests", sum(n * len(shapes) * reps for n in levels)) as task,
          sampled or contextlib.nullcontext()):
        swept, interrupted = endpoint_speed.run_sweep(
            conn.endpoint, conn.model_id, shapes, levels, reps,
            progress=lambda label: task.update(description=label, advance=1))
    failed = sum(level["requests"] - level["ok"] for level in swept)
    status = "interrupted" if interrupted else "partial" if failed else "complete"
    record = _envelope("speed", status, conn, feedback)
    record["config"] = {"reps": reps, "concurrency": list(levels),
                        "shapes": [s.name for s in shapes], "timeout_s": options.timeout_s,
                        "requests_per_stream": reps, "protocol": None,
                        **_server_config(conn.info)}
    record["tests"] = endpoint_speed.tests_from(swept, shapes, frozenset(t.kind for t in tests))
    record["concurrency"] = swept
    if conn.info.is_lmstudio:  # LM Studio's own stats beside this client's clock
        with feedback.task("LM Studio's native stats"):
            record["endpoint"]["lmstudio_stats"] = lmstudio_stats.measure(conn.endpoint,
                                                                          conn.model_id)
        feedback.note(lmstudio_stats.summary(record["endpoint"]["lmstudio_stats"]))
    record.update(endpoint_fields(sampled, sum(level["generated_tokens"] for level in swept)))
    record["key_properties"] = results.key_properties(record)
    first = next((e for level in swept for e in level["errors"]), None)
    return EndpointRun(record, status, failed, first)


def tools(options: EndpointOptions, cases: list[tool_suite.Case], repeats: int,
          run: tool_run.RunSettings, api: str, feedback: Feedback) -> EndpointRun:
    """The tool suite through the server's own tool calling."""
    suite = tool_suite.load_suite()
    # --timeout is the per-attempt limit here, like in-process; each request gets the rest.
    shape = endpoint_tools.APIS[api]
    conn = _connect(options, feedback, f"tools through the server's own tool calling "
                    f"({shape.name})")
    with feedback.task("tool use", len(cases) * repeats) as task:
        def advance(case: tool_suite.Case, attempt: int) -> None:
            task.update(description=f"{case.id} ({attempt + 1}/{repeats})",
                        completed=cases.index(case) * repeats + attempt)

        attempts, interrupted = endpoint_tools.run_suite(conn.endpoint, conn.model_id, suite,
                                                         cases, run, repeats, api=api,
                                                         progress=advance)
    _check_answered(attempts, api)
    failed = [a for a in attempts if a["end"] == "failed"]
    status = "interrupted" if interrupted else "partial" if failed else "complete"
    record = _envelope("tools", status, conn, feedback, shape.name)
    record["config"] = {
        **_server_config(conn.info), "renderer": endpoint_tools.RENDERER, "api": shape.name,
        "tool_parsing": endpoint_tools.parsing_paths(attempts),
        "reasoning": run.reasoning, "repeats": repeats, "max_tokens": run.max_tokens,
        "timeout_s": run.timeout_s, "sampling": to_json(run.sampling),
        "categories": [c for c in tool_suite.CATEGORIES if any(x.category == c for x in cases)],
        "suite": {"name": suite.name, "sha256": suite.sha256, "cases": len(cases),
                  "graders": grade.grader_versions()}}
    record["attempts"] = attempts
    record["scores"] = grade.scores(tool_run.scored(attempts))
    record["key_properties"] = results.key_properties(record)
    first = next((t.get("error") for t in failed[0]["turns"] if t.get("error")), "") \
        if failed else None
    return EndpointRun(record, status, len(failed), first)


def _check_answered(attempts: list[dict[str, Any]], api: str) -> None:
    """Nothing answered at all is a server problem, not a score: one clear line."""
    answered = any("message" in t for a in attempts for t in a["turns"])
    if attempts and not answered:
        error = next((t["error"] for a in attempts for t in a["turns"] if t.get("error")),
                     "no turn completed")
        hint = ("this server may not offer the Responses API: try --api chat"
                if api == "responses" and "404" in error else
                "the server hangs or is too slow: raise --timeout (seconds per attempt)")
        raise ep.EndpointError(f"no request was answered: {error}", hint)


DEFAULT_DURATION_S = 30.0  # a load level's length without --duration or --requests
SHAPES_CYCLE = 4096  # drawn workload shapes, reused in turn past this many requests


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """A load run's flags, checked before anything is sent."""

    profile: load.Profile
    rates: tuple[float, ...]
    streams: tuple[int, ...]
    slos: tuple[load_plan.Slo, ...]
    sweep: bool
    workload: workload_mod.Workload


def plan_load(given: LoadOptions) -> LoadPlan:
    """Every load flag parsed, or one usage line (before any server is asked)."""
    if (given.rate or given.sweep) and given.concurrency:
        raise UsageError("--rate/--sweep (open loop) and --concurrency (closed loop) are two "
                         "runs; give one")
    if given.duration_s is not None and given.requests is not None:
        raise UsageError("give --duration or --requests, not both")
    if given.sweep and not given.slo:
        raise UsageError("--sweep needs --slo (e.g. ttft_p95=2s,itl_p95=100ms): it finds "
                         "the highest rate that meets them")
    if given.arrivals and given.concurrency:
        raise UsageError("--arrivals shapes open-loop runs; it needs --rate, not --concurrency")
    open_loop = bool(given.rate) or given.sweep
    rates = load_plan.parse_rates(given.rate) if given.rate else (1.0,) if given.sweep else ()
    if given.sweep and len(rates) > 1:
        raise UsageError("--sweep starts from one --rate (default 1)")
    streams = () if open_loop else endpoint_speed.parse_levels(given.concurrency or "1")
    duration = (given.duration_s if given.duration_s is not None or given.requests is not None
                else DEFAULT_DURATION_S)
    profile = load.Profile("rate" if open_loop else "concurrency",
                           load_plan.parse_arrivals(given.arrivals or "poisson"), given.seed,
                           duration, given.requests, load_plan.parse_warmup(given.warmup))
    return LoadPlan(profile, rates, streams,
                    load_plan.parse_slos(given.slo) if given.slo else (), given.sweep,
                    workload_mod.parse_workload(given.workload or "fixed"))


def _replica(options: EndpointOptions, url: str, model_id: str, feedback: Feedback
             ) -> Connection:
    """Another --endpoint: it must serve the same model."""
    return _connect(EndpointOptions(url, model_id, options.api_key_env, options.timeout_s),
                    feedback, "a replica")


def load_run(options: EndpointOptions, tests: tuple[Any, ...], given: LoadOptions,
             feedback: Feedback) -> EndpointRun:
    """Open-loop rates, an SLO sweep or closed-loop concurrency over one or more replicas."""
    plan = plan_load(given)
    defaults = endpoint_speed.shapes_for(tests)
    conns = _warm_replicas(options, given, defaults[0], feedback)
    shapes = (list(defaults) if plan.workload.kind == "fixed" else
              plan.workload.shapes(SHAPES_CYCLE, given.seed, defaults[0]))
    sampled = Sampling() if conns[0].info.host_class == "local" else None
    with feedback.task("requests", None) as task, sampled or contextlib.nullcontext():
        ran = _run_levels(plan, [c.endpoint for c in conns], conns[0].model_id, shapes, task)
    return _load_record(conns, plan, ran, sampled, feedback, options.timeout_s)


def _warm_replicas(options: EndpointOptions, given: LoadOptions,
                   shape: endpoint_speed.Shape, feedback: Feedback) -> list[Connection]:
    """The --endpoint and every replica connected, each warmed up with one request."""
    conn = _connect(options, feedback, "warming up")
    conns = [conn, *(_replica(options, u, conn.model_id, feedback) for u in given.replicas)]
    for c in conns:
        warm = endpoint_speed.warm_up(c.endpoint, c.model_id, shape)
        if warm.error:
            raise ep.EndpointError(f"{c.endpoint.base_url}: the warm-up request failed: "
                                   f"{warm.error}")
    return conns


@dataclass(frozen=True, slots=True)
class _LoadLevels:
    """What a load run's levels gave: each level, the SLO sweep's answer, and whether
    Ctrl-C ended the run."""

    levels: list[records.LoadLevel]
    sweep: load_plan.SweepResult | None
    interrupted: bool


def _run_levels(plan: LoadPlan, endpoints: list[ep.Endpoint], model_id: str,
                shapes: Sequence[load.Shaped], task: Task) -> _LoadLevels:
    """Every level of the plan in turn (an SLO sweep's rates first). Ctrl-C keeps the
    levels that finished and what the interrupted one had finished."""
    levels: list[records.LoadLevel] = []

    def level(rate: float | None, streams: int | None) -> records.LoadLevel:
        label = f"{rate:g} req/s" if rate is not None else f"x{streams}"
        task.update(description=label, completed=0)
        finished: list[latency.Request] = []
        try:
            ran = asyncio.run(load.run_level(
                endpoints, model_id, shapes, plan.profile, rate=rate,
                streams=streams, progress=lambda: task.update(advance=1), keep=finished))
        except KeyboardInterrupt:  # the requests that finished are kept
            if finished:
                levels.append(load.summarize(load.interrupted(finished), plan.profile,
                                             endpoints, plan.slos, rate=rate,
                                             streams=streams))
            raise
        done = load.summarize(ran, plan.profile, endpoints, plan.slos, rate=rate,
                              streams=streams)
        levels.append(done)
        return done

    sweep: load_plan.SweepResult | None = None
    try:
        if plan.sweep:
            sweep = load.sweep(lambda rate: level(rate, None), plan.rates[0], plan.slos)[1]
        for rate in () if plan.sweep else plan.rates:
            level(rate, None)
        for streams in plan.streams:
            level(None, streams)
    except KeyboardInterrupt:
        return _LoadLevels(levels, sweep, True)
    return _LoadLevels(levels, sweep, False)


def _load_record(conns: list[Connection], plan: LoadPlan, ran: _LoadLevels,
                 sampled: Sampling | None, feedback: Feedback, timeout_s: float
                 ) -> EndpointRun:
    """The results of a load run against ``conns`` (the first is the --endpoint)."""
    conn, levels = conns[0], ran.levels
    failed = sum(lv.total.requests - lv.total.ok + lv.dropped for lv in levels)
    status = "interrupted" if ran.interrupted else "partial" if failed else "complete"
    record = _envelope("speed", status, conn, feedback)
    profile = plan.profile
    record["config"] = {"reps": 1, "concurrency": list(plan.streams), "shapes": [],
                        "timeout_s": timeout_s, "protocol": None,
                        **_server_config(conn.info)}
    record["tests"] = []
    record["concurrency"] = []
    record["load"] = to_json(records.LoadRun(
        mode=profile.mode, arrivals=profile.arrivals.name if profile.mode == "rate" else None,
        duration_s=profile.duration_s, requests=profile.requests,
        warmup=profile.warmup.name if profile.warmup != load_plan.Warmup() else None,
        seed=profile.seed, max_outstanding_cap=profile.cap,
        replicas=tuple(c.endpoint.base_url for c in conns), workload=plan.workload.name,
        slos=tuple(s.name for s in plan.slos), levels=tuple(levels), sweep=ran.sweep))
    record.update(endpoint_fields(sampled, sum(lv.total.output_tokens for lv in levels)))
    record["key_properties"] = results.key_properties(record)
    first = next((e for lv in levels for e in lv.total.errors), None)
    if first is None and any(lv.dropped for lv in levels):
        first = f"requests dropped at the cap of {profile.cap} in flight"
    return EndpointRun(record, status, failed, first)
