"""``gptoss-doctor bench speed|tools``: parse flags, call one service, render the result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gptoss_doctor.app import conformance, effort, endpoint, lmstudio, options, served, speed, tools
from gptoss_doctor.app.options import EndpointOptions, EngineFlags, SpeedOptions
from gptoss_doctor.app.records import to_results
from gptoss_doctor.bench import engines, tool_run, tool_suite
from gptoss_doctor.bench import speed as speed_suite
from gptoss_doctor.bench.synth import SHAPES
from gptoss_doctor.cli import output
from gptoss_doctor.reports import load_view, tables

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _options(*decorators: Decorator) -> Decorator:
    def apply(function: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function
    return apply


MODEL = _options(
    click.option("--model", "model_arg", metavar="PATH|NAME",
                 help="A GGUF file or MLX folder (with --endpoint: the served model's name)."),
    click.option("--synthetic", type=click.Choice(sorted(SHAPES)),
                 help="A synthetic gpt-oss of this shape (random weights, written on first "
                 "use)."),
    click.option("--engine", "engine_name", type=click.Choice(engines.names()), default="auto",
                 show_default=True, help="auto: MLX for a model folder, llama.cpp for a GGUF "
                 "file; with --synthetic, llama.cpp unless mlx is named."))
ENDPOINT = _options(
    click.option("--endpoint", "endpoint_url", metavar="URL", multiple=True,
                 callback=lambda ctx, _param, urls: _replicas(ctx, urls),
                 help="Benchmark an OpenAI-compatible server instead, e.g. "
                 "http://127.0.0.1:1234/v1 (LM Studio, Ollama, llama-server, vLLM); "
                 "--model then names the served model. bench speed: repeat it for replicas "
                 "(requests go round-robin)."),
    click.option("--api-key-env", metavar="VAR", default=None,
                 help="With --endpoint: the environment variable holding the API key "
                 "(default for LM Studio on :1234: LM_API_TOKEN when set). The key is never "
                 "printed or stored."))
OUTPUT = _options(
    click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
                 help="Results file (default: gptoss-bench-<suite>-<time>.json; - for "
                 "stdout)."),
    click.option("--json", "as_json", is_flag=True, help="Print the results record as JSON."))
LLAMA = _options(
    click.option("--threads", type=click.IntRange(min=1), default=None,
                 help="CPU threads (default: physical cores, like llama-bench)."),
    click.option("--n-gpu-layers", type=int, default=None,
                 help="Layers to offload (default: the recipe or the doctor's plan)."),
    click.option("--n-cpu-moe", type=click.IntRange(min=0), default=None,
                 help="Keep the experts of the first N layers on the CPU (default: the plan)."))


def _replicas(ctx: click.Context, urls: tuple[str, ...]) -> str | None:
    """The first --endpoint (what every command reads); the others, replicas for bench
    speed, go to ``replica_urls``."""
    ctx.params["replica_urls"] = urls[1:]
    if len(urls) > 1 and ctx.command.name != "speed":
        raise click.UsageError("--endpoint once: only bench speed spreads load over replicas")
    return urls[0] if urls else None


LOAD_FLAGS = ("rate", "arrivals", "duration_s", "requests", "warmup", "sweep", "slo",
              "workload", "load_seed")
LOAD = _options(
    click.option("--rate", default=None, help="With --endpoint: open loop, requests/s per "
                 "level, e.g. 1,2,4 (sent on schedule however far the server falls behind)."),
    click.option("--arrivals", default=None, help="With --rate: constant, poisson (default) "
                 "or gamma:<burstiness> (1 is Poisson, below 1 burstier)."),
    click.option("--duration", "duration_s", type=click.FloatRange(min=0, min_open=True),
                 default=None, help="Seconds per load level (default 30)."),
    click.option("--requests", type=click.IntRange(min=1, max=1_000_000), default=None,
                 help="Measured requests per load level (instead of --duration)."),
    click.option("--warmup", default=None, help="Sent first and kept out of the figures: "
                 "seconds (10s) or requests (20)."),
    click.option("--sweep", is_flag=True, help="Find the highest rate meeting --slo "
                 "(doubling from --rate, default 1, then bisection to 10%)."),
    click.option("--slo", default=None, help="e.g. ttft_p95=2s,itl_p95=100ms (ttft, itl, "
                 "tpot, e2e at pNN or mean; ms or s): goodput counts requests meeting all."),
    click.option("--workload", default=None, help="fixed (the --tests shapes), chat or "
                 "prefix:<N> (a shared N-token system prompt)."),
    click.option("--load-seed", type=click.IntRange(min=0), default=None,
                 help="Seed of the load run's arrival schedule, prompts and workload shapes "
                 "(default 0: the same run every time)."))


def _load(raw: dict[str, Any]) -> options.LoadOptions | None:
    """A load run's flags when any is given (or several --endpoint); else None: the
    closed-loop concurrency sweep as before."""
    replicas = tuple(raw.get("replica_urls") or ())
    if not replicas and all(raw.get(n) in (None, False) for n in LOAD_FLAGS):
        return None
    return options.LoadOptions(replicas, raw["rate"], raw["concurrency"], raw["arrivals"],
                               raw["duration_s"], raw["requests"], raw["warmup"],
                               raw["sweep"], raw["slo"], raw["workload"],
                               raw["load_seed"] or 0)


@click.group("bench")
def bench_group() -> None:
    """Benchmarks whose results files can be published and compared."""


def _endpoint(raw: dict[str, Any]) -> EndpointOptions | None:
    """The endpoint options, refusing in-process ones; None without ``--endpoint`` (or a
    recipe of an install through LM Studio, whose server is the endpoint)."""
    served_by = lmstudio.endpoint_recipe(raw["recipe"], raw["timeout_s"]) \
        if raw.get("recipe") and raw.get("endpoint_url") is None else None
    if served_by is not None:
        given = {**raw, "engine": None if raw.get("engine_name") == "auto" else
                 raw["engine_name"]}
        options.refuse(given, (*options.IN_PROCESS_SETTINGS, "synthetic", "protocol",
                               "depths", "model_arg"), "are set by the LM Studio recipe")
        return served_by
    if raw.get("endpoint_url") is None:
        takes = served.OPTIONS if served.serves(raw.get("engine_name") or "auto") else ()
        options.refuse(raw, tuple(n for n in options.ENDPOINT_ONLY if n not in takes),
                       "needs --endpoint URL")
        return None
    given = {**raw, "engine": None if raw.get("engine_name") == "auto" else raw["engine_name"]}
    options.refuse(given, options.IN_PROCESS_SOURCES,
                   "are for in-process runs; an endpoint serves its own model")
    options.refuse(given, options.IN_PROCESS_SETTINGS,
                   "set the in-process engine; with --endpoint the server's own settings apply")
    return EndpointOptions(raw["endpoint_url"], raw.get("model_arg"), raw.get("api_key_env"),
                           raw["timeout_s"])


@bench_group.command("speed")
@MODEL
@click.option("--reps", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--tests", "tests_text", default=None, help="e.g. pp512,tg128 (default).")
@click.option("--depths", default=None, help="Comma-separated KV depths, e.g. 0,4096.")
@click.option("--protocol", type=click.Choice(sorted(speed_suite.PROTOCOLS)), default=None,
              help="ggml: pp2048 and tg32 at depths 0..32768, as ggml-org publishes.")
@LLAMA
@click.option("--recipe", type=click.Path(path_type=Path, dir_okay=False),
              help="The recipe.json `gptoss-doctor install` wrote: its model and engine, or "
              "the server an install through LM Studio started.")
@click.option("--chat/--no-chat", default=True, show_default=True,
              help="Also measure TTFT and generation through a harmony prompt (gpt-oss).")
@click.option("--cooldown", "cooldown_s", type=click.FloatRange(min=0), default=0.0,
              show_default=True, help="Seconds of idle between tests, so heat from one test "
              "does not throttle the next.")
@ENDPOINT
@click.option("--concurrency", default=None,
              help="With --endpoint or --engine llama-server: parallel streams per level, "
              "e.g. 1,2,4,8 (default 1).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=120.0, show_default=True, help="With --endpoint: seconds per request.")
@LOAD
@OUTPUT
def speed_command(**raw: Any) -> None:
    """Speed tests named and measured like llama-bench, plus TTFT and chat speed.

    With --endpoint: the same shapes over streamed Chat Completions (TTFT, decode tok/s,
    end-to-end latency) at each --concurrency level.
    """
    server = _endpoint(raw)
    target = output.results_target("speed", raw["output"])
    if server is not None:
        tests = speed_suite.parse_tests(raw["tests_text"] or "pp512,tg128")
        given = _load(raw)
        ran = (endpoint.load_run(server, tests, given, output.feedback()) if given else
               endpoint.speed(server, tests, raw["reps"], raw["concurrency"] or "1",
                              output.feedback()))
        return _show_requests(ran, raw["as_json"], target)
    options.one_model_source(model=raw["model_arg"], recipe=raw["recipe"],
                             synthetic=raw["synthetic"])
    recipe = tools.read_recipe(raw["recipe"]) if raw["recipe"] else None
    path = recipe.model_path if recipe else Path(raw["model_arg"]) if raw["model_arg"] \
        else None
    opts = SpeedOptions(path, raw["synthetic"], recipe.engine if recipe else
                        raw["engine_name"], raw["reps"],
                        options.speed_tests(raw["tests_text"], raw["depths"], raw["protocol"]),
                        raw["protocol"], _flags(raw), raw["chat"], target, raw["cooldown_s"])
    if served.serves(opts.engine):
        ran = served.speed(opts, raw["concurrency"] or "1", output.feedback())
        return _show_requests(ran, raw["as_json"], target)
    measured = speed.run(opts, output.feedback())
    record = to_results(measured.record)
    output.save_results(record, target)
    output.show(record, raw["as_json"], target, tables.speed_table(record),
                (tables.chat_line(record), *tables.honesty_lines(record)))
    output.finish("interrupted" if measured.interrupted else "complete", 0, None, "tests")


def _show_requests(ran: endpoint.EndpointRun, as_json: bool, target: Path) -> None:
    output.save_results(ran.record, target)
    table = (load_view.load_table(ran.record) if ran.record.get("load") else
             tables.endpoint_speed_table(ran.record))
    output.show(ran.record, as_json, target, table)
    output.finish(ran.status, ran.failed, ran.first_error, "requests")


def _flags(raw: dict[str, Any]) -> EngineFlags:
    return EngineFlags(raw["threads"], raw["n_gpu_layers"], raw["n_cpu_moe"])


def _categories(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--category a,b --category c`` -> ("a", "b", "c"); ``tool_suite.select`` checks them."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _run_settings(raw: dict[str, Any]) -> tool_run.RunSettings:
    return tool_run.RunSettings(raw["reasoning"], raw["max_tokens"], raw["timeout_s"],
                                tool_run.Sampling(raw["temperature"], raw["top_p"], raw["seed"]),
                                raw["reasoning_back"])


@bench_group.command("tools")
@MODEL
@click.option("--recipe", type=click.Path(path_type=Path, dir_okay=False),
              help="The recipe.json `gptoss-doctor install` wrote (model and settings).")
@click.option("--regrade", type=click.Path(path_type=Path, dir_okay=False),
              help="Grade the completions stored in a results file again (no model).")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Attempts per case (k of pass@k and pass^k).")
@click.option("--reasoning", type=click.Choice(["low", "medium", "high"]), default="low",
              show_default=True)
@click.option("--category", "categories", multiple=True,
              help="Only these categories (repeat or comma-separate): "
              + ", ".join(tool_suite.ALL_CATEGORIES) + " (default: all but mcp).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Tokens the model may generate per turn.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="1.0 is OpenAI's recommendation for gpt-oss; 0 is greedy.")
@click.option("--top-p", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0,
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--reasoning-back/--no-reasoning-back", default=True, show_default=True,
              help="Keep each turn's reasoning in the prompt between tool calls (OpenAI's "
              "guidance for gpt-oss; with --endpoint: sent back as reasoning_content).")
@ENDPOINT
@click.option("--api", type=click.Choice(endpoint.APIS), default=None,
              help="With --endpoint (or an engine that serves, such as llama-server): "
              "tool calls through the server's own parsing, Chat Completions (chat, the "
              "default with --endpoint) or the Responses API (responses).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=300.0, show_default=True, help="Seconds per attempt.")
@click.option("--ctx", "n_ctx", type=click.IntRange(min=512), default=None,
              help="Context length to load the model with (default 16384; also with "
              "--recipe: the suite needs far less than a served model's context).")
@click.option("--mcp-config", type=click.Path(path_type=Path),
              is_flag=False, flag_value=str(tools.LMSTUDIO_MCP_CONFIG), default=None,
              help="Also start the MCP servers this mcp.json declares (LM Studio's and "
              "Cursor's format; without a value LM Studio's own, ~/.lmstudio/mcp.json) and "
              "offer their tools in the mcp cases. They run only with this flag.")
@click.option("--mcp-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds an MCP server may take to start or answer.")
@LLAMA
@OUTPUT
def tools_command(**raw: Any) -> None:
    """Tool-use benchmark: simple, multiple, parallel, irrelevance and act cases; mcp
    (act cases through the reference MCP server) when named.

    With --endpoint: the same cases through the server's own tool calling.
    """
    server = _endpoint(raw)
    if server is None:
        options.one_model_source(model=raw["model_arg"], recipe=raw["recipe"],
                                 synthetic=raw["synthetic"], regrade=raw["regrade"])
    if raw["regrade"] is not None:
        _regrade(raw["regrade"], raw["output"], raw["as_json"])
        return
    target = output.results_target("tools", raw["output"])
    raw["categories"], raw["mcp"] = tools.mcp_setup(
        raw["mcp_config"], raw["mcp_timeout"], _categories(raw["categories"]),
        in_process=server is None and not raw["api"])
    cases = tool_suite.select(tool_suite.load_suite(), raw["categories"])
    if server is not None or raw["api"]:  # the server's own tool parsing
        ran = endpoint.tools(server, list(cases), raw["repeats"], _run_settings(raw),
                             raw["api"] or "chat", output.feedback()) if server else \
            served.tools(_tools_options(raw), cases, raw["api"], output.feedback())
        record, status, failed, first = ran.record, ran.status, ran.failed, ran.first_error
    else:
        done = tools.run(_tools_options(raw), output.feedback())
        record = to_results(done.record)
        status = "interrupted" if done.interrupted else "complete"
        failed, first = tools.failures(record)
    output.save_results(record, target)
    output.show(record, raw["as_json"], target, tables.tools_table(record),
                (tables.quirks_line(record), tables.mcp_line(tools.mcp_calls(record))))
    output.finish(status, failed, first, "attempts")


def _tools_options(raw: dict[str, Any]) -> tools.ToolsOptions:
    recipe = tools.read_recipe(raw["recipe"]) if raw["recipe"] else None
    return tools.ToolsOptions(Path(raw["model_arg"]) if raw["model_arg"] else None,
                              raw["synthetic"], recipe, raw["engine_name"],
                              _categories(raw["categories"]), raw["repeats"],
                              _run_settings(raw), raw["n_ctx"], _flags(raw), raw.get("mcp"))


def _regrade(source: Path, destination: Path | None, as_json: bool) -> None:
    if destination is not None:
        output.results_target("tools", destination)
    done = tools.regrade(source)
    if done.suite_changed:
        output.note("note: the suite changed since this run; grades use today's cases")
    for moved in done.graders_changed:
        output.note(f"note: graded with {moved}")
    if destination is not None:
        output.save_results(done.record, destination)
    for change in done.changes:
        output.note(f"changed: {change}")
    if done.unknown:
        output.note(f"unknown: {len(done.unknown)} cases not in this suite, grades kept: "
                    + ", ".join(done.unknown[:5]))
    output.note(f"regraded {len(done.record['attempts'])} attempts: "
                + (f"{len(done.changes)} differences" if done.changes
                   else "every grade reproduced (quirks, strict flags, texts, stop reasons "
                   "and scores too)"))
    output.show(done.record, as_json, destination or Path("(not saved)"),
                tables.tools_table(done.record), (tables.quirks_line(done.record),))
    if done.changes:
        raise SystemExit(tools.REGRADE_CHANGED)


@bench_group.command("conformance")
@MODEL
@ENDPOINT
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=120.0, show_default=True, help="Seconds per request.")
@click.option("--unforced", is_flag=True, help="Plain requests: no grammar or logit bias "
              "forcing what the model writes (for a real model on a server without "
              "llama.cpp's grammar).")
@OUTPUT
def conformance_command(**raw: Any) -> None:
    """Does a server speak gpt-oss's harmony format correctly? Reasoning in its own field
    and streamed, no markup in content or tool names, calls with the recipient in the role
    header parsed, tool results accepted, reasoning effort honoured per API.

    --endpoint URL checks a running server; --engine llama-server (--model or --synthetic)
    serves the model with llama.cpp's own server first. Exit 1 when a check fails.
    """
    target = output.results_target("conformance", raw["output"])
    server = _endpoint(raw)
    if server is not None:
        ran = conformance.run(server, output.feedback(), None, not raw["unforced"])
    elif served.serves(raw["engine_name"]):
        options.one_model_source(model=raw["model_arg"], synthetic=raw["synthetic"])
        ran = served.conformance(raw["engine_name"],
                                 Path(raw["model_arg"]) if raw["model_arg"] else None,
                                 raw["synthetic"], EngineFlags(None, None, None),
                                 raw["timeout_s"], output.feedback(), not raw["unforced"])
    else:
        raise click.UsageError("give --endpoint URL, or --engine llama-server with --model "
                               "or --synthetic")
    output.save_results(ran.record, target)
    output.show(ran.record, raw["as_json"], target, tables.conformance_table(ran.record))
    output.finish(ran.status, ran.failed, ran.first_error, "checks")


@bench_group.command("effort")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def effort_command(files: tuple[Path, ...], as_json: bool) -> None:
    """Is reasoning effort honoured? Reasoning tokens per effort in tool-use results files
    (bench tools --reasoning low|medium|high, in-process or --endpoint with either --api),
    with one-sided Mann-Whitney and permutation tests between efforts."""
    comparison = effort.compare(files)
    if as_json:
        output.echo_json(comparison)
    else:
        output.stdout_console().print(tables.effort_table(comparison))
