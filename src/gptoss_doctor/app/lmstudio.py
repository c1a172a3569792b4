"""``install --engine lmstudio``: gpt-oss installed, loaded and served by LM Studio's ``lms``.

Order of work: find ``lms``, probe and take the doctor's verdict (model, context, GPU
layers; MLX on Apple when the verdict picks MLX), then ``lms ls --json`` and, unless the
variant is there already, ``lms get`` it, ``lms load
--estimate-only`` with the doctor's settings (LM Studio's estimate beside the doctor's: the
agreement table), ``lms load``, ``lms ps --json`` (what LM Studio says it loaded), ``lms
server status --json`` and, unless it already serves on that port, ``lms server start
--port``, readiness over HTTP (``/v1/models`` lists the model), one chat
completion through the server as the smoke test, and a recipe recording every command run
and the endpoint, which ``bench speed|tools --recipe`` use. Every ``lms`` failure is one
line with the next command (``install.lmstudio.classify``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_doctor import catalog
from gptoss_doctor.app import calibrate
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.app.options import EndpointOptions
from gptoss_doctor.app.served import FIT_TOLERANCE
from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.errors import UsageError
from gptoss_doctor.install import lmstudio as lms
from gptoss_doctor.install.estimate import MemorySettings, estimate
from gptoss_doctor.install.recipe import RECIPE_KIND, RECIPE_SCHEMA_VERSION, write_recipe
from gptoss_doctor.install.verdict_records import ModelVerdict
from gptoss_doctor.jsonin import Limits, read_json
from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.serde import to_json
from gptoss_doctor.settings import current

ENGINE = "lmstudio"
READY_TIMEOUT_S = 60.0
SMOKE_TIMEOUT_S = 300.0
SMOKE_PROMPT = "Say hello in five words."
RECIPE_LIMITS = Limits(max_bytes=1024 * 1024, max_depth=8, max_text=4096)
GIB = 1024**3


@dataclass(frozen=True, slots=True)
class LmsOptions:
    model: str  # "auto" | "20b" | "120b"
    port: int
    n_ctx: int | None  # None: the doctor's plan


@dataclass(frozen=True, slots=True)
class Step:
    """One ``lms`` command the install ran (the recipe keeps every one)."""

    name: str
    command: tuple[str, ...]
    exit_code: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Agreement:
    """LM Studio's memory estimate beside the doctor's for the same settings."""

    what: str  # "gpu" | "total"
    lmstudio_bytes: int | None
    doctor_bytes: int
    ratio: float | None  # LM Studio / the doctor
    agree: bool | None  # within FIT_TOLERANCE


@dataclass(frozen=True, slots=True)
class LmsInstalled:
    model: str
    key: str
    model_key: str
    variant: str  # "gguf" | "mlx"
    settings: LoadSettings
    gpu: str  # lms load --gpu
    estimate: lms.LmsEstimate
    agreement: tuple[Agreement, ...]
    passes_guardrails: bool | None
    verdict_memory: dict[str, Any] | None  # the verdict's needs and this machine's budgets
    loaded: dict[str, Any] | None  # from lms ps --json, when readable
    endpoint: str
    smoke_test: dict[str, Any]
    steps: tuple[Step, ...]
    notes: tuple[str, ...]
    recipe: str


def chosen(engine: str, prefer_lmstudio: bool) -> bool:
    """Whether ``install --engine ENGINE`` goes through LM Studio: named, or ``auto`` with
    ``--prefer-lmstudio`` when ``lms`` is installed."""
    if engine == ENGINE:
        return True
    return engine == "auto" and prefer_lmstudio \
        and lms.find_lms(current().lmstudio_home) is not None


def _verdict(model: str) -> ModelVerdict:
    return calibrate.chosen(take_snapshot(settings=current()), model)


def doctor_bytes(key: str, settings: LoadSettings) -> dict[str, int]:
    """The doctor's estimate (install/estimate.py) for ``settings``: GPU and total bytes."""
    entry = catalog.entry(key)
    if entry is None:
        raise UsageError(f"no released gpt-oss called {key}")
    est = estimate(entry.shape, MemorySettings(
        n_ctx=settings.n_ctx, n_ubatch=settings.n_ubatch, flash_attn=settings.flash_attn,
        swa_full=settings.swa_full, use_mmap=settings.use_mmap,
        repack=settings.n_gpu_layers == 0), on_gpu=settings.n_gpu_layers != 0,
        n_cpu_moe=settings.n_cpu_moe)
    return {"gpu": est.gpu_total_bytes, "total": est.total_bytes}


