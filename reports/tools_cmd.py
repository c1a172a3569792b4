"""``gptoss-doctor bench tools``: does gpt-oss call functions correctly on this setup?

Runs the tool-use suite in-process (prompts rendered and completions parsed with
openai-harmony), writes a results file with every raw completion, and prints pass@k /
pass^k per category. ``--regrade RESULTS.json`` grades stored completions again without a
model, so published results can be audited and old runs rescored.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gptoss_doctor import __version__
from gptoss_doctor.bench import gguf_info, grade, harmony, results, tool_run, tool_suite
from gptoss_doctor.bench.synth import SHAPES
from gptoss_doctor.errors import UsageError
from gptoss_doctor.install.recipe import RECIPE_KIND
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.reports.bench_cmd import (
    _asdict,
    _hash,
    _planned,
    _synthetic_model,
    _target,
    endpoint_options,
    engine_choice,
    engine_option,
    envelope,
    given_flags,
    llama_model,
    llama_software,
)

DEFAULT_CTX = 16384
ENDPOINT_APIS = ("chat", "responses")  # bench.endpoint_tools.APIS, without importing httpx
LOAD_KEYS = ("n_batch", "n_ubatch", "flash_attn", "swa_full", "use_mmap", "n_gpu_layers",
             "n_cpu_moe")


def _read_recipe(path: Path) -> tuple[Path, dict[str, Any], str]:
    """(model path, load settings, engine) from a recipe ``gptoss-doctor install`` wrote."""
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise UsageError(f"{path} is not a JSON recipe") from None
    if not isinstance(recipe, dict) or recipe.get("kind") != RECIPE_KIND:
        raise UsageError(f"{path} is not a gptoss-doctor recipe",
                         "use the recipe.json that `gptoss-doctor install` wrote")
    engine = recipe.get("engine")
    if engine not in ("llama.cpp", "mlx"):
        raise UsageError(f"{path} is for the {engine} engine, which bench tools cannot run",
                         "give the model with --model")
    settings = {k: v for k, v in dict(recipe.get("load_settings") or {}).items()
                if k in LOAD_KEYS} if engine == "llama.cpp" else {}
    return Path(recipe["model_path"]), settings, str(engine)


def _categories(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--category a,b --category c`` -> ("a", "b", "c"); ``tool_suite.select`` checks them."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _table(record: dict[str, Any]) -> Table:
    k = record["config"]["repeats"]
    table = Table(title=f"tool use — {record['model']['file_name']}, reasoning "
                  f"{record['config']['reasoning']}, {k} attempt{'s' if k > 1 else ''} per case")
    for column in ("category", "cases", f"pass@{k}", f"pass^{k}", "pass rate", "strict",
                   "failures"):
        table.add_column(column)
    rows = [*record["scores"]["by_category"].items(), ("overall", record["scores"]["overall"])]
    for name, score in rows:
        failures = ", ".join(f"{f} {n}" for f, n in score["failures"].items())
        table.add_row(name, str(score["cases"]), _pct(score["pass_at_k"]),
                      _pct(score["pass_hat_k"]), _pct(score["pass_rate"]),
                      _pct(score["strict_pass_rate"]), failures or "—")
    return table


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _emit(record: dict[str, Any], as_json: bool, target: Path | None) -> None:
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    Console(highlight=False).print(_table(record))
    quirks = record["scores"]["overall"]["quirks"]
    if quirks:
        click.echo("harmony quirks (tolerated): "
                   + ", ".join(f"{q} {n}" for q, n in quirks.items()))
    if target is not None:
        click.echo(f"results: {target}")


def _regrade(source: Path, output: Path | None, as_json: bool) -> None:
    record = results.load(source)
    if record["suite"] != "tools":
        raise UsageError(f"{source} holds {record['suite']} results, not tool-use results")
    suite = tool_suite.load_suite()
    err = Console(stderr=True)
    if record["config"]["suite"]["sha256"] != suite.sha256:
        err.print("note: the suite changed since this run; grades use today's cases")
    attempts, changes = tool_run.regrade(record["attempts"], suite)
    record = {**record, "attempts": attempts,
              "scores": grade.scores(tool_run.scored(attempts)),
              "regraded": {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "tool_version": __version__, "changes": changes}}
    if output is not None:
        results.save(record, output)
    for change in changes:
        err.print(f"changed: {change}")
    err.print(f"regraded {len(attempts)} attempts: "
              + (f"{len(changes)} grades changed" if changes else "every grade reproduced"))
    _emit(record, as_json, output)


@click.command("tools")
@click.option("--model", "model_arg", metavar="PATH|NAME",
              help="A gpt-oss GGUF file (with --endpoint: the served model's name).")
@click.option("--recipe", "recipe_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The recipe.json `gptoss-doctor install` wrote (model and settings).")
@click.option("--synthetic", type=click.Choice(sorted(SHAPES)),
              help="A synthetic gpt-oss of this shape (random weights: expect failures).")
@engine_option
@click.option("--regrade", "regrade_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Grade the completions stored in a results file again (no model).")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Attempts per case (k of pass@k and pass^k).")
@click.option("--reasoning", type=click.Choice(["low", "medium", "high"]), default="low",
              show_default=True)
@click.option("--category", "categories", multiple=True,
              help="Only these categories (repeat or comma-separate): "
              + ", ".join(tool_suite.CATEGORIES))
@click.option("--max-tokens", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Tokens the model may generate per turn.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="1.0 is OpenAI's recommendation for gpt-oss; 0 is greedy.")
@click.option("--top-p", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0,
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@endpoint_options
@click.option("--api", type=click.Choice(ENDPOINT_APIS), default="chat",
              show_default=True, help="With --endpoint: Chat Completions (chat) or the "
              "Responses API (responses), where the server has it.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=300.0, show_default=True, help="Seconds per attempt.")
@click.option("--ctx", "n_ctx", type=click.IntRange(min=512), default=None,
              help="Context length to load the model with (default 16384; also with "
              "--recipe: the suite needs far less than a served model's context).")
@click.option("--threads", type=click.IntRange(min=1), default=None)
@click.option("--n-gpu-layers", type=int, default=None,
              help="Layers to offload (default: the recipe or the doctor's plan).")
@click.option("--n-cpu-moe", type=click.IntRange(min=0), default=None)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Results file (default: gptoss-bench-tools-<time>.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the results record as JSON.")
def tools_command(model_arg: str | None, recipe_path: Path | None, synthetic: str | None,
                  engine_name: str, regrade_path: Path | None, repeats: int, reasoning: str,
                  categories: tuple[str, ...], max_tokens: int, temperature: float,
                  top_p: float, seed: int, endpoint_url: str | None,
                  api_key_env: str | None, api: str, timeout_s: float, n_ctx: int | None,
                  threads: int | None, n_gpu_layers: int | None, n_cpu_moe: int | None,
                  output: Path | None, as_json: bool) -> None:
    """Tool-use benchmark: simple, multiple, parallel, irrelevance and act cases.

    With --endpoint: the same cases through the server's own tool calling.
    """
    if endpoint_url is not None:
        from gptoss_doctor.reports import endpoint_cmd

        if recipe_path or synthetic or regrade_path:
            raise click.UsageError("--recipe, --synthetic and --regrade are for in-process "
                                   "runs; an endpoint serves its own model")
        endpoint_cmd.check_no_local_options(ctx=n_ctx, threads=threads,
                                            n_gpu_layers=n_gpu_layers, n_cpu_moe=n_cpu_moe,
                                            engine=None if engine_name == "auto" else engine_name)
        cases = tool_suite.select(tool_suite.load_suite(), _categories(categories))
        run = tool_run.RunSettings(reasoning, max_tokens, timeout_s,
                                   tool_run.Sampling(temperature, top_p, seed))
        target = _target("tools", output)
        served = endpoint_cmd.tools(endpoint_url, model_arg, api_key_env, timeout_s,
                                    list(cases), repeats, run, target, api)
        _emit(served, as_json, target)
        _exit_for(served)
        return
    if api_key_env or api != "chat":
        raise click.UsageError("--api-key-env and --api need --endpoint URL")
    model_path = Path(model_arg) if model_arg else None
    sources = [s for s in (model_path, recipe_path, synthetic, regrade_path) if s is not None]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of --model, --recipe, --synthetic or --regrade")
    if output is not None and not output.resolve().parent.is_dir():
        raise click.UsageError(f"folder {output.parent} does not exist")
    if regrade_path is not None:
        _regrade(regrade_path, output, as_json)
        return
    suite = tool_suite.load_suite()
    cases = tool_suite.select(suite, _categories(categories))
    target = _target("tools", output)
    err = Console(stderr=True)
    recipe_settings: dict[str, Any] = {}
    recipe_engine = None
    if recipe_path is not None:
        model_path, recipe_settings, recipe_engine = _read_recipe(recipe_path)
    run = tool_run.RunSettings(reasoning, max_tokens, timeout_s,
                               tool_run.Sampling(temperature, top_p, seed))
    which = recipe_engine or engine_choice(engine_name, model_path)
    if which == "mlx":
        named = given_flags(threads=threads, n_gpu_layers=n_gpu_layers, n_cpu_moe=n_cpu_moe)
        if named:
            raise click.UsageError(f"{', '.join(named)}: llama.cpp settings; MLX has none")
        _tools_mlx(model_path, synthetic, suite, cases, run, repeats, n_ctx or DEFAULT_CTX,
                   target, as_json, err)
        return
    path = _synthetic_model(synthetic, err) if synthetic else model_path
    assert path is not None
    info = gguf_info.read_info(path, require_gpt_oss=True)
    snap = take_snapshot()
    digest = _hash(path, err)

    from gptoss_doctor.bench.llama_engine import LlamaEngine, LlamaSettings, build_info

    build = build_info()
    planned_layers, planned_moe, use_mmap, source = _planned(snap, info,
                                                             bool(build["gpu_offload"]))
    if recipe_settings:
        source = f"the recipe {recipe_path}"
    load = {"n_gpu_layers": planned_layers, "n_cpu_moe": planned_moe, "use_mmap": use_mmap,
            **recipe_settings}
    if n_gpu_layers is not None:
        load["n_gpu_layers"] = n_gpu_layers
    if n_cpu_moe is not None:
        load["n_cpu_moe"] = n_cpu_moe
    settings = LlamaSettings(n_ctx=n_ctx or DEFAULT_CTX, n_threads=threads
                             or snap.cpu.cores_physical or snap.cpu.cores_logical, **load)
    err.print(f"loading {path.name} ({info.size_bytes / 1024**3:.2f} GiB"
              f"{', synthetic random weights: expect failures' if info.synthetic else ''})")
    engine = LlamaEngine(path, settings)
    try:
        attempts, interrupted = _run_cases(engine, suite, cases, run, repeats, err)
    finally:
        engine.close()
    record: dict[str, Any] = {
        **envelope("tools", interrupted, snap, llama_software(snap, build),
                   llama_model(info, digest)),
        "config": {"engine": "llama.cpp", "threads": engine.threads, "n_ctx": settings.n_ctx,
                   "n_batch": settings.n_batch, "n_ubatch": settings.n_ubatch,
                   "n_gpu_layers": settings.n_gpu_layers, "flash_attn": settings.flash_attn,
                   "swa_full": settings.swa_full, "use_mmap": settings.use_mmap,
                   "n_cpu_moe": settings.n_cpu_moe, "settings_source": source,
                   **_run_config(suite, cases, run, repeats)},
        "load_buffers": _asdict(engine.buffers),
    }
    _finish(record, attempts, target, as_json)


def _run_cases(engine: tool_run.GenerationEngine, suite: tool_suite.Suite,
               cases: tuple[tool_suite.Case, ...], run: tool_run.RunSettings, repeats: int,
               err: Console) -> tuple[list[dict[str, Any]], bool]:
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("tool use", total=len(cases) * repeats)

        def advance(case: tool_suite.Case, attempt: int) -> None:
            bar.update(task, description=f"{case.id} ({attempt + 1}/{repeats})",
                       completed=cases.index(case) * repeats + attempt)

        return tool_run.run_suite(engine, suite, cases, run, repeats, progress=advance)


def _run_config(suite: tool_suite.Suite, cases: tuple[tool_suite.Case, ...],
                run: tool_run.RunSettings, repeats: int) -> dict[str, Any]:
    """How the suite ran, the same for every in-process engine."""
    return {"renderer": harmony.RENDERER, "reasoning": run.reasoning, "repeats": repeats,
            "max_tokens": run.max_tokens, "timeout_s": run.timeout_s,
            "sampling": _asdict(run.sampling),
            "categories": [c for c in tool_suite.CATEGORIES
                           if any(case.category == c for case in cases)],
            "suite": {"name": suite.name, "sha256": suite.sha256, "cases": len(cases)}}


def _finish(record: dict[str, Any], attempts: list[dict[str, Any]], target: Path,
            as_json: bool) -> None:
    record["attempts"] = attempts
    record["scores"] = grade.scores(tool_run.scored(attempts))
    record["key_properties"] = results.key_properties(record)
    results.save(record, target)
    _emit(record, as_json, target)
    _exit_for(record)


def _tools_mlx(model_path: Path | None, synthetic: str | None, suite: tool_suite.Suite,
               cases: tuple[tool_suite.Case, ...], run: tool_run.RunSettings, repeats: int,
               n_ctx: int, target: Path, as_json: bool, err: Console) -> None:
    from gptoss_doctor.reports import mlx_cmd

    path = mlx_cmd.synthetic_model(synthetic, err) if synthetic else model_path
    assert path is not None
    if not mlx_cmd.chat_prompt_for(path):
        raise UsageError(f"{path.name} is not a gpt-oss model: the tool suite speaks harmony")
    snap = take_snapshot()
    engine, model = mlx_cmd.load(path, n_ctx, err)
    try:
        attempts, interrupted = _run_cases(engine, suite, cases, run, repeats, err)
        record: dict[str, Any] = {
            **envelope("tools", interrupted, snap, mlx_cmd.software(snap, engine), model),
            "config": {**mlx_cmd.config(engine, "MLX defaults (mlx-lm's prefill step)"),
                       **_run_config(suite, cases, run, repeats)},
            "memory": mlx_cmd.memory(engine)}
    finally:
        engine.close()
    _finish(record, attempts, target, as_json)


def _exit_for(record: dict[str, Any]) -> None:
    """130 after Ctrl-C, 1 when some attempts failed on engine or server errors."""
    err = Console(stderr=True)
    if record["status"] == "interrupted":
        err.print("interrupted: finished attempts were kept")
        sys.exit(130)
    failed = [a for a in record["attempts"] if a["end"] == "failed"]
    if failed:
        error = next((t.get("error") for t in failed[0]["turns"] if t.get("error")), "")
        err.print(f"{len(failed)} attempt(s) failed (kept and marked in the results): {error}")
        sys.exit(1)
