"""``bench speed|tools --endpoint URL``: the same suites against an OpenAI-compatible server.

Discovery first (``/v1/models``, LM Studio's native model list), then the speed sweep or
the tool suite through ``bench.endpoint_speed`` / ``bench.endpoint_tools``, and a results
file in the same schema as in-process runs, with an ``endpoint`` section saying what was
measured: the URL (local, private or remote host), the served model id, the server's
identity headers and what LM Studio says of its loaded model. The API key is read from the
environment variable the user names and is never printed or stored: results keep the
variable's name only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gptoss_doctor import __version__
from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.bench import (
    endpoint_speed,
    endpoint_tools,
    gguf_info,
    grade,
    results,
    tool_run,
    tool_suite,
)
from gptoss_doctor.errors import UsageError
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.reports.bench_cmd import _asdict, _hash, given_flags, llama_model

SERVER_SETTINGS = "the server's own settings"


def connect(url: str, model: str | None, api_key_env: str | None, timeout_s: float
            ) -> tuple[ep.Endpoint, ep.ServerInfo, str, dict[str, Any]]:
    """(endpoint, what it is, the model id, how the key was found) — or one clear line."""
    base = ep.normalize_url(url)
    key_env = api_key_env
    if key_env is None and ep.port_of(base) == ep.LMSTUDIO_PORT \
            and os.environ.get(ep.LMSTUDIO_TOKEN_ENV):
        key_env = ep.LMSTUDIO_TOKEN_ENV  # LM Studio's own variable, for its own port only
    key = None
    if key_env is not None:
        key = os.environ.get(key_env)
        if not key:
            raise UsageError(f"--api-key-env {key_env}: that environment variable is not set")
    endpoint = ep.Endpoint(base, key, timeout_s)
    info, model_id = ep.discover(endpoint, model or None)
    return endpoint, info, model_id, {"api_key_env": key_env, "api_key_sent": key is not None}


def _model(info: ep.ServerInfo, model_id: str, console: Console) -> dict[str, Any]:
    """What is known of the served model; a local server naming a GGUF file gives its facts."""
    path = Path(model_id)
    if info.host_class == "local" and path.suffix == ".gguf" and path.is_file():
        file_info = gguf_info.read_info(path)
        return {**llama_model(file_info, _hash(path, console)), "id": model_id}
    lms = info.lmstudio or {}
    named = re.search(r"gpt-oss-(20b|120b)", model_id.lower())
    return {"path": None, "file_name": model_id, "name": model_id, "id": model_id,
            "size_bytes": lms.get("size_bytes"), "architecture": None,
            "file_type": lms.get("quantization"), "synthetic": None, "sha256": None,
            "format": lms.get("format"), "gpt_oss": named.group(1) if named else None}


def _envelope(suite: str, status: str, endpoint: ep.Endpoint, info: ep.ServerInfo,
              model_id: str, key: dict[str, Any], console: Console,
              api: str = "chat.completions") -> dict[str, Any]:
    snap = take_snapshot()
    return {
        "kind": results.RESULTS_KIND, "schema_version": results.SCHEMA_VERSION,
        "tool_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "suite": suite, "status": status, "machine": to_dict(snap),
        "software": {"python": snap.os.python_version, "client": ep.client_version(),
                     "server": info.headers.get("server"), "backends": []},
        "model": _model(info, model_id, console),
        "endpoint": {"url": endpoint.base_url, "host_class": info.host_class,
                     "api": api, "model_id": model_id,
                     "models": list(info.models), "headers": info.headers,
                     "lmstudio": info.lmstudio, "is_lmstudio": info.is_lmstudio,
                     # LM Studio's version is not exposed by its HTTP APIs
                     "lmstudio_version": None, **key},
    }


def _server_config(info: ep.ServerInfo) -> dict[str, Any]:
    """The load settings the client can know: LM Studio's loaded config, else unknown."""
    loaded = (info.lmstudio or {}).get("loaded_config") or {}
    return {"threads": None, "n_ctx": loaded.get("context_length"), "n_batch":
            loaded.get("eval_batch_size"), "n_ubatch": None, "n_gpu_layers": None,
            "n_cpu_moe": None, "flash_attn": loaded.get("flash_attention"), "swa_full": None,
            "use_mmap": None, "settings_source": SERVER_SETTINGS}


def speed(url: str, model: str | None, api_key_env: str | None, timeout_s: float,
          tests: tuple[Any, ...], reps: int, concurrency: str, target: Path,
          as_json: bool) -> None:
    levels = endpoint_speed.parse_levels(concurrency)
    shapes = endpoint_speed.shapes_for(tests)
    err = Console(stderr=True)
    endpoint, info, model_id, key = connect(url, model, api_key_env, timeout_s)
    err.print(f"{endpoint.base_url} ({info.host_class}) serves {model_id}; warming up")
    warm = endpoint_speed.warm_up(endpoint, model_id, shapes[0])
    if warm.error:
        raise ep.EndpointError(f"the warm-up request failed: {warm.error}")
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("requests", total=sum(n * len(shapes) * reps for n in levels))

        def advance(label: str) -> None:
            bar.update(task, description=label, advance=1)

        swept, interrupted = endpoint_speed.run_sweep(endpoint, model_id, shapes, levels,
                                                      reps, progress=advance)
    failed = sum(level["requests"] - level["ok"] for level in swept)
    status = "interrupted" if interrupted else "partial" if failed else "complete"
    record = _envelope("speed", status, endpoint, info, model_id, key, err)
    record["config"] = {"engine": "endpoint", "reps": reps, "concurrency": list(levels),
                        "shapes": [s.name for s in shapes], "timeout_s": timeout_s,
                        "requests_per_stream": reps, "protocol": None,
                        **_server_config(info)}
    record["tests"] = endpoint_speed.tests_from(swept, shapes,
                                                frozenset(t.kind for t in tests))
    record["concurrency"] = swept
    record["key_properties"] = results.key_properties(record)
    results.save(record, target)
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        Console(highlight=False).print(_speed_table(record))
        click.echo(f"results: {target}")
    _finish(status, failed, swept)


