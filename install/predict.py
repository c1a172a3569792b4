"""Predicted generation (tg) and prompt (pp) speed: a calibrated model, not a bench.

Generating one token reads every active weight once: attention and router weights of every
layer, ``n_expert_used`` of ``n_expert`` experts per layer, the output matrix. The model is

    seconds/token = bytes on the device / (device bandwidth x DEVICE_EFFICIENCY)
                  + bytes in host RAM / (host bandwidth x HOST_EFFICIENCY)
                  + a fixed per-token overhead of the backend (kernel launches, sync, sampling)
                  + a hand-over cost per layer whose experts run on the CPU (expert offload)

with a compute bound on CPUs with few cores. The overhead is why a fixed fraction of the
bandwidth ceiling cannot fit both an 800 GB/s card and a 270 GB/s one (issue 14): on a fast
device it is most of the time. Prompt processing is compute-bound: 2 x active parameters
FLOPs per token over the device's dense FP16 FLOPS x a per-backend efficiency; with expert
offload, every micro-batch also streams the offloaded experts over PCIe.

The constants below are fitted by ``install.calibrate.fit`` on the published measurements in
``tests/fixtures/calibration/measurements.csv``; ``nox -s calibration`` prints the fit and its
leave-one-out errors per hardware class (README, "Speed predictions"), and a test checks that
these values are the fit of the committed data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gptoss_doctor.catalog import ModelShape
from gptoss_doctor.install.resources import Resources
from gptoss_doctor.types import VerdictStatus

SLOW_TOKENS_PER_S = 10.0
# A CPU generates at most this many tokens/s per core at 3.6 B active parameters (measured
# on this project's CI machine, README "Agreement with llama-bench": 16.39 t/s on 2 cores).
CPU_TOKENS_PER_S_PER_CORE_AT_3_6B = 8.2
# llama.cpp's CPU kernels without AVX2 lack the int8 multiply-add the quantized dot products
# use; assumed to halve the per-core rate (no measurement in the dataset).
NO_AVX2_FACTOR = 0.5
# Expert offload streams the offloaded experts to the GPU once per prompt micro-batch:
# practical PCIe 4.0 x16 rate and llama.cpp's default n_ubatch.
PCIE_BYTES_PER_S = 25e9
UBATCH = 512
# Prompt speed falls with depth as attention grows: pp at depth d ~ pp0 / (1 + d / DEPTH).
# From llama-bench at depths 0..16k on a GB10 (20b: 3610 -> 2686 t/s) and a 12-channel EPYC
# (120b, CPU: 206 -> 126 t/s at 6k): about 48k tokens on GPUs, 9.5k on CPUs.
PP_DEPTH_TOKENS = {"gpu": 48_000.0, "cpu": 9_500.0}
TTFT_PROMPTS = (1024, 8192)
# Intel Arc reaches a smaller share of its memory bandwidth in llama.cpp than NVIDIA and AMD
# cards do: on llama.cpp's Vulkan scoreboard (one model, one llama-bench command for every
# card; tests/fixtures/calibration/vulkan-scoreboard.csv) the Intel cards' geometric-mean
# efficiency is 0.56 of the other cards'. Derived from that independent data, not fitted on
# the gpt-oss rows (which hold one Intel measurement): that row stays a held-out check.
# ``install.calibrate.vendor_efficiency`` recomputes it; a test keeps the two equal.
VENDOR_EFFICIENCY = {"intel": 0.56}


@dataclass(frozen=True, slots=True)
class SpeedConstants:
    """The fitted constants of the speed model (see the module docstring)."""

    device_efficiency: float  # discrete GPU memory (GDDR, HBM)
    host_efficiency: float  # host RAM read by the CPU
    unified_efficiency: float = 0.0  # a GPU reading unified LPDDR (Apple, GB10, AMD APUs)
    pp_moe_exponent: float = 0.0  # pp efficiency x (tokens per expert / 64) ** this
    offload_layer_ms: float = 0.0  # per token and offloaded layer: GPU <-> CPU hand-over
    overhead_ms: dict[str, float] = field(default_factory=dict)  # per backend
    pp_efficiency: dict[str, float] = field(default_factory=dict)  # per backend, of FLOPS

    def overhead_s(self, backend: str) -> float:
        return self.overhead_ms.get(overhead_key(backend), 0.0) / 1000

    def pp_eff(self, backend: str) -> float:
        key = overhead_key(backend)
        if key in self.pp_efficiency:
            return self.pp_efficiency[key]
        values = sorted(self.pp_efficiency.values())
        return values[len(values) // 2] if values else 0.1


def overhead_key(backend: str) -> str:
    """The constant set a backend uses. llama.cpp's Metal backend has no measurement of its
    own in the dataset yet and shares MLX's (both drive the same Apple GPU through Metal)."""
    return {"Metal": "MLX", "MLX (CPU)": "CPU"}.get(backend, backend)


