"""The verdict for each model on one machine: pure ``assess(snapshot) -> Assessment``.

For every model the planner tries placements from fastest to slowest and keeps the first
that fits, with the largest context that still fits with margin:

1. MLX on Apple Silicon, when the model fits 0.9 x the Metal working set;
2. every layer on the GPU (llama.cpp CUDA/ROCm/Metal);
3. expert offload: attention, router and KV on the GPU, the experts of the first
   ``n_cpu_moe`` layers in host RAM (llama.cpp ``--n-cpu-moe``);
4. CPU only (llama.cpp, loaded without mmap so the repacked copy is the only copy).

Every choice carries its reasons; a model that does not fit says what would make it fit.
"""

from __future__ import annotations

from dataclasses import replace

from gptoss_doctor.catalog import CATALOG, CONTEXT_CHOICES, ModelEntry
from gptoss_doctor.install import board_power, predict
from gptoss_doctor.install.estimate import GIB, MemoryEstimate, MemorySettings, estimate
from gptoss_doctor.install.groups import compared, fastest
from gptoss_doctor.install.resources import (
    GPU_MARGIN_BYTES,
    MACOS_RESERVE_BYTES,
    OS_RESERVE_BYTES,
    RAM_MARGIN_BYTES,
    Resources,
    fastest_first,
    gpu_groups,
    resources,
    split,
)
from gptoss_doctor.install.verdict_records import (
    Alternative,
    Assessment,
    MemoryNeeds,
    ModelVerdict,
    Ttft,
    offload_note,
)
from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.types import Placement

# mlx-lm wires the weights into the Metal working set and warns above 90 % of it; people run
# 20b on MLX on 24 GB Macs (docs/calibration.md, "Placement"), which a further 3 GiB reserve
# refused.
MLX_BUDGET_FACTOR = 0.9
MLX_RUNTIME_BYTES = 1 * GIB  # prefill activations and the Python process
# What a model wholly on a discrete GPU still needs in host RAM (token embeddings and the
# process) when the RAM itself cannot be read: any machine with a GPU this size has it.
UNKNOWN_RAM_HOST_BYTES = 2 * GIB
# Expert-offload plans are made at this context (docs/design.md, "Expert offload"): long
# enough for multi-turn chats with tool output, while every doubling beyond it moves more
# experts to the CPU, which is what sets the speed people see (issue 14).
OFFLOAD_CONTEXT = 32768
CMAKE_ARGS = {"CUDA": "-DGGML_CUDA=on", "ROCm": "-DGGML_HIP=on", "Vulkan": "-DGGML_VULKAN=on",
              "Metal": "-DGGML_METAL=on", "CPU": ""}


