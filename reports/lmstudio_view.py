"""``install --engine lmstudio`` as text for people (stderr) and as the ``--json``
envelope: the commands run, LM Studio's memory estimate beside the doctor's, the server and
the smoke test."""

from __future__ import annotations

from typing import Any

from gptoss_doctor.app.lmstudio import LmsInstalled
from gptoss_doctor.serde import to_json

GIB = 1024**3
ENVELOPE_KIND = "gptoss-doctor/install-lmstudio"


def envelope(installed: LmsInstalled) -> dict[str, Any]:
    return {"kind": ENVELOPE_KIND, "schema_version": 1, **to_json(installed)}


def _gib(value: int | None) -> str:
    return "?" if value is None else f"{value / GIB:.2f} GiB"


def agreement_lines(installed: LmsInstalled) -> list[str]:
    """The agreement table: LM Studio's estimate, the doctor's, their ratio."""
    lines = [f"  {'memory':<8}{'LM Studio':>12}{'doctor':>12}{'ratio':>8}  agree"]
    for row in installed.agreement:
        ratio = "?" if row.ratio is None else f"{row.ratio:.2f}"
        agree = {True: "yes", False: "NO", None: "?"}[row.agree]
        lines.append(f"  {row.what:<8}{_gib(row.lmstudio_bytes):>12}"
                     f"{_gib(row.doctor_bytes):>12}{ratio:>8}  {agree}")
    return lines


def installed_lines(installed: LmsInstalled) -> list[str]:
    lines = [f"installed {installed.model} through LM Studio ({installed.model_key}, "
             f"{installed.variant})"]
    lines += [f"  $ lms {' '.join(step.command[1:])}  [exit {step.exit_code}, "
              f"{step.seconds:.1f} s]" for step in installed.steps]
    lines.append(f"memory estimate at {installed.settings.n_ctx} tokens, --gpu {installed.gpu}"
                 + ("" if installed.passes_guardrails is None else
                    " (LM Studio's guardrail: "
                    + ("passes" if installed.passes_guardrails else "refuses") + ")"))
    lines += agreement_lines(installed)
    memory = installed.verdict_memory
    if memory:
        budget = [f"{what} {_gib(memory.get(need))} of {_gib(memory.get(have))}"
                  for what, need, have in (("GPU", "gpu_bytes", "gpu_budget_bytes"),
                                           ("RAM", "cpu_bytes", "ram_budget_bytes"))
                  if memory.get(have) is not None]
        if budget:
            lines.append("  the doctor's verdict for its plan: " + ", ".join(budget))
    lines += [f"note: {note}" for note in installed.notes]
    smoke = installed.smoke_test
    lines.append(f"server: {installed.endpoint} (model {installed.model_key})")
    lines.append(f"smoke test: {smoke['seconds']:.1f} s, "
                 f"{smoke['completion_tokens'] if smoke['completion_tokens'] is not None else '?'}"
                 f" tokens: {smoke['reply'][:80]!r}")
    lines.append(f"recipe: {installed.recipe}")
    lines.append(f"next: gptoss-doctor bench tools --recipe {installed.recipe}")
    return lines