# Fitted by `nox -s calibration` (install.calibrate.fit) on the dataset's `use=fit` rows.
CONSTANTS = SpeedConstants(
    device_efficiency=0.544, host_efficiency=0.638, unified_efficiency=0.739,
    pp_moe_exponent=0.521, offload_layer_ms=0.486,
    overhead_ms={"CPU": 8.46, "CUDA": 0.59, "MLX": 3.27, "ROCm": 3.4, "Vulkan": 0.13},
    pp_efficiency={"CPU": 0.529, "CUDA": 0.239, "MLX": 0.426, "ROCm": 0.233, "Vulkan": 0.134})


@dataclass(frozen=True, slots=True)
class Rate:
    """Expected tokens/s, the bandwidth ceiling, prompt speed and time to first token."""

    expected: float | None
    ceiling: float | None
    basis: str
    pp_tokens_per_s: float | None = None
    ttft_s: tuple[tuple[int, float], ...] = ()  # (prompt tokens, seconds)


@dataclass(frozen=True, slots=True)
class Workload:
    """Where one token's bytes are read from, and the devices' figures (bytes/s, FLOPS)."""

    backend: str
    device_bytes: float
    device_bps: float | None
    host_bytes: float
    host_bps: float | None
    active_params: float
    device_flops: float | None
    offloaded_expert_bytes: float = 0.0  # all experts of the offloaded layers
    offloaded_layers: int = 0
    cpu_threads: int | None = None
    avx2: bool = True
    unified: bool = False  # the device reads unified memory
    tokens_per_expert: float = 64.0  # per prompt micro-batch: UBATCH x used / experts
    host_measured: bool = False  # host_bps was measured here: it already is the achieved rate
    vendor: str | None = None  # the GPU's vendor ("intel": VENDOR_EFFICIENCY)


def token_seconds(w: Workload, c: SpeedConstants = CONSTANTS) -> float | None:
    """Seconds per generated token, or None when a bandwidth the work needs is unknown."""
    seconds = c.overhead_s(w.backend)
    if w.device_bytes:
        if not w.device_bps:
            return None
        efficiency = c.unified_efficiency if w.unified else c.device_efficiency
        efficiency *= VENDOR_EFFICIENCY.get(w.vendor or "", 1.0)
        seconds += w.device_bytes / (w.device_bps * efficiency)
    if w.host_bytes:
        if not w.host_bps:
            return None
        seconds += w.host_bytes / (w.host_bps * (1.0 if w.host_measured else c.host_efficiency))
    seconds += w.offloaded_layers * c.offload_layer_ms / 1000
    if w.backend == "CPU" and w.cpu_threads:
        per_core = CPU_TOKENS_PER_S_PER_CORE_AT_3_6B * (1.0 if w.avx2 else NO_AVX2_FACTOR)
        cap = w.cpu_threads * per_core * 3.6e9 / max(w.active_params, 1.0)
        seconds = max(seconds, 1 / cap)
    return seconds


def prompt_tokens_per_s(w: Workload, c: SpeedConstants = CONSTANTS) -> float | None:
    """Prompt tokens/s at short depth, or None when the device's FLOPS are unknown."""
    if not w.device_flops:
        return None
    efficiency = c.pp_eff(w.backend) * float((w.tokens_per_expert / 64) ** c.pp_moe_exponent)
    seconds = 2 * w.active_params / (w.device_flops * efficiency)
    if w.offloaded_expert_bytes:
        seconds += w.offloaded_expert_bytes / PCIE_BYTES_PER_S / UBATCH
    return 1 / seconds


def ttft_seconds(prompt_tokens: int, pp: float, tg_seconds: float, backend: str) -> float:
    """Time to first token: the prompt at a rate that falls with depth, then one token."""
    depth = PP_DEPTH_TOKENS["cpu" if backend == "CPU" else "gpu"]
    return prompt_tokens / pp * (1 + prompt_tokens / (2 * depth)) + tg_seconds


