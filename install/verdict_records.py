"""The records of a verdict (``install.verdict`` builds them; the doctor, ``install``, the
reports and ``calibrate`` read them), and the text that lists an expert-offload plan's
other contexts, which ``install.corrections`` rewrites with corrected figures."""

from __future__ import annotations

from dataclasses import dataclass

from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.types import Backend, EngineName, Placement, VerdictStatus


@dataclass(frozen=True, slots=True)
class MemoryNeeds:
    """Bytes the chosen placement needs, beside the budgets it was checked against."""

    gpu_bytes: int
    cpu_bytes: int
    gpu_budget_bytes: int | None
    ram_budget_bytes: int | None


@dataclass(frozen=True, slots=True)
class Alternative:
    """Another context an expert-offload plan could use, and what it would cost in speed."""

    context_length: int
    n_cpu_moe: int
    predicted_tokens_per_s: float | None
    predicted_prompt_tokens_per_s: float | None


@dataclass(frozen=True, slots=True)
class Ttft:
    """Predicted time to first token for a prompt of ``prompt_tokens`` tokens."""

    prompt_tokens: int
    seconds: float


@dataclass(frozen=True, slots=True)
class ModelVerdict:
    """Can ``model`` run here, how, and how fast (an estimate)."""

    model: str
    key: str
    status: VerdictStatus
    engine: EngineName | None = None
    backend: Backend | None = None
    placement: Placement | None = None
    n_cpu_moe: int | None = None
    context_length: int | None = None
    memory: MemoryNeeds | None = None
    predicted_tokens_per_s: float | None = None
    roofline_tokens_per_s: float | None = None
    speed_basis: str | None = None
    predicted_prompt_tokens_per_s: float | None = None
    predicted_ttft: tuple[Ttft, ...] = ()
    alternatives: tuple[Alternative, ...] = ()  # expert offload at other contexts
    predicted_joules_per_token: float | None = None  # GPU placements with a known board power
    energy_basis: str | None = None
    load_settings: LoadSettings | None = None
    cmake_args: str | None = None
    reasons: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    install_command: str | None = None

    @property
    def can_run(self) -> bool:
        return self.status != "does-not-fit"


@dataclass(frozen=True, slots=True)
class Assessment:
    """Verdicts for every model plus the machine-level reasons behind them."""

    verdicts: tuple[ModelVerdict, ...]
    resource_reasons: tuple[str, ...]
    advice: tuple[str, ...]

    def verdict(self, key: str) -> ModelVerdict:
        return next(v for v in self.verdicts if v.key == key)


OFFLOAD_NOTE = "planned at {ctx} context (each doubling of the context keeps more experts on "


def offload_note(ctx: int, alternatives: tuple[Alternative, ...]) -> str:
    """The reason that lists an expert-offload plan's other contexts and their speeds."""
    def speeds(a: Alternative) -> str:
        prompt = (f", prompt ~{a.predicted_prompt_tokens_per_s:g}"
                  if a.predicted_prompt_tokens_per_s else "")
        return f"~{a.predicted_tokens_per_s:g} tok/s{prompt}"
    return (OFFLOAD_NOTE.format(ctx=ctx) + "the CPU); other contexts: " + "; ".join(
        f"{a.context_length} → --n-cpu-moe {a.n_cpu_moe} → {speeds(a)}"
        for a in alternatives if a.context_length != ctx and a.predicted_tokens_per_s))
