"""Per-machine corrections of the speed model, from the user's own `bench speed` runs.

Every `bench speed` results file of a gpt-oss model records the doctor's (uncorrected)
prediction for the machine and settings it ran, and each test's measured / predicted
(``roofline.tg_ratio_to_predicted``, ``roofline.pp_ratio_to_predicted``). ``fit`` turns
such runs into one ``Correction`` per machine and placement: the median ratio of the runs
(robust to one disturbed run), their number and their range. ``apply`` multiplies the
predictions of a later verdict on the same machine and placement and says so in its
reasons. Pure: storing and reading the runs is ``app.calibrate``'s job.

A machine is identified by a fingerprint of the hardware facts that set its speed (OS,
CPU model and threads, RAM size, each GPU's name and memory, the Apple chip), never by a
host name: a file from another machine is kept as that machine's correction, labelled
with what it is, and applies only to verdicts on that machine (docs/calibration.md).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass, replace

from gptoss_doctor.install import predict
from gptoss_doctor.install.verdict_records import (
    OFFLOAD_NOTE,
    Alternative,
    Assessment,
    ModelVerdict,
    Ttft,
    offload_note,
)
from gptoss_doctor.probe.model import HardwareSnapshot

GIB = 1024**3
# A ratio outside this range is not a measurement of the predicted setup (a wrong file, a
# run that swapped, an edited number): such a file is refused rather than averaged in.
RATIO_RANGE = (0.05, 20.0)
CALIBRATED = "calibrated from your own runs on this machine"  # how a corrected verdict says so
# The most recent runs kept per machine and placement.
MAX_RUNS = 50
# Placements that run the same way: unified memory is the GPU of an Apple or APU machine.
PLACEMENT_GROUP = {"gpu": "gpu", "unified": "gpu", "expert-offload": "expert-offload",
                   "cpu": "cpu"}


@dataclass(frozen=True, slots=True)
class Run:
    """One `bench speed` run as calibration keeps it: measured / predicted for tg and pp
    (the geometric mean of the run's depth-0 tests; None where it had none)."""

    machine: str  # fingerprint
    label: str  # what the machine is, for people
    placement: str  # "gpu" | "expert-offload" | "cpu" (PLACEMENT_GROUP's values)
    model: str  # catalog key: "20b" | "120b"
    created_at: str  # the results file's time stamp: with the rest, what makes a run unique
    tg_ratio: float | None
    pp_ratio: float | None


@dataclass(frozen=True, slots=True)
class Factor:
    """The median of ``runs`` ratios and their range."""

    value: float
    runs: int
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Correction:
    """What multiplies the predictions of one machine and placement."""

    machine: str
    label: str
    placement: str
    tg: Factor | None
    pp: Factor | None


def fingerprint(snap: HardwareSnapshot) -> str:
    """A stable id of the hardware in ``snap`` (free memory, time and software excluded)."""
    gpus = sorted((g.vendor, g.name, round((g.vram_total_bytes or 0) / GIB))
                  for g in snap.gpus)
    parts = [snap.os.system, snap.cpu.brand, snap.cpu.cores_logical,
             round((snap.memory.ram_total_bytes or 0) / GIB), gpus,
             snap.apple.chip if snap.apple else None]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def label(snap: HardwareSnapshot) -> str:
    """The machine in a few words: "AMD Ryzen 9 7950X (32 threads), 64 GiB RAM, RTX 4090"."""
    cpu = snap.apple.chip if snap.apple and snap.apple.chip else snap.cpu.brand or "unknown CPU"
    if snap.cpu.cores_logical:
        cpu += f" ({snap.cpu.cores_logical} threads)"
    parts = [cpu]
    if snap.memory.ram_total_bytes:
        parts.append(f"{round(snap.memory.ram_total_bytes / GIB)} GiB RAM")
    names = [g.name for g in snap.gpus if g.vendor != "apple"]
    for name in sorted(set(names)):
        count = names.count(name)
        parts.append(f"{count} x {name}" if count > 1 else name)
    return ", ".join(parts)


def plausible(ratio: float) -> bool:
    return RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]


def merge(kept: tuple[Run, ...], new: tuple[Run, ...]) -> tuple[Run, ...]:
    """``kept`` plus ``new`` without duplicates (the same run given twice counts once), at
    most ``MAX_RUNS`` most recent per machine and placement."""
    unique: dict[tuple[str, str, str, str], Run] = {}
    for run in (*kept, *new):
        unique[(run.machine, run.placement, run.model, run.created_at)] = run
    runs = sorted(unique.values(), key=lambda r: r.created_at)
    out: list[Run] = []
    for run in reversed(runs):
        if sum(1 for r in out if (r.machine, r.placement) == (run.machine, run.placement)) \
                < MAX_RUNS:
            out.append(run)
    return tuple(reversed(out))


def _factor(ratios: list[float]) -> Factor | None:
    if not ratios:
        return None
    return Factor(round(statistics.median(ratios), 3), len(ratios), round(min(ratios), 3),
                  round(max(ratios), 3))