def agreement(theirs: lms.LmsEstimate, ours: dict[str, int]) -> tuple[Agreement, ...]:
    rows = []
    for what, value in (("gpu", theirs.gpu_bytes), ("total", theirs.total_bytes)):
        mine = ours[what]
        if value is None or not max(value, mine):  # unknown, or nothing on either side
            rows.append(Agreement(what, value, mine, None, None if value is None else True))
            continue
        ratio = value / mine if mine else None
        rows.append(Agreement(what, value, mine, None if ratio is None else round(ratio, 3),
                              abs(value - mine) <= FIT_TOLERANCE * max(value, mine)))
    return tuple(rows)


class _Runner:
    """Runs ``lms`` commands with a progress line each and keeps the record."""

    def __init__(self, lms_path: str, feedback: Feedback) -> None:
        self.lms = lms_path
        self.feedback = feedback
        self.steps: list[Step] = []

    def __call__(self, name: str, args: tuple[str, ...], timeout_s: float,
                 port: int | None = None) -> lms.Ran:
        label = "lms " + " ".join(args)
        with self.feedback.task(label) as task:
            ran = lms.run(self.lms, args, timeout_s,
                          lambda s: task.update(description=f"{label} ({s:.0f} s)"))
        self.steps.append(Step(name, ran.command, ran.returncode, round(ran.seconds, 2)))
        if ran.returncode != 0:
            raise lms.classify(ran, name, port)
        return ran


def _loaded(text: str, identifier: str) -> dict[str, Any] | None:
    """The instance ``lms ps --json`` lists under ``identifier`` (a few known fields)."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also a 5,000-digit integer
        return None
    for item in body if isinstance(body, list) else []:
        if isinstance(item, dict) and identifier in (item.get("identifier"),
                                                     item.get("modelKey")):
            keep = ("identifier", "modelKey", "path", "sizeBytes", "contextLength", "format")
            return {k: item[k] for k in keep if isinstance(item.get(k), (str, int))
                    and not isinstance(item.get(k), bool) and len(str(item[k])) < 1024}
    return None


def _ready(endpoint: ep.Endpoint, model: str, feedback: Feedback) -> None:
    """Wait until the server lists ``model`` at ``/v1/models``."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    with feedback.task(f"waiting for {endpoint.base_url}/models"):
        while time.monotonic() < deadline:
            try:
                body, _ = ep.get_json(endpoint, f"{endpoint.base_url}/models")
                models = ep.parse_models(body)
                if model in models:
                    return
                last = f"it lists {', '.join(models[:5]) or 'no model'}"
            except ep.EndpointError as exc:
                last = exc.message
            time.sleep(0.5)
    raise lms.LmsError("not-ready", f"LM Studio's server at {endpoint.base_url} did not list "
                       f"{model} within {READY_TIMEOUT_S:.0f} s ({last})",
                       "see `lms ps` and `lms server status`, then run this again")


def _smoke(endpoint: ep.Endpoint, model: str) -> dict[str, Any]:
    start = time.monotonic()
    answer = ep.post_json(endpoint, "/chat/completions", {
        "model": model, "messages": [{"role": "user", "content": SMOKE_PROMPT}],
        "max_tokens": 128, "temperature": 0})
    seconds = time.monotonic() - start
    choices = answer.get("choices")
    message = choices[0].get("message") if isinstance(choices, list) and choices \
        and isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    usage = answer.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not isinstance(content, str):
        raise lms.LmsError("smoke", f"the smoke test through {endpoint.base_url} got no "
                           "assistant message back", "see `lms log stream` for the server's "
                           "side")
    return {"prompt": SMOKE_PROMPT, "reply": content[:500], "seconds": round(seconds, 3),
            "completion_tokens": tokens if isinstance(tokens, int) else None}


