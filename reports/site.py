"""A published results site: the pages of ``gptoss-doctor publish``, as text.

``pages(collected)`` returns every file of the site by relative path: ``index.html`` (the
overview charts, the comparable groups, a row per run), ``runs/<id>.html`` (the full
single-run report, with the record embedded as JSON), ``groups/<id>.html`` (comparable runs
side by side, with their charts) and ``index.json`` (what is there, machine-readable:
``SITE_KIND``, schema version 1). Pages are static HTML with the report's
Content-Security-Policy (nothing loads, nothing runs); ``app.publish.write_site`` writes
them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor import __version__
from gptoss_doctor.app.feedback import Feedback, Task
from gptoss_doctor.app.publish import SITE_KIND, SITE_SCHEMA_VERSION, Collected, PublishedRun
from gptoss_doctor.reports import figures
from gptoss_doctor.reports.charts import Chart
from gptoss_doctor.reports.html import Run, groups, label_for, render, render_template

SHOWN_VALUES = 6  # a property with more distinct values in a group is counted, not listed
GROUP_KEYS = ("model", "synthetic", "tests", "flash_attn", "n_batch", "n_ubatch", "reasoning",
              "max_tokens")
SPREAD_KEYS = ("method", "engine", "cpu", "gpus", "server", "threads", "n_gpu_layers",
               "n_cpu_moe", "flash_attn", "n_batch", "n_ubatch", "concurrency")


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    title: str
    runs: tuple[PublishedRun, ...]
    labels: tuple[str, ...]

    @property
    def page(self) -> str:
        return f"groups/{self.id}.html"


def _title(record: dict[str, Any]) -> str:
    key = record.get("key_properties") or {}
    what = "tool use" if record["suite"] == "tools" else ", ".join(key.get("tests") or [])
    if record["suite"] == "tools":
        what += f", reasoning {key.get('reasoning')}"
    flags = [name for name in ("throttled", "contended")
             if (record.get("conditions") or {}).get(name) is True]
    model = str(key.get("model") or "unknown model")
    synthetic = " (synthetic weights)" if key.get("synthetic") and "synthetic" not in model \
        else ""
    return (f"{model}{synthetic} · {what}"
            + (f" · {' and '.join(flags)}" if flags else ""))


def site_groups(runs: Sequence[PublishedRun], labels: dict[str, str]) -> list[Group]:
    """Comparable runs together (``reports.html.groups``), largest group first."""
    by_id = {run.id: run for run in runs}
    shown = [Run(labels[run.id], {**run.record, "_id": run.id}) for run in runs]
    found = []
    for members, _reason in groups(shown):
        ids = [member.record["_id"] for member in members]
        found.append(Group(f"g-{ids[-1]}", _title(members[0].record),
                           tuple(by_id[i] for i in ids), tuple(labels[i] for i in ids)))
    return sorted(found, key=lambda g: (-len(g.runs), g.title))


def spread(group: Group) -> list[str]:
    """What differs within a group: the values, or how many distinct ones there are."""
    lines = []
    for key in SPREAD_KEYS:
        values = list(dict.fromkeys(json.dumps((r.record.get("key_properties") or {}).get(key))
                                    for r in group.runs))
        if len(values) > SHOWN_VALUES:
            lines.append(f"{key.replace('_', ' ')}: {len(values)} different values")
        elif len(values) > 1:
            lines.append(f"{key.replace('_', ' ')}: " + ", ".join(
                _shown(json.loads(v)) for v in values))
    return lines


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return " + ".join(str(v) for v in value) or "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _charts(pairs: list[tuple[str, dict[str, Any]]]) -> list[Chart]:
    made = (figures.bandwidth_chart(pairs), figures.prediction_chart(pairs),
            figures.depth_compare_chart(pairs), figures.concurrency_chart(pairs),
            figures.tool_chart(pairs))
    return [chart for chart in made if chart]


def index_json(collected: Collected, found: list[Group], group_of: dict[str, str]) -> str:
    return json.dumps({
        "kind": SITE_KIND, "schema_version": SITE_SCHEMA_VERSION, "tool_version": __version__,
        "redacted": collected.redacted, "removed": collected.removed,
        "runs": [{"id": run.id, "page": f"runs/{run.id}.html", "group": group_of[run.id],
                  **run.summary} for run in collected.runs],
        "groups": [{"id": g.id, "page": g.page, "title": g.title,
                    "runs": [run.id for run in g.runs]} for g in found],
    }, indent=1) + "\n"


def pages(collected: Collected, feedback: Feedback) -> dict[str, str]:
    """Every file of the site by relative path (a progress bar while they render)."""
    labels = {run.id: label_for(run.record, i) for i, run in enumerate(collected.runs)}
    found = site_groups(collected.runs, labels)
    group_of = {run.id: g.id for g in found for run in g.runs}
    out: dict[str, str] = {}
    with feedback.task("rendering pages", total=len(collected.runs) + len(found) + 1) as task:
        _render(collected, found, labels, group_of, out, task)
    return out


def _render(collected: Collected, found: list[Group], labels: dict[str, str],
            group_of: dict[str, str], out: dict[str, str], task: Task) -> None:
    titles = {g.id: g.title for g in found}
    for run in collected.runs:
        out[f"runs/{run.id}.html"] = render(
            [run.record], links=(("all runs", "../index.html"),
                                 (f"comparable runs: {titles[group_of[run.id]]}",
                                  f"../groups/{group_of[run.id]}.html")))
        task.update(advance=1)
    for g in found:
        pairs = [(label, run.record) for label, run in zip(g.labels, g.runs, strict=True)]
        out[g.page] = render_template(
            "site_group.html.j2", group=g, rows=_rows(g.runs, labels, group_of, "../"),
            spread=spread(g), charts=_charts(pairs), columns=_columns(g),
            home="../index.html")
        task.update(advance=1)
    everything = [(labels[run.id], run.record) for run in collected.runs]
    out["index.html"] = render_template(
        "site_index.html.j2", collected=collected, groups=found,
        rows=_rows(collected.runs, labels, group_of, ""),
        charts=[c for c in (figures.bandwidth_chart(everything),
                            figures.prediction_chart(everything)) if c])
    out["index.json"] = index_json(collected, found, group_of)
    task.update(advance=1)


def envelope(collected: Collected, target: Path, written: dict[str, str]) -> dict[str, Any]:
    """``publish --json``: where the site is, what is in it, what was left out."""
    return {"kind": "gptoss-doctor/publish", "schema_version": 1, "site": str(target),
            "runs": len(collected.runs), "pages": len(written),
            "bytes": sum(len(text.encode()) for text in written.values()),
            "duplicates": collected.duplicates, "skipped": list(collected.skipped),
            "left_out": list(collected.left_out),
            "redacted": collected.redacted, "removed": collected.removed}


def _rows(runs: Sequence[PublishedRun], labels: dict[str, str], group_of: dict[str, str],
          prefix: str) -> list[dict[str, Any]]:
    return [{"id": run.id, "label": labels[run.id], "href": f"{prefix}runs/{run.id}.html",
             "group": f"{prefix}groups/{group_of[run.id]}.html", **run.summary}
            for run in runs]


def _columns(group: Group) -> dict[str, list[str]]:
    """The group's table: a column per test (t/s) or tool category (pass@k), a row per run."""
    tools = group.runs[0].record["suite"] == "tools"
    names = list(dict.fromkeys(
        name for run in group.runs
        for name in (run.record["scores"]["by_category"] if tools
                     else [t["name"] for t in run.record.get("tests") or []])))
    table = {"": names}
    for run in group.runs:
        if tools:
            scores = run.record["scores"]["by_category"]
            table[run.id] = [f"{100 * scores[n]['pass_at_k']:.0f}%" if n in scores else "—"
                             for n in names]
        else:
            rates = {t["name"]: t.get("mean_ts") for t in run.record.get("tests") or []}
            table[run.id] = [f"{rates[n]:.2f}" if rates.get(n) is not None else "—"
                             for n in names]
    return table


def summary_lines(collected: Collected, target: Path) -> list[str]:
    """What ``publish`` says when it is done (text)."""
    lines = [f"site: {target / 'index.html'} ({len(collected.runs)} runs)"]
    if collected.duplicates:
        lines.append(f"{collected.duplicates} duplicate run(s) left out")
    if collected.redacted:
        removed = "; ".join(f"{line} ({n} run{'s' if n != 1 else ''})"
                            for line, n in collected.removed.items())
        lines.append(f"redacted: {removed or 'nothing needed removing'}")
    else:
        lines.append("not redacted (--no-redact)")
    if collected.left_out:
        lines.append(f"{len(collected.left_out)} run(s) of other suites left out (named above)")
    if collected.skipped:
        lines.append(f"{len(collected.skipped)} file(s) skipped (named above)")
    return lines