def fit(runs: tuple[Run, ...]) -> tuple[Correction, ...]:
    """One correction per machine and placement, in the order the runs first name them."""
    keys = list(dict.fromkeys((r.machine, r.placement) for r in runs))
    out = []
    for machine, placement in keys:
        mine = [r for r in runs if (r.machine, r.placement) == (machine, placement)]
        out.append(Correction(machine, mine[-1].label, placement,
                              _factor([r.tg_ratio for r in mine if r.tg_ratio is not None]),
                              _factor([r.pp_ratio for r in mine if r.pp_ratio is not None])))
    return tuple(out)


def describe(factor: Factor, what: str) -> str:
    spread = f", {factor.low:g}-{factor.high:g}" if factor.low != factor.high else ""
    runs = "run" if factor.runs == 1 else "runs"
    return f"{what} ×{factor.value:g} ({factor.runs} {runs}{spread})"


def apply(assessment: Assessment, snap: HardwareSnapshot,
          corrections: tuple[Correction, ...]) -> Assessment:
    """``assessment`` with each verdict's predictions corrected by this machine's
    correction for its placement (unchanged where there is none)."""
    mine = {c.placement: c for c in corrections if c.machine == fingerprint(snap)}
    if not mine:
        return assessment
    found = [(v, mine.get(PLACEMENT_GROUP.get(v.placement or "", "")))
             for v in assessment.verdicts]
    verdicts = tuple(_not_applied(v) if c is not None and _measured_host(snap, v)
                     else _corrected(v, c) for v, c in found)
    return replace(assessment, verdicts=verdicts)


HOST_RAM_PLACEMENTS = ("cpu", "expert-offload")


def _measured_host(snap: HardwareSnapshot, v: ModelVerdict) -> bool:
    """A plan reading host RAM at a bandwidth measured now: the stored ratios are against
    predictions made without a measurement (``bench speed``), so they do not apply."""
    return snap.memory.host_bandwidth_measured and v.placement in HOST_RAM_PLACEMENTS


def _not_applied(v: ModelVerdict) -> ModelVerdict:
    return replace(v, reasons=(*v.reasons, "your calibration for this machine is not applied "
                               "to this plan: its host bandwidth was measured now, and the "
                               "stored runs were predicted without a measurement"))


def _scaled(value: float | None, factor: Factor | None, digits: int | None = 1
            ) -> float | None:
    if value is None or factor is None:
        return value
    return round(value * factor.value, digits) if digits else float(round(value * factor.value))


def _corrected(v: ModelVerdict, c: Correction | None) -> ModelVerdict:
    if c is None or not v.can_run or (c.tg is None and c.pp is None):
        return v
    tg, pp = c.tg, c.pp
    said = [describe(f, what) for f, what in ((tg, "tg"), (pp, "pp")) if f is not None]
    reason = (f"{CALIBRATED} ({c.label}): "
              f"{'; '.join(said)} of the model's prediction (`gptoss-doctor calibrate`)")
    tokens = _scaled(v.predicted_tokens_per_s, tg)
    status = v.status
    if tokens is not None and status in ("runs", "slow"):
        status = predict.status(predict.Rate(tokens, None, ""))
    joules = v.predicted_joules_per_token
    if joules is not None and tg is not None:
        joules = round(joules / tg.value, 3)
    alternatives = tuple(Alternative(a.context_length, a.n_cpu_moe,
                                     _scaled(a.predicted_tokens_per_s, tg),
                                     _scaled(a.predicted_prompt_tokens_per_s, pp, None))
                         for a in v.alternatives)
    note = offload_note(v.context_length or 0, alternatives) if alternatives else None
    reasons = tuple(note if note and r.startswith(OFFLOAD_NOTE.format(ctx=v.context_length))
                    else r for r in v.reasons)
    return replace(
        v, status=status, predicted_tokens_per_s=tokens,
        predicted_prompt_tokens_per_s=_scaled(v.predicted_prompt_tokens_per_s, pp, None),
        predicted_ttft=_ttft(v, tg, pp), predicted_joules_per_token=joules,
        alternatives=alternatives, reasons=(*reasons, reason))


def _ttft(v: ModelVerdict, tg: Factor | None, pp: Factor | None) -> tuple[Ttft, ...]:
    """TTFT is the prompt at pp speed plus one token at tg speed: each part corrected."""
    if not v.predicted_tokens_per_s:
        return v.predicted_ttft
    token_s = 1 / v.predicted_tokens_per_s
    out = []
    for t in v.predicted_ttft:
        prompt_s = max(t.seconds - token_s, 0.0) / (pp.value if pp else 1.0)
        out.append(Ttft(t.prompt_tokens, round(prompt_s + token_s / (tg.value if tg else 1.0),
                                               2)))
    return tuple(out)


def calibration_reason(v: ModelVerdict) -> str | None:
    """The reason a corrected verdict gives for its correction (None: not corrected)."""
    return next((r for r in v.reasons if r.startswith(CALIBRATED)), None)