def install(options: LmsOptions, feedback: Feedback) -> LmsInstalled:
    """get → estimate → load → server start → readiness → smoke test → recipe."""
    settings = current()
    lms_path = lms.require_lms(settings.lmstudio_home)
    plan = _plan(_verdict(options.model), options.n_ctx)
    notes = list(plan.notes)
    run = _Runner(lms_path, feedback)
    key, model_key = plan.verdict.key, plan.model_key
    _get(run, plan, notes)
    theirs, table = _estimate(run, plan)
    run("load", lms.load_args(key, plan.settings.n_ctx, plan.gpu, estimate_only=False),
        lms.LOAD_TIMEOUT_S)
    loaded = _loaded(run("ps", ("ps", "--json"), lms.SHORT_TIMEOUT_S).stdout, model_key)
    if loaded is None:
        notes.append("`lms ps --json` did not list the model in a form this project reads")
    _serve(run, options.port, notes)
    endpoint = ep.Endpoint(f"http://127.0.0.1:{options.port}/v1", None, SMOKE_TIMEOUT_S)
    _ready(endpoint, model_key, feedback)
    with feedback.task("smoke test through LM Studio's server"):
        smoke = _smoke(endpoint, model_key)
    memory = plan.verdict.memory
    done = LmsInstalled(f"gpt-oss-{key}", key, model_key, plan.variant, plan.settings,
                        plan.gpu, theirs, table, theirs.passes_guardrails,
                        to_json(memory) if memory else None, loaded, endpoint.base_url,
                        smoke, tuple(run.steps), tuple(notes), "")
    path = settings.models_dir / "recipes" / f"gpt-oss-{key}-lmstudio.json"
    write_recipe(build_recipe(done), path)
    return dataclasses.replace(done, recipe=str(path))


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the verdict asks of LM Studio: the settings, the variant (``gguf`` or ``mlx``),
    ``lms load --gpu`` and the layers it puts on the GPU, and notes on what differs."""

    verdict: ModelVerdict
    settings: LoadSettings
    variant: str
    gpu: str
    gpu_layers: int
    notes: tuple[str, ...]

    @property
    def model_key(self) -> str:
        return lms.model_key(self.verdict.key)


def _plan(verdict: ModelVerdict, n_ctx: int | None) -> _Plan:
    """The verdict's settings as ``lms`` can take them (it has no expert offload)."""
    entry = catalog.entry(verdict.key)
    assert entry is not None  # the verdict's key comes from the catalogue
    planned = (verdict.load_settings or LoadSettings()).with_overrides(n_ctx=n_ctx)
    gpu_layers = planned.n_gpu_layers
    notes: list[str] = []
    if planned.n_cpu_moe and gpu_layers != 0:  # lms cannot keep experts on the CPU
        gpu_layers = max(entry.shape.n_layer - planned.n_cpu_moe, 1)
        notes.append(f"lms load has no expert offload: {gpu_layers} of {entry.shape.n_layer} "
                     f"layers go to the GPU instead of --n-cpu-moe {planned.n_cpu_moe}")
    variant = "mlx" if verdict.engine == "mlx" else "gguf"
    # An MLX plan has no layer count: the whole model is on the Metal GPU.
    gpu = "max" if variant == "mlx" else lms.gpu_setting(
        planned.with_overrides(n_gpu_layers=gpu_layers), entry.shape.n_layer)
    return _Plan(verdict, planned, variant, gpu, gpu_layers, tuple(notes))


def _get(run: _Runner, plan: _Plan, notes: list[str]) -> None:
    """``lms get`` the variant unless ``lms ls`` lists it already."""
    key, mlx = plan.verdict.key, plan.variant == "mlx"
    if lms.downloaded(run("ls", ("ls", "--json"), lms.SHORT_TIMEOUT_S).stdout, key, mlx):
        notes.append(f"{plan.model_key} ({plan.variant}) is already in LM Studio; "
                     "not downloaded again")
    else:
        run("get", lms.get_args(key, mlx), lms.GET_TIMEOUT_S)