def workload(shape: ModelShape, res: Resources, *, placement: str, n_cpu_moe: int,
             cpu_cores: int | None = None) -> Workload:
    """The bytes and devices of ``shape`` placed as ``placement`` on ``res``."""
    active = float(shape.active_bytes_per_token)
    offloaded = 0.0
    cpu_share = 0.0
    if placement == "expert-offload" and shape.n_expert:
        offloaded = float(n_cpu_moe * shape.expert_bytes_per_layer)
        cpu_share = offloaded * shape.n_expert_used / shape.n_expert
    host_bps = res.cpu_bandwidth.bytes_per_s
    per_expert = tokens_per_expert(shape)
    if placement == "cpu":
        return Workload("CPU", 0.0, None, active, host_bps, shape.active_params,
                        res.cpu_flops, cpu_threads=cpu_cores, avx2=res.cpu_avx2,
                        tokens_per_expert=per_expert,
                        host_measured=res.cpu_bandwidth.measured)
    backend = "MLX" if placement == "unified" else res.backend
    device_bps = res.gpu_bandwidth.bytes_per_s if res.gpu_bandwidth else None
    return Workload(backend, active - cpu_share, device_bps, cpu_share, host_bps,
                    shape.active_params, res.gpu_flops, offloaded_expert_bytes=offloaded,
                    offloaded_layers=n_cpu_moe if offloaded else 0, unified=res.unified,
                    tokens_per_expert=per_expert, host_measured=res.cpu_bandwidth.measured,
                    vendor=res.gpu_vendor)


def tokens_per_expert(shape: ModelShape) -> float:
    """Prompt tokens each expert sees per micro-batch: its matrix products' row count, which
    sets how well they use the hardware (gpt-oss-20b: 64, gpt-oss-120b: 16)."""
    return UBATCH * shape.n_expert_used / shape.n_expert if shape.n_expert else float(UBATCH)


def predict(shape: ModelShape, res: Resources, *, placement: str, n_cpu_moe: int,
            cpu_cores: int | None = None) -> Rate:
    """Tokens/s, prompt tokens/s and TTFT for ``shape`` placed as ``placement`` on ``res``."""
    w = workload(shape, res, placement=placement, n_cpu_moe=n_cpu_moe, cpu_cores=cpu_cores)
    seconds = token_seconds(w)
    if seconds is None:
        return Rate(None, None, "GPU memory bandwidth unknown for this GPU")
    ceiling_s = ((w.device_bytes / w.device_bps if w.device_bytes and w.device_bps else 0.0)
                 + (w.host_bytes / w.host_bps if w.host_bytes and w.host_bps else 0.0))
    pp = prompt_tokens_per_s(w)
    ttft = tuple((n, round(ttft_seconds(n, pp, seconds, w.backend), 2))
                 for n in TTFT_PROMPTS) if pp else ()
    return Rate(round(1 / seconds, 1), round(1 / ceiling_s, 1) if ceiling_s else None,
                _basis(shape, res, w, placement),
                round(pp) if pp else None, ttft)


def _basis(shape: ModelShape, res: Resources, w: Workload, placement: str) -> str:
    parts = [f"{shape.active_bytes_per_token / 1024**3:.2f} GiB read per token"]
    if placement == "cpu":
        parts.append(f"host memory, {res.cpu_bandwidth.source}")
    else:
        where = "unified memory" if res.unified else "GPU memory"
        if res.gpu_bandwidth is not None:
            parts.append(f"{where}, {res.gpu_bandwidth.source}")
        if w.host_bytes:
            parts.append(f"offloaded experts: host memory, {res.cpu_bandwidth.source}")
    if w.vendor in VENDOR_EFFICIENCY and w.device_bytes:
        parts.append(f"{w.vendor.capitalize()} GPUs reach x{VENDOR_EFFICIENCY[w.vendor]:g} "
                     "of other cards' bandwidth efficiency (llama.cpp's Vulkan scoreboard)")
    parts.append(f"plus {CONSTANTS.overhead_ms.get(overhead_key(w.backend), 0.0):g} ms "
                 f"per token for {w.backend} (fitted on published measurements)")
    if w.backend == "CPU" and w.cpu_threads:
        cap = (w.cpu_threads * CPU_TOKENS_PER_S_PER_CORE_AT_3_6B
               * (1.0 if w.avx2 else NO_AVX2_FACTOR) * 3.6e9 / max(w.active_params, 1.0))
        if token_seconds(w) == 1 / cap:
            parts.append(f"capped by {w.cpu_threads} CPU cores (compute-bound)")
        if not w.avx2:
            parts.append("no AVX2: llama.cpp's CPU kernels assumed half as fast per core")
    return "; ".join(parts)


def status(rate: Rate) -> VerdictStatus:
    """"slow" below reading speed, else "runs" (unknown speed counts as runs)."""
    if rate.expected is not None and rate.expected < SLOW_TOKENS_PER_S:
        return "slow"
    return "runs"