def _gib(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


def _fits(est: MemoryEstimate, res: Resources, extra_gpu_bytes: int = 0) -> bool:
    ram = res.ram_budget_bytes
    if not est.on_gpu:
        return ram is not None and est.cpu_total_bytes <= ram
    if (res.gpu_budget_bytes is None
            or est.gpu_total_bytes + extra_gpu_bytes > res.gpu_budget_bytes):
        return False
    if ram is None:
        # RAM unreadable: a model wholly on a discrete GPU still fits (host RAM then holds
        # little more than the process); anything that needs host RAM cannot be checked.
        return not res.unified and est.cpu_total_bytes <= UNKNOWN_RAM_HOST_BYTES
    if res.unified:  # GPU and CPU parts come out of the same RAM
        return est.gpu_total_bytes + est.cpu_total_bytes <= ram
    return est.cpu_total_bytes <= ram


def _settings(ctx: int, weights_on_cpu: bool) -> MemorySettings:
    # llama-cpp-python's defaults (no flash attention, full-size SWA cache, mmap + CPU
    # repack) double gpt-oss's memory; these settings do not (docs/design.md, "Measured
    # buffers"). Whenever
    # expert weights live in host RAM (CPU only or expert offload) the CPU backend repacks
    # them, so mmap would keep a second copy: load without it.
    return MemorySettings(n_ctx=ctx, flash_attn=True, swa_full=False,
                        use_mmap=not weights_on_cpu, repack=weights_on_cpu)


def _load_settings(settings: MemorySettings, n_gpu_layers: int, n_cpu_moe: int
                   ) -> LoadSettings:
    return LoadSettings(n_ctx=settings.n_ctx, n_ubatch=settings.n_ubatch,
                        flash_attn=settings.flash_attn, swa_full=settings.swa_full,
                        use_mmap=settings.use_mmap, n_gpu_layers=n_gpu_layers,
                        n_cpu_moe=n_cpu_moe)


def _ttft(rate: predict.Rate) -> tuple[Ttft, ...]:
    return tuple(Ttft(tokens, seconds) for tokens, seconds in rate.ttft_s)


def _try_mlx(entry: ModelEntry, res: Resources) -> ModelVerdict | None:
    if res.apple_budget_bytes is None:
        return None
    limit = int(MLX_BUDGET_FACTOR * res.apple_budget_bytes)
    shape = entry.shape
    for ctx in CONTEXT_CHOICES:
        kv = shape.n_full_layers * ctx * 2 * shape.kv_embd * 2  # sliding layers rotate at 128
        need = shape.weights_bytes + kv + MLX_RUNTIME_BYTES
        if need <= limit:
            rate = predict.predict(entry.shape, res, placement="unified", n_cpu_moe=0)
            return ModelVerdict(
                model=shape.name, key=entry.key, status=predict.status(rate), engine="mlx",
                backend="MLX", placement="unified", context_length=ctx,
                memory=MemoryNeeds(need, 0, limit, res.ram_budget_bytes),
                predicted_tokens_per_s=rate.expected, roofline_tokens_per_s=rate.ceiling,
                speed_basis=rate.basis, predicted_prompt_tokens_per_s=rate.pp_tokens_per_s,
                predicted_ttft=_ttft(rate),
                load_settings=LoadSettings(n_ctx=ctx),
                reasons=(f"MLX: {_gib(need)} fits 0.9 x Metal working set = "
                         f"{_gib(limit)} at {ctx} context",),
                install_command=f"gptoss-doctor install --model {entry.key} --engine mlx")
    return None


def _verdict(entry: ModelEntry, res: Resources, placement: Placement, ctx: int, n_cpu_moe: int,
             est: MemoryEstimate, reasons: list[str]) -> ModelVerdict:
    on_gpu = placement != "cpu"
    host_need = est.cpu_total_bytes + (est.gpu_total_bytes if res.unified else 0)
    free_now = res.ram_free_now_bytes
    if free_now is not None and host_need > free_now:
        reasons = [*reasons, f"only {_gib(free_now)} of RAM is free right now and this needs "
                   f"{_gib(host_need)}: close other programs before loading the model"]
    rate = predict.predict(entry.shape, res, placement=placement, n_cpu_moe=n_cpu_moe,
                         cpu_cores=res.cpu_cores)
    backend = res.backend if on_gpu else "CPU"
    settings = _settings(ctx, weights_on_cpu=placement != "gpu")
    return ModelVerdict(
        model=entry.shape.name, key=entry.key, status=predict.status(rate), engine="llama.cpp",
        backend=backend, placement=placement, n_cpu_moe=n_cpu_moe if n_cpu_moe else None,
        context_length=ctx,
        memory=MemoryNeeds(est.gpu_total_bytes, est.cpu_total_bytes, res.gpu_budget_bytes,
                           res.ram_budget_bytes),
        predicted_tokens_per_s=rate.expected, roofline_tokens_per_s=rate.ceiling,
        speed_basis=rate.basis, predicted_prompt_tokens_per_s=rate.pp_tokens_per_s,
        predicted_ttft=_ttft(rate),
        load_settings=_load_settings(settings, -1 if on_gpu else 0, n_cpu_moe),
        cmake_args=CMAKE_ARGS.get(res.backend if on_gpu else "CPU", ""),
        reasons=tuple(reasons),
        install_command=f"gptoss-doctor install --model {entry.key}")


def _try_gpu(entry: ModelEntry, res: Resources) -> ModelVerdict | None:
    if res.gpu_budget_bytes is None:
        return None
    if len(res.devices) > 1:
        # One card when one holds it: no split, no cross-device traffic, its own speed.
        for device in fastest_first(res.devices):
            one = replace(res, gpu_names=(device.name,), gpu_budget_bytes=device.budget_bytes,
                          gpu_bandwidth=device.bandwidth, gpu_flops=device.flops, devices=())
            verdict = _try_gpu(entry, one)
            if verdict is not None:
                return replace(verdict, reasons=(
                    *verdict.reasons, f"one GPU is enough: run on {device.name} alone "
                    "(CUDA_VISIBLE_DEVICES / --device), the others stay free"))
        res = split(res)
    copies = max(1, len(res.devices))
    for ctx in CONTEXT_CHOICES:
        est = estimate(entry.shape, _settings(ctx, weights_on_cpu=False), on_gpu=True)
        if _fits(est, res, extra_gpu_bytes=(copies - 1) * est.compute_bytes):
            where = ", ".join(res.gpu_names) or res.backend
            return _verdict(entry, res, "gpu", ctx, 0, est, [
                f"all layers on the GPU ({where}): {_gib(est.gpu_total_bytes)} needed of "
                f"{_gib(res.gpu_budget_bytes or 0)} at {ctx} context"])
    return None


def _min_cpu_moe(entry: ModelEntry, res: Resources, ctx: int) -> tuple[int, MemoryEstimate] | None:
    for n_cpu_moe in range(1, entry.shape.n_layer + 1):
        est = estimate(entry.shape, _settings(ctx, weights_on_cpu=True), on_gpu=True,
                       n_cpu_moe=n_cpu_moe)
        if _fits(est, res):
            return n_cpu_moe, est
    return None


def _try_offload(entry: ModelEntry, res: Resources) -> ModelVerdict | None:
    # On unified memory the "host RAM" the experts would move to is the same memory: expert
    # offload saves nothing there (issue 14; llama.cpp's guide: 120b needs a > 96 GB Mac).
    if res.unified or res.gpu_budget_bytes is None or not entry.shape.expert_bytes_per_layer:
        return None
    if len(res.devices) > 1:
        res = split(res)
    options = []
    for ctx in CONTEXT_CHOICES:
        found = _min_cpu_moe(entry, res, ctx)
        if found is not None:
            rate = predict.predict(entry.shape, res, placement="expert-offload",
                                   n_cpu_moe=found[0], cpu_cores=res.cpu_cores)
            options.append((ctx, found[0], found[1], rate))
    if not options:
        return None
    # Fewer experts on the CPU generate faster: plan at the working context, not the largest.
    working = next((o for o in options if o[0] <= OFFLOAD_CONTEXT), options[-1])
    # ... and at a larger context when that keeps no more experts on the CPU.
    ctx, n_cpu_moe, est, _rate = next(o for o in options if o[1] == working[1])
    reasons = [f"the whole model does not fit the GPU budget "
               f"({_gib(res.gpu_budget_bytes or 0)}): experts of {n_cpu_moe} of "
               f"{entry.shape.n_layer} layers stay in RAM ({_gib(est.cpu_total_bytes)}), "
               f"the rest on the GPU ({_gib(est.gpu_total_bytes)}) at {ctx} context"]
    indices = "|".join(str(i) for i in range(n_cpu_moe))
    layers = indices if n_cpu_moe == 1 else f"({indices})"
    reasons.append(f"llama.cpp: `llama-server --n-cpu-moe {n_cpu_moe}`; in-process the same "
                   f"as the tensor override `blk\\.{layers}\\.ffn_.*_exps=CPU`")
    alternatives = tuple(Alternative(c, n, r.expected, r.pp_tokens_per_s)
                         for c, n, _e, r in options)
    if len(alternatives) > 1:
        reasons.append(offload_note(ctx, alternatives))
    verdict = _verdict(entry, res, "expert-offload", ctx, n_cpu_moe, est, reasons)
    return replace(verdict, alternatives=alternatives)


def _try_raised_limit(entry: ModelEntry, res: Resources) -> ModelVerdict | None:
    """A Mac whose Metal working set, or an AMD APU whose default GTT limit, is too small
    for the model while the memory itself is not: the GPU runs it once the limit is raised."""
    if res.ram_budget_bytes is None or res.gpu_budget_bytes is None:
        return None
    if not (res.gtt_limited or (res.backend == "Metal" and res.apple_budget_bytes)):
        return None
    verdict = _try_gpu(entry, replace(res, gpu_budget_bytes=res.ram_budget_bytes))
    if verdict is None or verdict.memory is None:
        return None
    mib = -(-(verdict.memory.gpu_bytes + GPU_MARGIN_BYTES) // 1024**2)
    if res.backend == "Metal":
        how = (f"the default Metal working set ({_gib(res.gpu_budget_bytes + GPU_MARGIN_BYTES)})"
               f" is too small: raise it with `sudo sysctl iogpu.wired_limit_mb={mib}` (until "
               "the next restart); macOS keeps the rest, so close other programs first")
    else:
        how = (f"the kernel's default GTT limit ({_gib(res.gpu_budget_bytes)}) is too small: "
               f"boot with `amdgpu.gttsize={mib} ttm.pages_limit={mib * 256}` on the kernel "
               "command line (or lower the BIOS carve-out)")
    return replace(verdict, reasons=(*verdict.reasons, how))


def _try_cpu(entry: ModelEntry, res: Resources) -> ModelVerdict | None:
    if res.backend == "Metal":
        return None  # the same unified memory, read slower: never better than the GPU
    for ctx in CONTEXT_CHOICES:
        est = estimate(entry.shape, _settings(ctx, weights_on_cpu=True), on_gpu=False)
        if _fits(est, res):
            assert res.ram_budget_bytes is not None
            reason = (f"CPU only: {_gib(est.cpu_total_bytes)} of RAM needed of "
                      f"{_gib(res.ram_budget_bytes)} at {ctx} context")
            return _verdict(entry, res, "cpu", ctx, 0, est, [reason])
    return None


def _does_not_fit(entry: ModelEntry, res: Resources) -> ModelVerdict:
    small = CONTEXT_CHOICES[-1]
    cpu = estimate(entry.shape, _settings(small, weights_on_cpu=True), on_gpu=False)
    gpu = estimate(entry.shape, _settings(small, weights_on_cpu=False), on_gpu=True)
    offload = estimate(entry.shape, _settings(small, weights_on_cpu=True), on_gpu=True,
                       n_cpu_moe=entry.shape.n_layer)
    # Budgets are installed RAM minus the OS reserve and margin, VRAM minus the margin:
    # state requirements in the same terms.
    host_extra = OS_RESERVE_BYTES + RAM_MARGIN_BYTES
    ram = res.ram_budget_bytes
    reasons = [f"needs {_gib(cpu.cpu_total_bytes)} of RAM to run on the CPU at {small} context"
               + (f"; this machine has a {_gib(ram)} budget" if ram is not None else "")]
    if res.gpu_budget_bytes is not None:
        reasons.append(f"needs {_gib(gpu.gpu_total_bytes)} of GPU memory for a full offload; "
                       f"the GPU budget is {_gib(res.gpu_budget_bytes)}")
    if res.unified:
        need = gpu.gpu_total_bytes + gpu.cpu_total_bytes
        reasons.append("unified memory: moving experts to \"RAM\" saves nothing, it is the "
                       "same memory")
        if res.backend == "Metal":
            smallest = -(-max(need + MACOS_RESERVE_BYTES, need * 10 // 9) // 1000**3)
            return ModelVerdict(
                model=entry.shape.name, key=entry.key, status="does-not-fit",
                reasons=(f"needs {_gib(need)} of unified memory at {small} context; this Mac "
                         f"can give it {_gib(ram or 0)}", *reasons[-1:]),
                fixes=(f"a Mac with more than {smallest} GB of unified memory ({_gib(need)} "
                       "for the model at 4096 context, and room for macOS)",))
    fixes = [f"at least {_gib(cpu.cpu_total_bytes + host_extra)} of RAM (CPU only, slow)",
             f"a GPU with at least {_gib(gpu.gpu_total_bytes + GPU_MARGIN_BYTES)} of free "
             "VRAM (fast), or several whose VRAM adds up to it",
             f"a GPU with {_gib(offload.gpu_total_bytes + GPU_MARGIN_BYTES)}+ of free VRAM and "
             f"{_gib(offload.cpu_total_bytes + host_extra)}+ of RAM (experts on the CPU)"]
    return ModelVerdict(model=entry.shape.name, key=entry.key, status="does-not-fit",
                        reasons=tuple(reasons), fixes=tuple(fixes))


def evaluate(entry: ModelEntry, res: Resources, engine: str = "auto") -> ModelVerdict:
    """The fastest placement of ``entry`` that fits ``res`` (``engine`` may force one)."""
    attempts = {"auto": (_try_mlx, _try_gpu, _try_offload, _try_raised_limit, _try_cpu),
                "mlx": (_try_mlx,),
                "llama.cpp": (_try_gpu, _try_offload, _try_raised_limit, _try_cpu)}[engine]
    for attempt in attempts:
        verdict = attempt(entry, res)
        if verdict is not None:
            return verdict
    if engine == "mlx" and res.apple_budget_bytes is None:
        # Asked for by name off a Mac: mlx's Linux CPU backend, for testing the MLX path.
        cpu = _try_mlx_cpu(entry, res)
        if cpu is not None:
            return cpu
        return ModelVerdict(model=entry.shape.name, key=entry.key, status="does-not-fit",
                            reasons=("MLX runs on Apple Silicon; this machine has none, and "
                                     "its RAM cannot hold the model for mlx's CPU backend",),
                            fixes=("--engine llama.cpp (or auto)",))
    return _does_not_fit(entry, res)


def _try_mlx_cpu(entry: ModelEntry, res: Resources) -> ModelVerdict | None:
    """MLX on a CPU (``mlx-lm[cpu]`` on Linux): it works, slowly — a testing path only."""
    if res.ram_budget_bytes is None:
        return None
    shape = entry.shape
    ctx = CONTEXT_CHOICES[-1]
    kv = shape.n_full_layers * ctx * 2 * shape.kv_embd * 2
    need = shape.weights_bytes + kv + MLX_RUNTIME_BYTES
    if need > res.ram_budget_bytes:
        return None
    return ModelVerdict(
        model=shape.name, key=entry.key, status="slow", engine="mlx", backend="MLX (CPU)",
        placement="cpu", context_length=ctx,
        memory=MemoryNeeds(0, need, None, res.ram_budget_bytes),
        speed_basis="not predicted: mlx's CPU backend uses a slow reference BLAS",
        load_settings=LoadSettings(n_ctx=ctx),
        reasons=(f"MLX on this CPU: {_gib(need)} of RAM at {ctx} context, within the "
                 f"{_gib(res.ram_budget_bytes)} budget",
                 "a testing path only: mlx's CPU backend is far slower than llama.cpp here, "
                 "and its speed says nothing about Apple silicon"),
        fixes=("--engine llama.cpp (or auto) for real use on this machine",),
        install_command=f"gptoss-doctor install --model {entry.key} --engine mlx")


def _advice(snap: HardwareSnapshot, res: Resources) -> tuple[str, ...]:
    advice: list[str] = []
    if res.datacenter:
        advice.append("Datacenter GPU: to serve many users at once, vLLM batches requests "
                      "far better than llama.cpp; `gptoss-doctor bench speed --endpoint URL "
                      "--concurrency 1,2,4,8` measures a running vLLM, LM Studio, Ollama or "
                      "llama-server endpoint.")
    if snap.cpu.arch in ("x86_64", "AMD64") and not snap.cpu.has_avx2 and snap.cpu.flags:
        advice.append("This CPU lacks AVX2: llama.cpp's CPU kernels will be several times "
                      "slower than on a recent CPU.")
    return tuple(advice)


def with_energy(verdict: ModelVerdict, res: Resources) -> ModelVerdict:
    """The predicted J/token of a model placed wholly on GPUs whose board power is known."""
    if verdict.placement != "gpu":
        return verdict  # the CPU's share of the power is not known
    found = board_power.estimate(res.gpu_names, verdict.predicted_tokens_per_s)
    if found is None:
        return verdict
    return replace(verdict, predicted_joules_per_token=found.joules_per_token,
                   energy_basis=found.basis)


def assess(snap: HardwareSnapshot, catalog: tuple[ModelEntry, ...] = CATALOG,
           engine: str = "auto") -> Assessment:
    """Verdicts for every model in ``catalog`` on the machine in ``snap`` (pure). With GPUs
    of several vendors (one llama.cpp build drives one of them), each model is planned on
    each group and the faster plan is kept (``install.groups``)."""
    options = [resources(snap, group) for group in gpu_groups(snap)]
    verdicts = []
    chosen = []
    for entry in catalog:
        plans = [with_energy(evaluate(entry, res, engine), res) for res in options]
        best = fastest(plans)
        chosen.append(best)
        verdicts.append(compared(plans, best, options))
    res = options[max(set(chosen), key=lambda i: (chosen.count(i), -i))]
    return Assessment(verdicts=tuple(verdicts), resource_reasons=res.reasons,
                      advice=_advice(snap, res))