def _estimate(run: _Runner, plan: _Plan) -> tuple[lms.LmsEstimate, tuple[Agreement, ...]]:
    """LM Studio's estimate and the agreement table; an LmsError where its guardrail would
    refuse the load."""
    key, n_ctx, gpu = plan.verdict.key, plan.settings.n_ctx, plan.gpu
    ran = run("estimate", lms.load_args(key, n_ctx, gpu, estimate_only=True),
              lms.SHORT_TIMEOUT_S)
    theirs = lms.parse_estimate(ran.stdout)
    on_gpu = -1 if gpu == "max" else 0 if gpu == "off" else plan.gpu_layers
    table = agreement(theirs, doctor_bytes(key, plan.settings.with_overrides(
        n_gpu_layers=on_gpu)))
    if theirs.passes_guardrails is False:
        total = f"{theirs.total_bytes / GIB:.2f} GiB" if theirs.total_bytes else "?"
        raise lms.LmsError("guardrail", f"LM Studio estimates {total} for {plan.model_key} "
                           f"at {n_ctx} tokens (the doctor: "
                           f"{table[1].doctor_bytes / GIB:.2f} GiB) and its guardrail will "
                           "refuse to load it", "use a shorter context (--ctx) or relax "
                           "'Model loading guardrails' in LM Studio's settings")
    return theirs, table


def _serve(run: _Runner, port: int, notes: list[str]) -> None:
    """``lms server start`` on ``port`` unless LM Studio's server already runs there."""
    running, on_port = lms.parse_server_status(
        run("status", ("server", "status", "--json"), lms.SHORT_TIMEOUT_S).stdout)
    if running and on_port == port:
        notes.append(f"LM Studio's server already runs on port {port}; kept")
    else:
        run("server", lms.server_start_args(port), lms.SHORT_TIMEOUT_S, port)


def build_recipe(done: LmsInstalled) -> dict[str, Any]:
    """A recipe for an install through LM Studio: the endpoint, every command run, and the
    commands that bring the server back (``lms load`` and ``lms server start``)."""
    port = done.endpoint.rsplit(":", 1)[1].split("/")[0]
    load = ["lms", *lms.load_args(done.key, done.settings.n_ctx, done.gpu,
                                  estimate_only=False)]
    snippet = (
        "from openai import OpenAI\n"
        f"client = OpenAI(base_url='{done.endpoint}', api_key='lm-studio')\n"
        f"reply = client.chat.completions.create(model='{done.model_key}', messages=[\n"
        "    {'role': 'user', 'content': 'Say hello in five words.'}])\n"
        "print(reply.choices[0].message.content)\n")
    return {"kind": RECIPE_KIND, "schema_version": RECIPE_SCHEMA_VERSION, "model": done.model,
            "key": done.key, "engine": ENGINE, "backend": "LM Studio",
            "model_path": (done.loaded or {}).get("path") or done.model_key,
            "files": [], "load_settings": {k: v for k, v in to_json(done.settings).items()
                                           if v is not None},
            "endpoint": {"url": done.endpoint, "model": done.model_key},
            "lmstudio": {"model_key": done.model_key, "variant": done.variant,
                         "gpu": done.gpu, "estimate": to_json(done.estimate),
                         "agreement": [to_json(a) for a in done.agreement],
                         "loaded": done.loaded},
            "commands": [to_json(s) for s in done.steps],
            "serve_command": [*load, "&&", "lms", *lms.server_start_args(int(port))],
            "openai_sdk_snippet": snippet}


def endpoint_recipe(path: Path, timeout_s: float) -> EndpointOptions | None:
    """The endpoint of a recipe written by ``install --engine lmstudio``; None for a recipe
    of an in-process engine (read by ``app.tools.read_recipe``)."""
    recipe = read_json(path, RECIPE_LIMITS, kind="a JSON recipe")
    if not isinstance(recipe, dict) or recipe.get("kind") != RECIPE_KIND \
            or recipe.get("engine") != ENGINE:
        return None
    served = recipe.get("endpoint")
    if not isinstance(served, dict) or not isinstance(served.get("url"), str) \
            or not isinstance(served.get("model"), str):
        raise UsageError(f"{path} is an LM Studio recipe without an endpoint url and model",
                         "run `gptoss-doctor install --engine lmstudio` again")
    return EndpointOptions(served["url"], served["model"], None, timeout_s)