def _finish(status: str, failed: int, swept: list[dict[str, Any]]) -> None:
    err = Console(stderr=True)
    if status == "interrupted":
        err.print("interrupted: finished requests were kept")
        sys.exit(130)
    if failed:
        first = next(e for level in swept for e in level["errors"])
        err.print(f"{failed} request(s) failed (kept and marked in the results): {first}")
        sys.exit(1)


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "—" if value is None else pattern.format(value)


def _speed_table(record: dict[str, Any]) -> Table:
    table = Table(title=f"{record['endpoint']['model_id']} at {record['endpoint']['url']}")
    for column in ("shape", "streams", "ok", "aggregate t/s", "per-stream t/s", "TTFT p50",
                   "TTFT p95"):
        table.add_column(column)
    for level in record["concurrency"]:
        table.add_row(level["shape"], str(level["streams"]),
                      f"{level['ok']}/{level['requests']}", _fmt(level["aggregate_ts"]),
                      _fmt(level["per_stream_ts"]), _fmt(level["ttft_p50_s"], "{:.3f} s"),
                      _fmt(level["ttft_p95_s"], "{:.3f} s"))
    errors = [f"{level['shape']} x{level['streams']}: {n}× {e}" for level in record["concurrency"]
              for e, n in level["errors"].items()]
    if errors:  # below the table: error lines are too long for a column
        table.caption = "errors — " + "; ".join(errors)
    return table


def tools(url: str, model: str | None, api_key_env: str | None, timeout_s: float,
          cases: list[tool_suite.Case], repeats: int, run: tool_run.RunSettings,
          target: Path, api: str = "chat") -> dict[str, Any]:
    """Run the suite through the server; the results record (saved), or one clear line."""
    suite = tool_suite.load_suite()
    err = Console(stderr=True)
    # --timeout is the per-attempt limit here, like in-process; each request gets the rest.
    endpoint, info, model_id, key = connect(url, model, api_key_env, timeout_s)
    shape = endpoint_tools.APIS[api]
    err.print(f"{endpoint.base_url} ({info.host_class}) serves {model_id}; tools through "
              f"the server's own tool calling ({shape.name})")
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("tool use", total=len(cases) * repeats)

        def advance(case: tool_suite.Case, attempt: int) -> None:
            bar.update(task, description=f"{case.id} ({attempt + 1}/{repeats})",
                       completed=cases.index(case) * repeats + attempt)

        attempts, interrupted = endpoint_tools.run_suite(endpoint, model_id, suite, cases, run,
                                                         repeats, api=api, progress=advance)
    failed = [a for a in attempts if a["end"] == "failed"]
    answered = any("message" in t for a in attempts for t in a["turns"])
    if attempts and not answered:  # nothing to grade: a server problem, not a score
        error = next((t["error"] for a in attempts for t in a["turns"] if t.get("error")),
                     "no turn completed")
        hint = ("this server may not offer the Responses API: try --api chat"
                if api == "responses" and "404" in error else
                "the server hangs or is too slow: raise --timeout (seconds per attempt)")
        raise ep.EndpointError(f"no request was answered: {error}", hint)
    status = "interrupted" if interrupted else "partial" if failed else "complete"
    record = _envelope("tools", status, endpoint, info, model_id, key, err, shape.name)
    record["config"] = {
        "engine": "endpoint", **_server_config(info), "renderer": endpoint_tools.RENDERER,
        "api": shape.name,
        "tool_parsing": endpoint_tools.parsing_paths(attempts),
        "reasoning": run.reasoning, "repeats": repeats, "max_tokens": run.max_tokens,
        "timeout_s": run.timeout_s, "sampling": _asdict(run.sampling),
        "categories": [c for c in tool_suite.CATEGORIES if any(x.category == c for x in cases)],
        "suite": {"name": suite.name, "sha256": suite.sha256, "cases": len(cases)}}
    record["attempts"] = attempts
    record["scores"] = grade.scores(tool_run.scored(attempts))
    record["key_properties"] = results.key_properties(record)
    results.save(record, target)
    return record


def check_no_local_options(**given: Any) -> None:
    """Engine settings belong to the server: refuse them with --endpoint."""
    named = given_flags(**given)
    if named:
        raise UsageError(f"{', '.join(named)} set the in-process engine; with --endpoint the "
                         "server's own settings apply")
