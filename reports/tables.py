"""Terminal tables of results records (speed, tool use, endpoint sweeps).

They render the results JSON, the same data a results file holds, so what is printed is
what is saved. Every string in a cell goes through ``terminal_text.safe``.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from gptoss_doctor.reports.terminal_text import safe


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "—" if value is None else pattern.format(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def speed_table(record: dict[str, Any]) -> Table:
    """One row per llama-bench-named test."""
    config = record["config"]
    where = (f"{config['threads']} threads" if config.get("threads") is not None
             else f"on the {config.get('device') or 'server'}")
    table = Table(title=safe(f"{record['model']['file_name']} — {config['engine']}, {where}"))
    for column in ("test", "t/s", "samples", "status"):
        table.add_column(column)
    for test in record["tests"]:
        rate = (f"{test['mean_ts']:.2f} ± {test['stddev_ts']:.2f}"
                if test["mean_ts"] is not None else "—")
        samples = ", ".join(f"{s:.2f}" for s in test["samples_ts"])
        table.add_row(safe(test["name"]), rate, samples, safe(test["status"] + (
            f": {test['reason']}" if test["reason"] else "")))
    return table


def chat_line(record: dict[str, Any]) -> str | None:
    chat = record.get("chat") or {}
    if chat.get("ttft_mean_s") is None:
        return None
    return (f"chat (harmony prompt, {chat['prompt_tokens']} tokens): TTFT "
            f"{chat['ttft_mean_s']:.3f} s, generation {chat['generation_mean_ts']:.2f} t/s")


def honesty_lines(record: dict[str, Any]) -> tuple[str, ...]:
    """Energy per token (or why it was not measured) and whether the run was clean."""
    lines: list[str] = []
    energy = record.get("energy")
    if isinstance(energy, dict) and energy.get("status") == "measured":
        figures = ", ".join(f"{t['test']} {t['joules_per_token']:.3g} J/token "
                            f"(avg {t['average_power_w']:.0f} W)" for t in energy["tests"]
                            if t.get("joules_per_token") is not None)
        lines.append(safe(f"energy: {figures or 'no test covered'}; from "
                          f"{', '.join(energy['sources'])}"))
    elif isinstance(energy, dict):
        lines.append(safe(f"energy: {energy.get('reason')}"))
    cond = record.get("conditions")
    if isinstance(cond, dict):
        lines.append(safe(f"conditions: {_conditions(cond)}"))
    return tuple(lines)


def _conditions(cond: dict[str, Any]) -> str:
    """``throttled: evidence``, ``not throttled, not contended``, or what is unknown."""
    flagged = [name for name in ("throttled", "contended") if cond.get(name)]
    if flagged:
        evidence = [*cond.get("throttle_evidence", ()), *cond.get("contention_evidence", ())]
        return f"{' and '.join(flagged)}: {'; '.join(evidence)}"
    return ", ".join(f"not {name}" if cond.get(name) is False else f"{name}: not measured"
                     for name in ("throttled", "contended"))


def tools_table(record: dict[str, Any]) -> Table:
    """pass@k, pass^k, pass rate, strict rate and failures per category."""
    k = record["config"]["repeats"]
    table = Table(title=safe(f"tool use — {record['model']['file_name']}, reasoning "
                             f"{record['config']['reasoning']}, {k} attempt"
                             f"{'s' if k > 1 else ''} per case"))
    for column in ("category", "cases", f"pass@{k}", f"pass^{k}", "pass rate", "strict",
                   "failures"):
        table.add_column(column)
    rows = [*record["scores"]["by_category"].items(), ("overall", record["scores"]["overall"])]
    for name, score in rows:
        failures = ", ".join(f"{f} {n}" for f, n in score["failures"].items())
        table.add_row(safe(name), str(score["cases"]), _pct(score["pass_at_k"]),
                      _pct(score["pass_hat_k"]), _pct(score["pass_rate"]),
                      _pct(score["strict_pass_rate"]), safe(failures or "—"))
    return table


def mcp_line(calls: dict[str, int]) -> str | None:
    """MCP tool calls per server (``app.tools.mcp_calls``), or None without any."""
    if not calls:
        return None
    return safe("MCP tool calls: " + ", ".join(f"{server} {n}" for server, n in
                                                sorted(calls.items())))


def quirks_line(record: dict[str, Any]) -> str | None:
    quirks = record["scores"]["overall"]["quirks"]
    if record["config"].get("renderer") == "server":  # docs/tool-grading.md, "Quirks"
        return "strict = pass: the server parsed the calls, so no harmony quirk is visible"
    if not quirks:
        return None
    return "harmony quirks (tolerated): " + ", ".join(f"{q} {n}" for q, n in quirks.items())


def endpoint_speed_table(record: dict[str, Any]) -> Table:
    """One row per request shape and concurrency level; errors under the table."""
    table = Table(title=safe(f"{record['endpoint']['model_id']} at {record['endpoint']['url']}"))
    for column in ("shape", "streams", "ok", "aggregate t/s", "per-stream t/s", "TTFT p50",
                   "TTFT p95"):
        table.add_column(column)
    for level in record["concurrency"]:
        table.add_row(safe(level["shape"]), str(level["streams"]),
                      f"{level['ok']}/{level['requests']}", _fmt(level["aggregate_ts"]),
                      _fmt(level["per_stream_ts"]), _fmt(level["ttft_p50_s"], "{:.3f} s"),
                      _fmt(level["ttft_p95_s"], "{:.3f} s"))
    errors = [f"{level['shape']} x{level['streams']}: {n}× {e}" for level in record["concurrency"]
              for e, n in level["errors"].items()]
    if errors:  # below the table: error lines are too long for a column
        table.caption = safe("errors — " + "; ".join(errors))
    return table


def conformance_table(record: dict[str, Any]) -> Table:
    """One row per conformance check: its verdict, how it was checked, the evidence."""
    endpoint = record["endpoint"]
    served = endpoint.get("served") or {}
    server = served.get("engine") or endpoint["headers"].get("server") or endpoint["url"]
    table = Table(title=safe(f"harmony conformance — {server}, {endpoint['model_id']}"))
    for column in ("check", "verdict", "how", "evidence"):
        table.add_column(column)
    for check in record["conformance"]["checks"]:
        table.add_row(safe(check["title"]), safe(check["status"].replace("_", " ")),
                      safe(check["method"]), safe(check["evidence"]))
    return table


def effort_table(comparison: dict[str, Any]) -> Table:
    """Per group and effort: reasoning tokens per attempt; the tests and verdict below."""
    table = Table(title="reasoning (analysis) tokens per attempt, by effort")
    for column in ("model · engine · api", "effort", "attempts", "median", "mean",
                   "range"):
        table.add_column(column)
    notes = []
    for group in comparison["groups"]:
        name = safe(f"{group['model']} · {group['engine']} · {group['api'] or 'in-process'}")
        for effort, row in group["efforts"].items():
            spread = "—" if row["min"] is None else f"{row['min']}–{row['max']}"
            table.add_row(name, effort, f"{row['counted']}/{row['attempts']}",
                          _fmt(row["median"], "{:g}"), _fmt(row["mean"], "{:.1f}"), spread)
        tests = "; ".join(f"{t['higher']}>{t['lower']}: p={_fmt(t['p_mann_whitney'], '{:.3g}')}"
                          f" (perm. {_fmt(t['p_permutation'], '{:.3g}')})"
                          for t in group["tests"])
        notes.append(safe(f"{name}: {group['verdict']}" + (f" — {tests}" if tests else "")))
    table.caption = "\n".join(notes)
    return table
