"""Self-contained HTML reports: the only module that imports ``jinja2``.

One file with inline CSS and SVG, no JavaScript and a Content-Security-Policy that forbids
every network request, so it works from a USB stick and cannot phone home. Every string from
a results file goes through Jinja's autoescaping (model output included); the source records
are embedded as JSON (with ``<`` escaped) so the page can be re-parsed.

One record gives a full report; several give a comparison grouped by comparability: runs
whose key properties differ in model, test shape or settings are shown apart with the reason.
Speed runs and tool-use runs are compared in their own tables; a throttled or contended run
is flagged and never shares a table with a clean one. Runs measured over an
OpenAI-compatible endpoint stand next to in-process runs of the same model and tests, with
what differs (method, server, settings) listed under the table.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gptoss_doctor import __version__
from gptoss_doctor.reports import serving_view
from gptoss_doctor.reports.charts import Chart
from gptoss_doctor.reports.figures import concurrency_chart, depth_charts, tool_chart
from gptoss_doctor.reports.terminal_text import plain
from gptoss_doctor.secrets import scrub

if TYPE_CHECKING:
    import jinja2
    import markupsafe

CHART_WIDTH = 640
# Properties that must be equal for two runs' numbers to be compared side by side; hardware
# and engine are what a comparison is about, so they may differ.
SAME_FOR_COMPARISON = ("model_sha256", "tests", "flash_attn", "n_batch", "n_ubatch")
# Settings of one engine: runs of different engines (llama.cpp, MLX, a server whose load
# settings the client cannot see) compare on the model and tests, and the differences are
# listed under their table.
SETTINGS = ("flash_attn", "n_batch", "n_ubatch")
DIFFERENCES = ("method", "engine", "model_format", "model_file", "renderer", "api", "host_class",
               "server", "cpu", "gpus", "prefill_step_size",
               "threads", "n_gpu_layers", "n_cpu_moe", "flash_attn", "n_batch", "n_ubatch",
               "concurrency", "reasoning_back")
# Tool-use scores compare when the same cases ran on the same model the same way.
SAME_FOR_TOOLS = ("model_sha256", "suite_sha256", "tests", "reasoning", "sampling",
                  "max_tokens")
PREVIEW_CHARS = 400


@dataclass(frozen=True, slots=True)
class Run:
    """One results record prepared for display."""

    label: str
    record: dict[str, Any]

    @property
    def rates(self) -> dict[str, float | None]:
        return {t["name"]: t["mean_ts"] for t in self.record.get("tests", [])}

    @property
    def is_tools(self) -> bool:
        return bool(self.record["suite"] == "tools")

    @property
    def is_conformance(self) -> bool:
        return bool(self.record["suite"] == "conformance")

    @property
    def is_endpoint(self) -> bool:
        return "endpoint" in self.record

    @property
    def unclean(self) -> tuple[str, ...]:
        return unclean(self.record)


def unclean(record: dict[str, Any]) -> tuple[str, ...]:
    """``("throttled", "contended")`` or part of it: what made a run's numbers unclean."""
    cond = record.get("conditions")
    if not isinstance(cond, dict):
        return ()
    return tuple(name for name in ("throttled", "contended") if cond.get(name) is True)


def label_for(record: dict[str, Any], index: int) -> str:
    machine = record["machine"]
    gpu = ", ".join(g["name"] for g in machine["gpus"]) or machine["cpu"]["brand"] or "CPU"
    suite = {"tools": " · tool use", "conformance": " · conformance"}.get(record["suite"], "")
    endpoint = record.get("endpoint")
    if endpoint:
        where = gpu if endpoint["host_class"] == "local" else urlsplit(endpoint["url"]).netloc
        server = endpoint["headers"].get("server")
        return f"#{index + 1} {where} · endpoint{f' ({server})' if server else ''}{suite}"
    return f"#{index + 1} {gpu} · {record['config']['engine']}{suite}"


