"""The ``bench tools`` service (in-process) and ``--regrade``.

The suite runs on any registered engine: prompts rendered and completions parsed with
openai-harmony, every raw completion kept. A recipe written by ``install`` names the model,
its engine and its load settings; the user's flags override single settings. Regrade
grades stored completions again without a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor import __version__
from gptoss_doctor.app import models
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.app.options import EngineFlags
from gptoss_doctor.app.records import (
    Envelope,
    JsonObject,
    ToolsConfig,
    ToolsRecord,
    ToolsSettings,
    now,
)
from gptoss_doctor.bench import (
    engines,
    grade,
    harmony,
    mcp_config,
    mcp_suite,
    results,
    tool_run,
    tool_suite,
)
from gptoss_doctor.bench import regrade as bench_regrade
from gptoss_doctor.bench.engine import Adapter
from gptoss_doctor.errors import UsageError
from gptoss_doctor.install.recipe import RECIPE_KIND
from gptoss_doctor.jsonin import Limits, read_json
from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.serde import SerdeError, from_json, to_json
from gptoss_doctor.settings import current

DEFAULT_CTX = 16384
RECIPE_LIMITS = Limits(max_bytes=1024 * 1024, max_depth=8, max_text=4096)
LMSTUDIO_MCP_CONFIG = Path(".")
"""``--mcp-config`` given without a file: LM Studio's own ``mcp.json`` (no config file can
be named ".", a folder)."""
REGRADE_CHANGED = 3
"""``--regrade``'s exit status when anything did not reproduce (a grade, quirk, strict flag,
score, stored text, stop reason or end): a check in a script or CI fails on it."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """What ``bench tools --recipe`` takes from a recipe ``install`` wrote."""

    model_path: Path
    engine: str
    settings: LoadSettings | None
    path: Path


@dataclass(frozen=True, slots=True)
class McpSetup:
    """The ``mcp`` category's servers: the reference server, and the servers of the user's
    configuration (LM Studio's ``mcp.json``) only when ``--mcp-config`` names it."""

    servers: tuple[mcp_config.ServerSpec, ...]
    config: Path | None
    timeout_s: float

    def describe(self) -> dict[str, Any]:
        """What the results record of it (no command line: it may hold a secret)."""
        return {"config": str(self.config) if self.config else None,
                "timeout_s": self.timeout_s,
                "servers": [{"name": mcp_config.REFERENCE, "transport": "stdio",
                             "source": "reference"},
                            *({"name": s.name, "transport": s.transport, "source": s.source}
                              for s in self.servers)]}


def mcp_setup(config: Path | None, timeout_s: float, categories: tuple[str, ...],
              in_process: bool) -> tuple[tuple[str, ...], McpSetup | None]:
    """The categories to run and the MCP setup they need (None without ``mcp``);
    ``--mcp-config`` alone runs the ``mcp`` cases. The user's servers are read (and
    refused with one line) here, before any model loads; none of them runs yet."""
    if config is not None and not categories:
        categories = (tool_suite.MCP,)
    if tool_suite.MCP not in categories:
        if config is not None:
            raise UsageError("--mcp-config serves the mcp cases", "add --category mcp")
        return categories, None
    if not in_process:
        raise UsageError("the mcp cases run on an in-process engine (their MCP servers "
                         "start for every attempt)", "leave out --endpoint and --api")
    mcp_suite.toolbox()  # the SDK is installed, or one line saying how to install it
    if config == LMSTUDIO_MCP_CONFIG:
        config = mcp_config.default_path(current().lmstudio_home)
    servers = mcp_config.read_config(config) if config is not None else ()
    return categories, McpSetup(servers, config, timeout_s)


@dataclass(frozen=True, slots=True)
class ToolsOptions:
    model: Path | None
    synthetic: str | None
    recipe: Recipe | None
    engine: str
    categories: tuple[str, ...]
    repeats: int
    run: tool_run.RunSettings
    n_ctx: int | None
    flags: EngineFlags
    mcp: McpSetup | None = None


@dataclass(frozen=True, slots=True)
class ToolsRun:
    record: ToolsRecord
    interrupted: bool


def read_recipe(path: Path) -> Recipe:
    """The model, engine and load settings of a recipe; one clear line if it is not one."""
    recipe = read_json(path, RECIPE_LIMITS, kind="a JSON recipe")
    if not isinstance(recipe, dict) or recipe.get("kind") != RECIPE_KIND:
        raise UsageError(f"{path} is not a gptoss-doctor recipe",
                         "use the recipe.json that `gptoss-doctor install` wrote")
    engine = recipe.get("engine")
    if engine not in engines.ENGINES:
        raise UsageError(f"{path} is for the {engine} engine, which bench tools cannot run",
                         "give the model with --model")
    if not isinstance(recipe.get("model_path"), str):
        raise UsageError(f"{path} names no model_path")
    settings = None
    raw = recipe.get("load_settings")
    if isinstance(raw, dict):
        try:
            settings = from_json(LoadSettings, raw, "load_settings")
        except SerdeError as exc:
            raise UsageError(f"{path}: {exc.message}") from None
    return Recipe(Path(recipe["model_path"]), str(engine), settings, path)


def _run_config(suite: tool_suite.Suite, cases: tuple[tool_suite.Case, ...],
                run: tool_run.RunSettings, repeats: int, mcp: McpSetup | None = None
                ) -> ToolsSettings:
    described = {"mcp": mcp.describe()} if mcp is not None else {}
    return ToolsSettings(harmony.RENDERER, run.reasoning, repeats, run.max_tokens, run.timeout_s,
                         to_json(run.sampling),
                         tuple(c for c in tool_suite.ALL_CATEGORIES
                               if any(case.category == c for case in cases)),
                         {"name": suite.name, "sha256": suite.sha256, "cases": len(cases),
                          "graders": grade.grader_versions(), **described},
                         run.reasoning_back)


def _settings(options: ToolsOptions, adapter: Adapter, planned: models.PlannedSettings,
              threads: int | None) -> tuple[LoadSettings, str]:
    base, source = planned.settings, adapter.own_settings or planned.source
    if options.recipe is not None and options.recipe.settings is not None:
        base = options.recipe.settings.for_build(adapter.gpu_offload())
        source = f"the recipe {options.recipe.path}"
    return base.with_overrides(n_ctx=options.n_ctx or DEFAULT_CTX,
                               n_threads=options.flags.threads or threads,
                               n_gpu_layers=options.flags.n_gpu_layers,
                               n_cpu_moe=options.flags.n_cpu_moe), source


def run(options: ToolsOptions, feedback: Feedback) -> ToolsRun:
    """Load, run every selected case ``repeats`` times, close; the typed record."""
    suite = tool_suite.load_suite()
    cases = tool_suite.select(suite, options.categories)
    ready = models.prepare(options.recipe.engine if options.recipe else options.engine,
                           options.recipe.model_path if options.recipe else options.model,
                           options.synthetic, options.flags, True, feedback)
    adapter, path, facts, snap = ready.adapter, ready.path, ready.facts, ready.snap
    settings, source = _settings(options, adapter, ready.plan, models.threads_for(snap))
    feedback.note(models.loading_note(ready, "synthetic random weights: expect failures"))
    session = adapter.load(path, settings)
    try:
        attempts, interrupted = run_cases(session, suite, cases, options, feedback)
        envelope = Envelope("tools", "interrupted" if interrupted else "complete",
                            to_dict(snap), session.software(snap.os.python_version, ()),
                            facts)
        record = ToolsRecord(envelope, ToolsConfig(session.config(source), _run_config(
            suite, cases, options.run, options.repeats, options.mcp)), tuple(attempts),
            grade.scores(tool_run.scored(attempts)),
            session.memory(models.peak_rss_bytes(), None), session.extras())
    finally:
        session.close()
    return ToolsRun(record, interrupted)


def run_cases(engine: tool_run.GenerationEngine, suite: tool_suite.Suite,
              cases: tuple[tool_suite.Case, ...], options: ToolsOptions, feedback: Feedback
              ) -> tuple[list[dict[str, Any]], bool]:
    repeats = options.repeats
    toolbox = None if options.mcp is None else mcp_suite.toolbox(
        options.mcp.servers, options.mcp.timeout_s, feedback.note)
    with feedback.task("tool use", len(cases) * repeats) as task:
        def advance(case: tool_suite.Case, attempt: int) -> None:
            task.update(description=f"{case.id} ({attempt + 1}/{repeats})",
                        completed=cases.index(case) * repeats + attempt)

        return tool_run.run_suite(engine, suite, cases, options.run, repeats, progress=advance,
                                  toolbox=toolbox)


@dataclass(frozen=True, slots=True)
class Regraded:
    record: JsonObject
    changes: tuple[str, ...]  # everything that did not reproduce (bench.regrade)
    unknown: tuple[str, ...]  # case ids this suite does not have
    suite_changed: bool
    graders_changed: tuple[str, ...]  # "openai-harmony 0.0.4 -> 0.0.8", ...


def regrade(source: Path) -> Regraded:
    """Grade the completions stored in a results file again (no model)."""
    record = results.load(source)
    if record["suite"] != "tools":
        raise UsageError(f"{source} holds {record['suite']} results, not tool-use results")
    suite = tool_suite.load_suite()
    done = bench_regrade.regrade(record["attempts"], suite, record.get("scores"))
    graders = grade.grader_versions()
    stored = record["config"]["suite"].get("graders") or {}
    moved = tuple(f"{name} {stored.get(name, 'unrecorded')} -> {version}"
                  for name, version in graders.items() if stored.get(name) != version)
    regraded = {**record, "attempts": done.attempts, "scores": done.scores,
                "regraded": {"at": now(), "tool_version": __version__,
                             "changes": done.changes, "unknown_cases": done.unknown,
                             "graders": graders}}
    return Regraded(regraded, tuple(done.changes), tuple(done.unknown),
                    record["config"]["suite"]["sha256"] != suite.sha256, moved)


def mcp_calls(record: JsonObject) -> dict[str, int]:
    """MCP calls per server over every attempt of a run (empty without ``mcp`` cases)."""
    counts: dict[str, int] = {}
    for attempt in record["attempts"]:
        for server, n in (attempt.get("mcp") or {}).get("calls_by_server", {}).items():
            counts[server] = counts.get(server, 0) + n
    return counts


def failures(record: JsonObject) -> tuple[int, str | None]:
    """How many attempts failed on engine or server errors, and the first error."""
    failed = [a for a in record["attempts"] if a["end"] == "failed"]
    if not failed:
        return 0, None
    return len(failed), next((t.get("error") for t in failed[0]["turns"] if t.get("error")), "")
