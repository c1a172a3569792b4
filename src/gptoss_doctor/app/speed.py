"""The ``bench speed`` service (in-process): llama-bench-comparable tests, TTFT and chat.

Any registered engine: the adapter loads the model with the planned settings, the suite
from ``bench.speed`` times it, and the record says what ran where, with the bandwidth
roofline of this machine for the tg tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gptoss_doctor.app import conditions, energy, models
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.app.options import SpeedOptions
from gptoss_doctor.app.records import (
    Conditions,
    EnergyReport,
    Envelope,
    Roofline,
    SpeedConfig,
    SpeedRecord,
    SpeedSettings,
)
from gptoss_doctor.app.sampling import Sampling
from gptoss_doctor.bench import harmony, speed
from gptoss_doctor.bench.engine import Session
from gptoss_doctor.bench.speed import ChatResult, SpeedTest, TestResult
from gptoss_doctor.catalog import entry
from gptoss_doctor.install import predict
from gptoss_doctor.install.resources import resources
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.power import PowerSources
from gptoss_doctor.probe.sampler import PowerTrace
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.serde import to_json
from gptoss_doctor.types import Placement

CHAT_TOKENS = 64
CHAT_REPS = 3


@dataclass(frozen=True, slots=True)
class SpeedRun:
    record: SpeedRecord
    interrupted: bool


def context_for(tests: Sequence[SpeedTest], prompt: Sequence[int]) -> int:
    """The smallest context (a multiple of 256) every test and the chat prompt fit."""
    n_ctx = max([t.depth + t.n_tokens for t in tests] + [len(prompt) + CHAT_TOKENS])
    return -(-n_ctx // 256) * 256


def run(options: SpeedOptions, feedback: Feedback,
        power: PowerSources | None = None) -> SpeedRun:
    """Load, measure, close; the typed record (not yet saved). ``power``: where power and
    conditions are read during the tests (this machine unless given)."""
    ready = models.prepare(options.engine, options.model, options.synthetic,
                           options.flags, options.synthetic is not None,
                           feedback)
    adapter, path, facts, snap, plan = (ready.adapter, ready.path, ready.facts, ready.snap,
                                        ready.plan)
    prompt = harmony.chat_prompt() if options.chat and facts.is_gpt_oss else []
    settings = plan.settings.with_overrides(
        n_ctx=context_for(options.tests, prompt),
        n_threads=options.flags.threads or models.threads_for(snap),
        n_gpu_layers=options.flags.n_gpu_layers, n_cpu_moe=options.flags.n_cpu_moe)
    feedback.note(models.loading_note(ready, "synthetic random weights"))
    gpu_before = models.gpu_used_bytes()
    session = adapter.load(path, settings)
    gpu_after = models.gpu_used_bytes()
    if session.warning:
        feedback.note(f"warning: {session.warning}")
    try:
        tests, chat, interrupted, honesty = _sampled(session, options, prompt,
                                                     facts.architecture, feedback, power)
        used = gpu_after - gpu_before if gpu_after is not None and gpu_before is not None \
            else None
        envelope = Envelope("speed", "interrupted" if interrupted else "complete",
                            to_dict(snap), session.software(snap.os.python_version,
                                                            _backends(snap)), facts)
        record = SpeedRecord(
            envelope, SpeedConfig(session.config(adapter.own_settings or plan.source),
                                  SpeedSettings(options.reps, 0, options.protocol,
                                                options.cooldown_s)),
            tests, chat, session.memory(models.peak_rss_bytes(), used),
            roofline(snap, facts.gpt_oss, facts.size_bytes or 0, session.on_gpu, tests,
                     n_cpu_moe=settings.n_cpu_moe or 0, threads=settings.n_threads),
            session.extras(), *honesty)
    finally:
        session.close()
    return SpeedRun(record, interrupted)


def _sampled(session: Session, options: SpeedOptions, prompt: list[int],
             architecture: str | None, feedback: Feedback, power: PowerSources | None
             ) -> tuple[tuple[TestResult, ...], ChatResult | dict[str, object], bool,
                        tuple[EnergyReport, Conditions]]:
    """``_measure`` with the power sampler running, and what its trace says."""
    windows: list[energy.Window] = []
    with Sampling(power) as sampled:
        tests, chat, interrupted = _measure(
            session, options, prompt, architecture, feedback,
            lambda name, start, end: windows.append((name, start, end)))
    assert sampled.trace is not None
    return tests, chat, interrupted, _honesty(sampled.trace, tests, windows, feedback)


def _honesty(trace: PowerTrace, tests: Sequence[TestResult], windows: Sequence[energy.Window],
             feedback: Feedback) -> tuple[EnergyReport, Conditions]:
    """Energy per token and the run's conditions, with a note when the run was not clean."""
    spent = energy.report(trace, tests, windows)
    judged = conditions.judge(trace)
    for flag, evidence in (("throttled", judged.throttle_evidence),
                           ("contended", judged.contention_evidence)):
        if evidence:
            feedback.note(f"warning: this run was {flag}: {'; '.join(evidence)}")
    return spent, judged


