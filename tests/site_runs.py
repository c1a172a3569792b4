"""Many varied results files made from the recorded ones, for the published site's tests and
benchmark (``tests/benchmarks/publish_site.py``).

Every generated file is a recorded results file (``tests/fixtures/results*/``) moved onto
another recorded machine (``tests/fixtures/snapshots/``, with accelerator names and
bandwidths of real products), its rates scaled by the bandwidth ratio with noise, and its
date, settings, model size, concurrency levels or tool scores varied; a seeded
``random.Random`` makes the same files every time. Each stays valid against the results
schema (``publish`` loads them through ``bench.results.load``).
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

from conftest import FIXTURES

RECORDED = sorted([*FIXTURES.glob("results/*.json"), *FIXTURES.glob("results-energy/*.json"),
                   *FIXTURES.glob("results-publish/*.json")])
# (snapshot, accelerator name, memory bandwidth GB/s): published figures of these products.
NVIDIA = "rtx4090-24gb"
MACHINES = [
    (NVIDIA, "NVIDIA GeForce RTX 4090", 1008), (NVIDIA, "NVIDIA GeForce RTX 3090", 936),
    (NVIDIA, "NVIDIA GeForce RTX 4060 Ti", 288), (NVIDIA, "NVIDIA GeForce RTX 5090", 1792),
    (NVIDIA, "NVIDIA H100 80GB HBM3", 3350), (NVIDIA, "AMD Radeon RX 7900 XTX", 960),
    ("mac-m3pro-36gb", "Apple M3 Pro", 150), ("mac-m3pro-36gb", "Apple M2 Max", 400),
    ("mac-m3pro-36gb", "Apple M4 Max", 546), ("cpu-container-2core", None, 51.2),
    ("cpu-container-2core", None, 460.8),
]
HOSTILE_NAMES = ["<script>alert(1)</script> GPU", "GPU \u202eevil\u202c name",
                 "Ｗｉｄｅ ＧＰＵ 名前" * 3, "A" * 300]


def _recorded() -> list[dict[str, Any]]:
    loaded = [json.loads(path.read_text()) for path in RECORDED]
    return [r for r in loaded if isinstance(r, dict) and r.get("kind") == "gptoss-doctor/results"]


def _snapshot(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "snapshots" / f"{name}.json").read_text())
    return loaded


def _scale_tests(record: dict[str, Any], factor: float, rng: random.Random) -> None:
    for test in record.get("tests") or []:
        noise = factor * rng.uniform(0.8, 1.2)
        test["samples_ts"] = [s * noise for s in test.get("samples_ts") or []]
        for key in ("mean_ts", "stddev_ts"):
            if test.get(key) is not None:
                test[key] *= noise


def _vary_levels(record: dict[str, Any], rng: random.Random) -> None:
    levels = record.get("concurrency") or []
    if not levels:
        return
    first = levels[0]
    made = []
    for streams in (1, 2, 4, 8)[: rng.randint(2, 4)]:
        level = copy.deepcopy(first)
        speedup = streams ** rng.uniform(0.5, 0.95)
        level["streams"] = streams
        level["requests"] = level["ok"] = streams * 2
        for key in ("aggregate_ts",):
            if level.get(key) is not None:
                level[key] *= speedup
        for key in ("e2e_p50_s", "ttft_p50_s", "ttft_p95_s", "wall_s"):
            if level.get(key) is not None:
                level[key] *= streams / speedup
        made.append(level)
    record["concurrency"] = made
    record["config"]["concurrency"] = [level["streams"] for level in made]
    record["key_properties"]["concurrency"] = record["config"]["concurrency"]


def _vary_scores(record: dict[str, Any], rng: random.Random) -> None:
    scores = record.get("scores")
    if not scores:
        return
    for score in [scores["overall"], *scores["by_category"].values()]:
        at_k = rng.random()
        score["pass_at_k"], score["pass_hat_k"] = at_k, at_k * rng.random()


def vary(base: dict[str, Any], index: int, rng: random.Random) -> dict[str, Any]:
    """One generated run from a recorded one."""
    record = copy.deepcopy(base)
    snapshot, accelerator, bandwidth = rng.choice(MACHINES)
    machine = _snapshot(snapshot)
    if accelerator and machine["gpus"]:
        name = rng.choice(HOSTILE_NAMES) if index % 97 == 5 else accelerator
        machine["gpus"][0]["name"] = name
    record["machine"] = machine
    roofline = record.get("roofline")
    old = roofline["bandwidth_bytes_per_s"] / 1e9 if roofline else 51.2
    _scale_tests(record, bandwidth / old, rng)
    if roofline:
        roofline["bandwidth_bytes_per_s"] = bandwidth * 1e9
        ceiling = bandwidth * 1e9 / roofline["bytes_per_token"]
        roofline["ceiling_tokens_per_s"] = round(ceiling, 2)
        roofline["predicted_tokens_per_s"] = round(ceiling * rng.uniform(0.5, 0.8), 1)
    _vary_levels(record, rng)
    _vary_scores(record, rng)
    record["created_at"] = f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}T12:00:00+00:00"
    config = record["config"]
    if config.get("threads"):
        config["threads"] = record["key_properties"]["threads"] = rng.choice((2, 4, 8, 16))
    if config.get("engine") == "llama.cpp" and accelerator:
        config["n_gpu_layers"] = record["key_properties"]["n_gpu_layers"] = rng.choice((0, 99))
    record["key_properties"]["cpu"] = machine["cpu"]["brand"]
    record["key_properties"]["gpus"] = [g["name"] for g in machine["gpus"]]
    return record


def generate(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` varied runs (speed runs five times as often as tool-use runs)."""
    rng = random.Random(seed)
    bases = _recorded()
    weights = [1 if base["suite"] == "tools" else 5 for base in bases]
    return [vary(rng.choices(bases, weights)[0], i, rng) for i in range(count)]


def write(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """The generated runs as results files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, record in enumerate(generate(count, seed)):
        path = folder / f"run-{index:04d}.json"
        path.write_text(json.dumps(record))
        paths.append(path)
    return paths
