"""Fitting the speed model's constants to measurements, and leave-one-out error statistics.

Pure functions over ``Measurement`` rows (the columns of
``tests/fixtures/calibration/measurements.csv``, described in its README). The fit minimises
the squared log error of predicted against measured generation speed over every row marked
``use=fit``: one device-memory and one host-memory bandwidth efficiency shared by all
hardware, and one per-token overhead per backend, found by coordinate descent (golden-section
search per constant, a fixed number of sweeps: deterministic). Prompt-speed efficiencies are
the geometric mean of measured / (FLOPS / 2 x active parameters) per backend, which is the
least-squares optimum in log space.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import cast

from gptoss_doctor.catalog import CATALOG
from gptoss_doctor.install.bandwidth import Bandwidth
from gptoss_doctor.install.predict import (
    PCIE_BYTES_PER_S,
    UBATCH,
    SpeedConstants,
    Workload,
    overhead_key,
    prompt_tokens_per_s,
    token_seconds,
    tokens_per_expert,
)
from gptoss_doctor.install.resources import (
    GPU_MARGIN_BYTES,
    MACOS_RESERVE_BYTES,
    MACOS_RESERVE_SHARE,
    OS_RESERVE_BYTES,
    RAM_MARGIN_BYTES,
    Resources,
)
from gptoss_doctor.probe.apple import ratio_budget
from gptoss_doctor.types import Backend

GB = 1e9
SWEEPS = 12
WITHIN = 0.30
UNIFIED_CLASSES = ("unified APU/GB10", "Apple (MLX)", "Apple (llama.cpp)")
# A GPU is not saturated by a short prompt: pp figures below this length are listed but
# neither fitted nor scored.
MIN_GPU_PP_TOKENS = 512  # "within ±30 %": |pred / measured - 1| <= 0.30


@dataclass(frozen=True, slots=True)
class Measurement:
    """One published measurement: the machine, the placement and what was measured."""

    id: str
    model: str  # "20b" | "120b"
    backend: str
    device: str
    hw_class: str
    device_gbps: float | None
    host_gbps: float | None
    threads: int | None
    placement: str
    n_cpu_moe: int
    tg_tps: float | None
    pp_tps: float | None
    device_tflops: float | None
    use: str
    source_url: str
    pp_tokens: int | None = None  # the prompt length of the pp figure
    vram_gib: float | None = None  # the GPU's memory (discrete cards)
    ram_gib: float | None = None  # host RAM, or the unified memory of a Mac or an APU

    @property
    def unified(self) -> bool:
        return self.hw_class in UNIFIED_CLASSES

    @property
    def fitted(self) -> bool:
        return self.use == "fit" or self.pp_only

    @property
    def pp_only(self) -> bool:
        """Fitted for prompt speed only (``use`` = "pp only: <why not tg>")."""
        return self.use.startswith("pp only: ")

    @property
    def tg_fitted(self) -> bool:
        return self.use == "fit" and self.tg_tps is not None


def _num(text: str) -> float | None:
    return float(text) if text.strip() else None


def parse(text: str) -> tuple[Measurement, ...]:
    """Rows of the measurements CSV."""
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        threads = _num(r["threads"])
        rows.append(Measurement(
            id=r["id"], model=r["model"], backend=r["backend"], device=r["device"],
            hw_class=r["hw_class"],
            device_gbps=_num(r["device_gbps"]), host_gbps=_num(r["host_gbps"]),
            threads=int(threads) if threads else None, placement=r["placement"],
            n_cpu_moe=int(r["n_cpu_moe"] or 0), tg_tps=_num(r["tg_tps"]),
            pp_tps=_num(r["pp_tps"]), device_tflops=_num(r["device_tflops"]),
            use=r["use"], source_url=r["source_url"],
            pp_tokens=int(r["pp_test"].removeprefix("pp")) if r["pp_test"] else None,
            vram_gib=_num(r.get("vram_gib") or ""), ram_gib=_num(r.get("ram_gib") or "")))
    return tuple(rows)


def workload(m: Measurement) -> Workload:
    """The speed model's view of a measured run."""
    shape = next(e.shape for e in CATALOG if e.key == m.model)
    active = float(shape.active_bytes_per_token)
    offloaded = float(m.n_cpu_moe * shape.expert_bytes_per_layer) if m.n_cpu_moe else 0.0
    cpu_share = offloaded * shape.n_expert_used / shape.n_expert if shape.n_expert else 0.0
    per_expert = tokens_per_expert(shape)
    host_bps = m.host_gbps * GB if m.host_gbps else None
    flops = m.device_tflops * 1e12 if m.device_tflops else None
    if m.placement == "cpu":
        return Workload("CPU", 0.0, None, active, host_bps, shape.active_params, flops,
                        cpu_threads=m.threads, tokens_per_expert=per_expert)
    device_bps = m.device_gbps * GB if m.device_gbps else None
    return Workload(m.backend, active - cpu_share, device_bps, cpu_share, host_bps,
                    shape.active_params, flops, offloaded_expert_bytes=offloaded,
                    offloaded_layers=m.n_cpu_moe, unified=m.unified, tokens_per_expert=per_expert,
                    vendor=vendor(m))