def _backends(snap: HardwareSnapshot) -> tuple[str, ...]:
    return tuple(snap.software.llama_cpp.backends) if snap.software.llama_cpp else ()


def _measure(session: Session, options: SpeedOptions, prompt: list[int],
             architecture: str | None, feedback: Feedback,
             timed: Callable[[str, float, float], None],
             ) -> tuple[tuple[TestResult, ...], ChatResult | dict[str, object], bool]:
    """The suite with a progress bar, then the chat measurement (or why it was skipped)."""
    tests, reps = options.tests, options.reps
    with feedback.task("warming up", len(tests) * reps) as task:
        def advance(name: str, rep: int, total: int) -> None:
            index = next(i for i, t in enumerate(tests) if t.name == name)
            task.update(description=f"{name} ({rep + 1}/{total})",
                        completed=index * total + rep)

        outcomes, interrupted = speed.run_suite(session, tests, reps, progress=advance,
                                                timed=timed, cooldown_s=options.cooldown_s)
    if not options.chat:
        return outcomes, {"status": "skipped", "reason": "--no-chat"}, interrupted
    if not prompt:
        return outcomes, {"status": "skipped", "reason": f"{architecture} model: the harmony "
                          "prompt is gpt-oss's"}, interrupted
    if interrupted:
        return outcomes, {"status": "skipped", "reason": "stopped by Ctrl-C"}, interrupted
    feedback.note("chat: TTFT and generation through a harmony prompt")
    return outcomes, *_chat(session, prompt)


def _chat(session: Session, prompt: list[int]) -> tuple[ChatResult | dict[str, object], bool]:
    result = speed.run_chat(session, prompt, CHAT_TOKENS, CHAT_REPS)
    if result.status != "ok":
        return result, result.status == "interrupted"
    reported = session.engine_reported(prompt, CHAT_TOKENS)
    if reported is None:
        return result, False
    return {**to_json(result), "engine_reported": reported}, False


def roofline(snap: HardwareSnapshot, key: str | None, size_bytes: int, on_gpu: bool,
             tests: Sequence[TestResult], n_cpu_moe: int = 0,
             threads: int | None = None) -> Roofline:
    """Generation's bandwidth ceiling: bytes read per token (gpt-oss's active weights, else
    the whole file) over the memory bandwidth of where the weights sit; for gpt-oss, also
    the doctor's prediction for these settings and each tg test's measured / predicted."""
    res = resources(snap)
    model = entry(key) if key else None
    per_token = model.shape.active_bytes_per_token if model else size_bytes
    bandwidth = res.gpu_bandwidth if on_gpu and res.gpu_bandwidth else res.cpu_bandwidth
    ceiling = bandwidth.bytes_per_s / per_token
    percent = {t.name: round(100 * t.mean_ts / ceiling, 1)
               for t in tests if t.kind == "tg" and t.mean_ts}
    predicted = None
    placement: Placement | None = None
    if model is not None:
        placement = "cpu" if not on_gpu else "expert-offload" if n_cpu_moe else "gpu"
        predicted = predict.predict(model.shape, res, placement=placement,
                                    n_cpu_moe=n_cpu_moe, cpu_cores=threads or res.cpu_cores)
    expected = predicted.expected if predicted is not None else None
    pp = predicted.pp_tokens_per_s if predicted is not None else None
    ratios = {t.name: round(t.mean_ts / expected, 3)
              for t in tests if t.kind == "tg" and t.mean_ts and expected}
    pp_ratios = {t.name: round(t.mean_ts / pp, 3) for t in tests
                 if t.kind == "pp" and t.mean_ts and pp and not t.depth
                 and t.n_tokens >= predict.UBATCH}
    return Roofline(per_token, "active gpt-oss weights" if model else "whole file (dense)",
                    bandwidth.bytes_per_s, bandwidth.source, round(ceiling, 2), percent,
                    expected, predicted.basis if predicted is not None else None, ratios,
                    placement if expected is not None else None, pp, pp_ratios)

