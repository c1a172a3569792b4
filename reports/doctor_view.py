"""The preflight report's terminal rendering and its JSON envelope.

The JSON envelope is a contract people script against; its schema is
``reports/schemas/doctor.schema.json`` (``DOCTOR_SCHEMA_VERSION``), pinned by a test.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from rich.console import Console

from gptoss_doctor import __version__, serde
from gptoss_doctor.app.doctor import DoctorReport
from gptoss_doctor.install.verdict_records import ModelVerdict
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.reports.terminal_text import safe as escape

DOCTOR_SCHEMA_VERSION = 1
ENVELOPE_KIND = "gptoss-doctor/doctor"
SYMBOLS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red"),
           "info": ("•", "cyan")}
VERDICT_STYLE = {"runs": ("✓", "green"), "slow": ("!", "yellow"),
                 "does-not-fit": ("✗", "red")}


def to_json(report: DoctorReport) -> dict[str, Any]:
    """The versioned ``--json`` envelope."""
    return {
        "kind": ENVELOPE_KIND,
        "schema_version": DOCTOR_SCHEMA_VERSION,
        "tool_version": __version__,
        "exit_code": report.exit_code,
        "checks": serde.to_json(report.checks),
        "verdicts": [_verdict_json(v) for v in report.assessment.verdicts],
        "resource_reasons": list(report.assessment.resource_reasons),
        "advice": list(report.assessment.advice),
        "next_command": report.next_command,
        "snapshot": to_dict(report.snapshot),
    }


def _verdict_json(verdict: ModelVerdict) -> dict[str, Any]:
    """A verdict as the envelope has it since version 1: settings an object, empty when the
    model does not fit."""
    out: dict[str, Any] = serde.to_json(verdict)
    out["load_settings"] = out["load_settings"] or {}
    return out


def schema() -> dict[str, Any]:
    """The JSON Schema of the envelope (shipped with the package)."""
    import json

    text = resources.files("gptoss_doctor.reports").joinpath(
        "schemas/doctor.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _verdict_line(v: ModelVerdict) -> str:
    if not v.can_run:
        return "does not fit on this machine"
    where = {"gpu": "all layers on the GPU", "cpu": "CPU only",
             "expert-offload": f"GPU + experts of {v.n_cpu_moe} layers on the CPU",
             "unified": "unified memory"}.get(v.placement or "", v.placement or "")
    speed = (f"~{v.predicted_tokens_per_s:g} tok/s (estimate; bandwidth ceiling "
             f"{v.roofline_tokens_per_s:g})" if v.predicted_tokens_per_s is not None
             else "speed unknown")
    slow = " — slow" if v.status == "slow" else ""
    return (f"{v.engine} ({v.backend}), {where}, {v.context_length} context, {speed}{slow}")


def render(report: DoctorReport, console: Console) -> None:
    """Human-readable report on ``console``."""
    console.print(f"[bold]gptoss-doctor {__version__}[/] — can this machine run gpt-oss?\n")
    for check in report.checks:
        symbol, color = SYMBOLS[check.status]
        console.print(f"[{color}]\\[{symbol}][/] [bold]{escape(check.name)}[/]: "
                      f"{escape(check.summary)}")
        for detail in check.details:
            console.print(f"    • {escape(detail)}")
    console.print("\n[bold]Verdict[/]")
    for v in report.assessment.verdicts:
        symbol, color = VERDICT_STYLE[v.status]
        console.print(f"[{color}]\\[{symbol}][/] [bold]{v.model}[/]: {escape(_verdict_line(v))}")
        for reason in v.reasons:
            console.print(f"    • {escape(reason)}")
        if v.can_run and v.engine == "llama.cpp" and v.load_settings is not None:
            console.print(f"    • settings: {escape(v.load_settings.shown())}")
        if v.predicted_prompt_tokens_per_s is not None:
            ttft = ", ".join(f"{t.seconds:g} s for {t.prompt_tokens} tokens"
                             for t in v.predicted_ttft)
            console.print(f"    • prompt: ~{v.predicted_prompt_tokens_per_s:g} tok/s "
                          f"(estimate); time to first token ~{ttft}")
        if v.speed_basis:
            console.print(f"    • speed basis: {escape(v.speed_basis)}", style="dim")
        if v.predicted_joules_per_token is not None:
            console.print(f"    • energy: ~{v.predicted_joules_per_token:g} J/token "
                          f"({escape(v.energy_basis or 'estimate')})", style="dim")
        for fix in v.fixes:
            console.print(f"    → would run with {escape(fix)}")
    for advice in report.assessment.advice:
        console.print(f"\n[yellow]![/] {escape(advice)}")
    if report.next_command:
        console.print(f"\nNext: [bold]{escape(report.next_command)}[/]")
    else:
        console.print("\nNo gpt-oss model fits this machine; see above for what would.")