def comparable(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """None when ``a`` and ``b`` can be compared, else the reason they cannot.

    Runs of one engine compare on the model file's hash and the settings; runs of
    different engines (llama.cpp, MLX, a server) on the model itself — its name and whether
    the weights are synthetic — since the files and knobs differ by nature.
    """
    if a["suite"] != b["suite"]:
        return "a different suite"
    if unclean(a) != unclean(b):  # a throttled or contended run never sits beside a clean one
        return f"{' and '.join(unclean(b) or unclean(a))} run"
    ka, kb = a["key_properties"], b["key_properties"]
    one_engine = (ka.get("engine"), ka.get("method")) == (kb.get("engine"), kb.get("method"))
    hashed = ka.get("model_sha256") is not None and kb.get("model_sha256") is not None
    keys: list[str] = list(SAME_FOR_TOOLS if a["suite"] == "tools" else SAME_FOR_COMPARISON)
    if not (one_engine and hashed):
        keys = ["model", "synthetic", *(k for k in keys if k != "model_sha256")]
    for key in keys:
        if not one_engine and key in SETTINGS:
            continue
        if ka.get(key) != kb.get(key):
            return f"different {key.replace('_', ' ')}"
    return None


def differences(group: list[Run]) -> list[str]:
    """What differs between the runs of one comparable group, e.g. "method: in-process,
    endpoint" — the labels a side-by-side table needs."""
    found = []
    for key in DIFFERENCES:
        values = [run.record["key_properties"].get(key) for run in group]
        if any(v != values[0] for v in values):
            shown = ", ".join("—" if v is None else
                              ", ".join(map(str, v)) or "none" if isinstance(v, list)
                              else str(v) for v in values)
            found.append(f"{key.replace('_', ' ')}: {shown}")
    return found


def groups(runs: list[Run]) -> list[tuple[list[Run], str | None]]:
    """Runs grouped with the first run they are comparable with; each group's reason for
    standing apart from the first group (None for the first)."""
    grouped: list[list[Run]] = []
    reasons: list[str | None] = []
    for run in runs:
        for group in grouped:
            if comparable(group[0].record, run.record) is None:
                group.append(run)
                break
        else:
            grouped.append([run])
            reasons.append(None if not reasons
                           else comparable(grouped[0][0].record, run.record))
    return list(zip(grouped, reasons, strict=True))


def bar_chart(runs: list[Run], test: str) -> dict[str, Any]:
    values = [(run.label, run.rates.get(test)) for run in runs]
    top = max((v for _, v in values if v), default=1.0)
    bar_height = 22
    return {"test": test, "height": bar_height * len(values) + 8, "width": CHART_WIDTH,
            "bars": [{"label": label, "value": value, "y": i * bar_height + 4,
                      "length": round((CHART_WIDTH - 330) * (value or 0) / top, 1)}
                     for i, (label, value) in enumerate(values)]}


def speedups(runs: list[Run], baseline: int) -> dict[str, dict[str, float | None]]:
    """Per run and test: rate / baseline rate (None where either is missing, and where one
    was measured over HTTP and the other in-process: not the same quantity)."""
    base = runs[baseline].rates
    table: dict[str, dict[str, float | None]] = {}
    for run in runs:
        row: dict[str, float | None] = {}
        same_method = run.is_endpoint == runs[baseline].is_endpoint
        for test, value in run.rates.items():
            reference = base.get(test)
            row[test] = value / reference if value and reference and same_method else None
        table[run.label] = row
    return table


# The reproduce commands' words from a results file (anyone's, on a published site) are
# shell-quoted: a model path of "x.gguf; curl … | sh" must stay one word when pasted.
def _endpoint_source(record: dict[str, Any]) -> str:
    endpoint = record["endpoint"]
    key = (f" --api-key-env {shlex.quote(str(endpoint['api_key_env']))}"
           if endpoint["api_key_env"] else "")
    api = " --api responses" if endpoint["api"] == "responses" else ""
    return (f"--endpoint {shlex.quote(str(endpoint['url']))} "
            f"--model {shlex.quote(str(endpoint['model_id']))}{key}{api}")


def _model_source(model: dict[str, Any]) -> str:
    name = model.get("name") or ""
    if model.get("synthetic") and name.startswith("gpt-oss-"):
        return f"--synthetic {shlex.quote(name.split('-')[2].split(' ')[0])}"
    return f"--model {shlex.quote(str(model['path']))}"


def tool_cases(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per case: attempts passed, failure categories, mean latency, a preview of the first
    attempt's output (escaped by the template like every other string)."""
    cases: dict[str, list[dict[str, Any]]] = {}
    for attempt in record["attempts"]:
        cases.setdefault(attempt["case"], []).append(attempt)
    rows = []
    for case_id, attempts in cases.items():
        first = attempts[0]["turns"][0]["completion_text"] if attempts[0]["turns"] else ""
        rows.append({"id": case_id, "category": attempts[0]["category"],
                     "passed": sum(a["grade"]["passed"] for a in attempts),
                     "attempts": len(attempts),
                     "failures": sorted({a["grade"]["failure"] for a in attempts
                                         if a["grade"]["failure"]}),
                     "reason": next((a["grade"]["reason"] for a in attempts
                                     if not a["grade"]["passed"]), ""),
                     "latency_s": sum(a["latency_s"] for a in attempts) / len(attempts),
                     "preview": first[:PREVIEW_CHARS]})
    return rows


def _conformance_command(record: dict[str, Any]) -> str:
    served = record["endpoint"].get("served")
    if served:  # the server was started by gptoss-doctor itself
        return (f"gptoss-doctor bench conformance --engine {shlex.quote(str(served['engine']))} "
                f"{_model_source(record['model'])}")
    return f"gptoss-doctor bench conformance {_endpoint_source(record)}"


def conformance_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per check over the conformance runs: (title, each run's verdict or None)."""
    titles: dict[str, str] = {}
    for run in runs:
        for check in run.record["conformance"]["checks"]:
            titles.setdefault(check["check"], check["title"])
    return [{"title": title, "verdicts": [next(
        (c for c in run.record["conformance"]["checks"] if c["check"] == name), None)
        for run in runs]} for name, title in titles.items()]


def reproduce_command(record: dict[str, Any]) -> str:
    if record["suite"] == "conformance":
        return _conformance_command(record)
    config = record["config"]
    endpoint = "endpoint" in record
    source = _endpoint_source(record) if endpoint else _model_source(record["model"])
    threads = [f"--threads {config['threads']}"] if config.get("threads") else []
    if config["engine"] == "mlx":
        source += " --engine mlx"
    if record["suite"] == "tools":
        sampling = config["sampling"]
        parts = ["gptoss-doctor bench tools", source, f"--repeats {config['repeats']}",
                 f"--reasoning {config['reasoning']}", f"--max-tokens {config['max_tokens']}",
                 f"--temperature {sampling['temperature']}", f"--top-p {sampling['top_p']}",
                 f"--seed {sampling['seed']}", *threads]
        if config.get("categories") and len(config["categories"]) < 5:
            parts.append(f"--category {shlex.quote(','.join(map(str, config['categories'])))}")
        if record["key_properties"].get("reasoning_back") is False:
            parts.append("--no-reasoning-back")
        return " ".join(parts)
    tests = sorted({f"{t['kind']}{t['n_tokens']}" for t in record["tests"]})
    depths = sorted({t["depth"] for t in record["tests"]})
    parts = ["gptoss-doctor bench speed", source, f"--tests {','.join(tests)}",
             f"--reps {config['reps']}", *threads]
    if endpoint:
        parts.append(f"--concurrency {','.join(str(n) for n in config['concurrency'])}")
    if depths != [0]:
        parts.append(f"--depths {','.join(str(d) for d in depths)}")
    if config.get("cooldown_s"):
        parts.append(f"--cooldown {config['cooldown_s']:g}")
    return " ".join(parts)


def _visible(value: Any) -> Any:
    """Every string shown on the page: secrets scrubbed, control and bidirectional
    characters (which could reorder what a reader sees) made visible."""
    import markupsafe

    if isinstance(value, markupsafe.Markup):  # built by the page itself (escaped JSON, SVG)
        return value
    return plain(value) if isinstance(value, str) else value


def _embedded_json(records: list[dict[str, Any]]) -> str:
    # Inside <script> only "</" can end the element early; \u003c keeps the JSON valid.
    return json.dumps(records).replace("<", "\\u003c")


def _run_charts(run: Run) -> list[Chart]:
    one = [(run.label, run.record)]
    return [chart for chart in (concurrency_chart(one), tool_chart(one)) if chart]


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("gptoss_doctor.reports", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, finalize=_visible)


def svg(chart: Chart) -> markupsafe.Markup:
    """A chart's SVG for a template: built (and escaped) by ``reports.charts``."""
    import markupsafe

    return markupsafe.Markup(chart.svg)  # every string in it went through html.escape


def render_template(name: str, **context: Any) -> str:
    """Any page of ``reports/templates`` with the report's escaping, secrets scrubbed."""
    return scrub(_environment().get_template(name).render(version=__version__, svg=svg,
                                                          **context))


def render(records: list[dict[str, Any]], baseline: int = 0,
           verdicts: list[list[dict[str, Any]]] | None = None,
           links: tuple[tuple[str, str], ...] = (),
           effort: list[dict[str, Any]] | None = None) -> str:
    """The HTML page for ``records`` (one: full report; several: comparison); ``links``
    (text, relative URL) head the page, as on a published site's run pages."""
    runs = [Run(label_for(r, i), r) for i, r in enumerate(records)]
    grouped = groups([run for run in runs if not run.is_tools and not run.is_conformance])
    conformance = [run for run in runs if run.is_conformance]
    tool_runs = [run for run in runs if run.is_tools]
    tool_groups = groups(tool_runs) if len(tool_runs) > 1 else []  # one run has its own table
    # Bars only ever put comparable runs side by side.
    bars = [bar_chart(group, name) for group, _reason in grouped if len(group) > 1
            for name in group[0].rates]
    return render_template(
        "report.html.j2", runs=runs, single=len(runs) == 1, groups=grouped,
        baseline=baseline, speedups=speedups(runs, baseline), tool_groups=tool_groups,
        differences=differences, links=links, conformance_runs=conformance,
        effort=effort or [],
        conformance_rows=conformance_rows(conformance),
        tool_cases={run.label: tool_cases(run.record) for run in runs if run.is_tools},
        depth_charts={run.label: depth_charts(run.record) for run in runs},
        run_charts={run.label: _run_charts(run) for run in runs},
        serving_charts={run.label: serving_view.from_load(run.record.get("load"))
                        for run in runs},
        bar_charts=bars,
        reproduce={run.label: reproduce_command(run.record) for run in runs},
        verdicts=verdicts or [[] for _ in runs],
        embedded=_embedded_json(records))
