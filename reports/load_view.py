"""The terminal table of a load run (``bench speed --endpoint`` with --rate, --sweep, ...).

One row per level (and, with several replicas, one row per replica under it): the
requested rate (``/s``) or concurrency (``xN``), finished / sent, the achieved request rate,
output tok/s, goodput (requests/s meeting every SLO), TTFT/ITL/TPOT/E2E in ms, and the
client's own CPU share ("bound" when the level was client-bound). Below it: the sweep's
answer, client-bound levels, SLOs, errors. It renders the results JSON, as saved; every
string goes through ``terminal_text.safe``.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from gptoss_doctor.reports.terminal_text import safe

COLUMNS = ("level", "ok", "req/s", "tok/s", "good/s", "TTFT ms\np50/p95",
           "ITL ms\np50/p95", "TPOT ms\np50", "E2E ms\np95", "client")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f}" if value >= 0.1 else \
        f"{value * 1000:.1f}"


def _num(value: float | None, pattern: str = "{:.2f}") -> str:
    return "—" if value is None else pattern.format(value)


def _level_name(level: dict[str, Any]) -> str:
    if level["mode"] == "rate":
        return f"{level['requested_rate']:g}/s"
    return f"x{level['concurrency']}"


def _row(name: str, level: dict[str, Any], figures: dict[str, Any], total: bool
         ) -> list[str]:
    ttft, itl = figures["ttft_s"], figures["itl_s"]
    sent = figures["requests"] + (level["dropped"] if total else 0)
    client = level["client"]
    mark = "bound" if client["client_bound"] else (
        f"{_num(client['cpu_share'], '{:.0%}')} cpu" if total else "")
    met = "" if level["slo_met"] is None or not total else (" ✓" if level["slo_met"] else " ✗")
    return [safe(name) + met, f"{figures['ok']}/{sent}",
            _num(level["achieved_rate"]) if total else "",
            _num(figures["output_tps"], "{:.1f}"), _num(figures["goodput_rps"]),
            f"{_ms(ttft['p50'])}/{_ms(ttft['p95'])}", f"{_ms(itl['p50'])}/{_ms(itl['p95'])}",
            _ms(figures["tpot_s"]["p50"]), _ms(figures["e2e_s"]["p95"]), mark]


def load_table(record: dict[str, Any]) -> Table:
    """One row per level (replicas indented under it); notes in the caption."""
    run = record["load"]
    where = ", ".join(f"r{n} {url}" if len(run["replicas"]) > 1 else url
                      for n, url in enumerate(run["replicas"], 1))
    how = f"{run['arrivals']} arrivals, " if run["arrivals"] else ""
    table = Table(title=safe(f"{record['endpoint']['model_id']} at {where} — {how}"
                             f"{run['workload']} workload"))
    for column in COLUMNS:
        table.add_column(column)
    for level in run["levels"]:
        table.add_row(*_row(_level_name(level), level, level["total"], True))
        for number, replica in enumerate(level["replicas"], 1):
            table.add_row(*_row(f" └ r{number}", level, replica, False))
    table.caption = safe(" · ".join(caption_lines(run)))
    return table


def caption_lines(run: dict[str, Any]) -> list[str]:
    """The sweep's answer, the SLOs, client-bound levels, drops and errors."""
    lines: list[str] = []
    sweep = run.get("sweep")
    if sweep:
        best = sweep["best_rate"]
        lowest = min(sweep["tried"], default=None)
        lines.append(f"highest rate meeting the SLOs: {best:g} req/s ({sweep['reason']})"
                     if best is not None else
                     f"no rate met the SLOs, down to {lowest:g} req/s" if lowest is not None
                     else "the sweep ran no level")
    if run["slos"]:
        lines.append("SLOs " + ", ".join(run["slos"]) + " (✓ met, ✗ missed)")
    for level in run["levels"]:
        name = _level_name(level)
        if level["client"]["client_bound"]:
            lines.append(f"{name}: client-bound ({level['client']['reason']})")
        if level["dropped"]:
            lines.append(f"{name}: {level['dropped']} dropped at the cap of "
                         f"{run['max_outstanding_cap']} in flight")
        lines.extend(f"{name}: {n}× {error}" for error, n in level["total"]["errors"].items())
    return lines
