"""Machines with GPUs of several vendors: one llama.cpp build drives one vendor, so each
model is planned on every group (``install.resources.gpu_groups``) and ``install.verdict``
keeps the faster plan, with a reason naming the others."""

from __future__ import annotations

from dataclasses import replace

from gptoss_doctor.install.resources import Resources
from gptoss_doctor.install.verdict_records import ModelVerdict

PLACEMENT_RANK = {"gpu": 3, "unified": 3, "expert-offload": 2, "cpu": 1}


def fastest(plans: list[ModelVerdict]) -> int:
    """The index of the plan to keep: one that runs over one that does not, then the
    predicted speed, then the placement; the first group (the larger memory) on a tie."""
    def rank(i: int) -> tuple[bool, bool, float, int, int]:
        v = plans[i]
        return (v.can_run, v.status == "runs", v.predicted_tokens_per_s or 0.0,
                PLACEMENT_RANK.get(v.placement or "", 0), -i)
    return max(range(len(plans)), key=rank)


def compared(plans: list[ModelVerdict], best: int, options: list[Resources]
             ) -> ModelVerdict:
    """The kept plan, with a reason naming the other GPU groups' plans when there were any."""
    kept = plans[best]
    others = [f"{', '.join(options[i].gpu_names)}: {short(v)}"
              for i, v in enumerate(plans) if i != best and options[i].gpu_names]
    if not others or not kept.can_run:
        return kept
    note = (f"planned on {', '.join(options[best].gpu_names)}, the faster of this machine's "
            "GPU groups (one llama.cpp build drives one vendor); the other: "
            + "; ".join(others))
    return replace(kept, reasons=(*kept.reasons, note))


def short(v: ModelVerdict) -> str:
    """A plan in a few words: placement and speed, or "does not fit"."""
    if not v.can_run:
        return "does not fit"
    speed = f", ~{v.predicted_tokens_per_s:g} tok/s" if v.predicted_tokens_per_s else ""
    return f"{v.placement}{speed}"
