"""The install plan and its outcome as text for people (stderr), and as the ``--json``
envelope."""

from __future__ import annotations

from typing import Any

from gptoss_doctor.app.install import Installed
from gptoss_doctor.install.corrections import calibration_reason
from gptoss_doctor.install.install_plan import InstallPlan
from gptoss_doctor.install.verdict_records import ModelVerdict
from gptoss_doctor.serde import to_json

GIB = 1024**3
ENVELOPE_KIND = "gptoss-doctor/install"


def envelope(plan: InstallPlan, installed: Installed | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": ENVELOPE_KIND, "schema_version": 1, "plan": to_json(plan)}
    if installed is not None:
        out.update(to_json(installed))
    return out


def plan_lines(plan: InstallPlan) -> list[str]:
    engine = plan.engine
    lines = [f"Install plan for {plan.model}",
             f"  engine: {engine.engine} ({engine.backend}) — {engine.action}"]
    lines += [f"    • {reason}" for reason in engine.reasons]
    if engine.command:
        env = " ".join(f"{k}={v!r}" for k, v in engine.env)
        lines.append(f"    $ {env + ' ' if env else ''}{' '.join(engine.command)}")
    for step in plan.files:
        what = {"reuse": f"reuse ({step.source})", "resume": "resume download",
                "download": "download"}[step.action]
        lines.append(f"  {step.path}: {step.size_bytes / GIB:.2f} GiB, {what} -> "
                     f"{step.local_path}")
    lines.append(f"  to download: {plan.bytes_to_download / GIB:.2f} GiB; already on disk: "
                 f"{plan.bytes_present / GIB:.2f} GiB")
    if plan.disk_free_after_bytes is not None:
        lines.append(f"  disk free after: {plan.disk_free_after_bytes / GIB:.1f} GiB")
    if plan.verdict.load_settings is not None:
        lines.append(f"  settings: {plan.verdict.load_settings.shown()}")
    lines += _expected(plan.verdict)
    lines += [f"  ✗ {problem}" for problem in plan.problems]
    return lines


def _expected(v: ModelVerdict) -> list[str]:
    """The predicted speeds of the planned settings, and the user's calibration if applied."""
    if v.predicted_tokens_per_s is None:
        return []
    prompt = (f", ~{v.predicted_prompt_tokens_per_s:g} tok/s prompt"
              if v.predicted_prompt_tokens_per_s is not None else "")
    lines = [f"  expected: ~{v.predicted_tokens_per_s:g} tok/s generation{prompt} (estimate)"]
    reason = calibration_reason(v)
    return lines + ([f"    • {reason}"] if reason else [])


def installed_lines(plan: InstallPlan, installed: Installed) -> list[str]:
    lines = [f"installed {plan.model}: {', '.join(installed.files)}"]
    smoke = installed.smoke_test
    if smoke:
        lines.append(f"smoke test: loaded in {smoke['load_s']:.1f} s, "
                     f"{smoke['generated_tokens']} tokens at {smoke['tokens_per_s']:.1f} tok/s "
                     f"(stopped on {smoke['stopped_on']})")
    lines.append(f"recipe: {installed.recipe}")
    return lines