def vendor(m: Measurement) -> str | None:
    """The GPU vendor of a measured run, as far as the model tells vendors apart."""
    return "intel" if m.hw_class == "Intel GPU" else None


GIB = 1024**3


def machine(m: Measurement) -> Resources | None:
    """The machine of a measured run as the planner sees it (budgets as
    ``install.resources`` derives them on Linux), or None when the source does not give the
    memory the plan depends on: VRAM for a discrete card, RAM for a CPU-only run, the
    unified memory of a Mac or an APU."""
    ram = int(m.ram_gib * GIB) if m.ram_gib else None
    host = Bandwidth(m.host_gbps * GB, "host RAM, from the dataset") if m.host_gbps else \
        Bandwidth(51.2 * GB, "assumed")
    device = Bandwidth(m.device_gbps * GB, m.device) if m.device_gbps else None
    flops = m.device_tflops * 1e12 if m.device_tflops else None
    ram_budget = max(0, ram - OS_RESERVE_BYTES - RAM_MARGIN_BYTES) if ram else None
    if m.placement == "cpu":
        if ram_budget is None:
            return None
        return Resources("CPU", (), None, ram_budget, None, False, None, host, None, False,
                         m.threads, (), cpu_flops=flops)
    if m.hw_class.startswith("Apple"):
        if ram is None:
            return None
        working_set = ratio_budget(ram)
        mac_ram = max(0, ram - max(MACOS_RESERVE_BYTES, ram // MACOS_RESERVE_SHARE))
        return Resources("Metal", (m.device,), max(0, working_set - GPU_MARGIN_BYTES), mac_ram,
                         None, True, device, device or host, working_set, False, None, (),
                         gpu_flops=flops)
    backend = cast(Backend, m.backend)
    if m.unified:  # GB10 shares host RAM; an AMD APU allocates it through GTT
        if ram_budget is None or ram is None:
            return None
        gtt = backend in ("ROCm", "Vulkan")
        budget = min(ram_budget, ram // 2) if gtt else ram_budget
        return Resources(backend, (m.device,), budget, ram_budget, None, True, device,
                         device or host, None, False, None, (), gpu_flops=flops,
                         gtt_limited=gtt and budget < ram_budget)
    if m.vram_gib is None:
        return None
    return Resources(backend, (m.device,), max(0, int(m.vram_gib * GIB) - GPU_MARGIN_BYTES),
                     ram_budget, None, False, device, host, None, False, None, (),
                     gpu_flops=flops, gpu_vendor=vendor(m))


def predicted_tg(m: Measurement, c: SpeedConstants) -> float:
    seconds = token_seconds(workload(m), c)
    assert seconds is not None, m.id
    return 1 / seconds


def predicted_pp(m: Measurement, c: SpeedConstants) -> float | None:
    return prompt_tokens_per_s(workload(m), c)


def _golden(f: Callable[[float], float], lo: float, hi: float, steps: int = 40) -> float:
    ratio = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    x1, x2 = b - ratio * (b - a), a + ratio * (b - a)
    f1, f2 = f(x1), f(x2)
    for _ in range(steps):
        if f1 < f2:
            b, x2, f2 = x2, x1, f1
            x1 = b - ratio * (b - a)
            f1 = f(x1)
        else:
            a, x1, f1 = x1, x2, f2
            x2 = a + ratio * (b - a)
            f2 = f(x2)
    return (a + b) / 2


def _tg_loss(rows: Sequence[Measurement], c: SpeedConstants) -> float:
    return sum(math.log(predicted_tg(m, c) / m.tg_tps) ** 2 for m in rows if m.tg_tps)


def pp_scored(m: Measurement) -> bool:
    """Whether a row's pp figure is fitted and scored (a long enough prompt, known FLOPS)."""
    if not m.pp_tps or not m.device_tflops:
        return False
    return m.placement == "cpu" or (m.pp_tokens or 0) >= MIN_GPU_PP_TOKENS


def fit(rows: Iterable[Measurement]) -> SpeedConstants:
    """Constants that best predict the ``use=fit`` rows (see the module docstring)."""
    used = [m for m in rows if m.fitted]
    tg_rows = [m for m in used if m.tg_fitted]
    backends = sorted({overhead_key(workload(m).backend) for m in tg_rows})
    c = SpeedConstants(0.8, 0.8, unified_efficiency=0.8,
                       overhead_ms={b: 2.0 for b in backends})
    for _ in range(SWEEPS):
        for setter in EFFICIENCY_SETTERS:
            c = _tune(c, tg_rows, setter, 0.2, 1.0)
        for b in backends:
            c = _tune(c, tg_rows, _overhead_setter(b), 0.0, 30.0)
        if any(m.n_cpu_moe for m in tg_rows):
            c = _tune(c, tg_rows, lambda k, v: replace(k, offload_layer_ms=v), 0.0, 2.0)
    c = _fit_pp([m for m in used if pp_scored(m)], c)
    return replace(c, device_efficiency=round(c.device_efficiency, 3),
                   host_efficiency=round(c.host_efficiency, 3),
                   unified_efficiency=round(c.unified_efficiency, 3),
                   offload_layer_ms=round(c.offload_layer_ms, 3),
                   overhead_ms={b: round(v, 2) for b, v in c.overhead_ms.items()})


Setter = Callable[[SpeedConstants, float], SpeedConstants]


EFFICIENCY_SETTERS: tuple[Setter, ...] = (
    lambda k, v: replace(k, device_efficiency=v),
    lambda k, v: replace(k, unified_efficiency=v),
    lambda k, v: replace(k, host_efficiency=v),
)


def _overhead_setter(backend: str) -> Setter:
    return lambda k, v: _with_overhead(k, backend, v)


def _tune(c: SpeedConstants, rows: Sequence[Measurement],
          make: Setter,
          lo: float, hi: float) -> SpeedConstants:
    """``c`` with the one constant ``make`` sets moved to its best value in [lo, hi]."""
    return make(c, _golden(lambda v: _tg_loss(rows, make(c, v)), lo, hi))


def _pp_logs(rows: Sequence[Measurement], exponent: float) -> dict[str, list[float]]:
    """Per backend: ln(FLOPS share the prompt reached), after the PCIe streaming and the
    experts' small-matrix penalty are taken out."""
    logs: dict[str, list[float]] = {}
    for m in rows:
        w = workload(m)
        assert w.device_flops is not None and m.pp_tps is not None
        pcie = w.offloaded_expert_bytes / PCIE_BYTES_PER_S / UBATCH
        compute_s = max(1 / m.pp_tps - pcie, 1e-9)
        share = 2 * w.active_params / (w.device_flops * compute_s)
        share /= (w.tokens_per_expert / 64) ** exponent
        logs.setdefault(overhead_key(w.backend), []).append(math.log(share))
    return logs


def _fit_pp(rows: Sequence[Measurement], c: SpeedConstants) -> SpeedConstants:
    def loss(exponent: float) -> float:
        return sum(statistics.pvariance(v) * len(v)
                   for v in _pp_logs(rows, exponent).values())

    exponent = round(_golden(loss, 0.0, 1.5), 3) if rows else 0.0
    logs = _pp_logs(rows, exponent)
    return replace(c, pp_moe_exponent=exponent, pp_efficiency={
        b: round(math.exp(statistics.fmean(v)), 3) for b, v in sorted(logs.items())})


def _with_overhead(c: SpeedConstants, backend: str, ms: float) -> SpeedConstants:
    return replace(c, overhead_ms={**c.overhead_ms, backend: ms})


@dataclass(frozen=True, slots=True)
class Prediction:
    """One row's leave-one-out prediction: fitted without the row, then predicted."""

    measurement: Measurement
    tg: float | None
    pp: float | None


def leave_one_out(rows: Sequence[Measurement]) -> tuple[Prediction, ...]:
    """Predict every ``use=fit`` row from constants fitted on all the others."""
    used = [m for m in rows if m.fitted]
    out = []
    for i, m in enumerate(used):
        c = fit(used[:i] + used[i + 1:])
        out.append(Prediction(m, predicted_tg(m, c) if m.tg_fitted else None,
                              predicted_pp(m, c) if pp_scored(m) else None))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ErrorStats:
    """Errors of predictions against measurements for one group of rows."""

    n: int
    median_abs_log: float  # median |ln(pred / measured)|
    within_30: float  # share with |pred / measured - 1| <= 0.30
    bias: float  # geometric mean of pred / measured


def stats(pairs: Sequence[tuple[float, float]]) -> ErrorStats:
    """``pairs`` of (predicted, measured)."""
    logs = [math.log(p / m) for p, m in pairs]
    return ErrorStats(len(pairs), statistics.median(abs(x) for x in logs),
                      sum(abs(p / m - 1) <= WITHIN for p, m in pairs) / len(pairs),
                      math.exp(statistics.fmean(logs)))


def by_class(preds: Sequence[Prediction], metric: str) -> dict[str, ErrorStats]:
    """LOO error statistics of ``metric`` ("tg" | "pp") per hardware class, plus "all"."""
    groups: dict[str, list[tuple[float, float]]] = {}
    for p in preds:
        got = p.tg if metric == "tg" else p.pp
        want = p.measurement.tg_tps if metric == "tg" else p.measurement.pp_tps
        if got is None or not want:
            continue
        groups.setdefault(p.measurement.hw_class, []).append((got, want))
        groups.setdefault("all", []).append((got, want))
    return {k: stats(v) for k, v in sorted(groups.items())}


def vendor_efficiency(scoreboard_csv: str) -> dict[str, float]:
    """Per vendor other than NVIDIA and AMD: the geometric mean of its cards' bandwidth
    efficiency over that of every other card, on one llama.cpp scoreboard (columns
    ``device,vendor,efficiency,...``; ``tests/fixtures/calibration/vulkan-scoreboard.csv``)."""
    logs: dict[str, list[float]] = {}
    for r in csv.DictReader(io.StringIO(scoreboard_csv)):
        logs.setdefault(r["vendor"], []).append(math.log(float(r["efficiency"])))
    factors = {}
    for name, own in logs.items():
        if name in ("nvidia", "amd"):
            continue
        others = [x for other, v in logs.items() if other != name for x in v]
        factors[name] = round(math.exp(statistics.fmean(own) - statistics.fmean(others)), 2)
    return factors
