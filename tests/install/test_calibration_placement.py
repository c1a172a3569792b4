"""The planner places every published run where the person who measured it ran it (issue 14).

Each ``use=fit`` row of ``tests/fixtures/calibration/measurements.csv`` with a generation
figure is turned into the machine it ran on (``calibrate.machine``: the card's VRAM, the
host RAM, or the unified memory of a Mac or an APU, as the source states them) and given to
``verdict.evaluate`` with the engine the person used. docs/calibration.md, "Placement",
lists the rows and what the doctor plans for each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_doctor.catalog import CATALOG
from gptoss_doctor.install import calibrate, verdict

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "calibration" / "measurements.csv"
ROWS = calibrate.parse(DATA.read_text(encoding="utf-8"))
RUNS = [m for m in ROWS if m.tg_fitted]
# Runs whose placement was a deliberate experiment rather than what the machine needs.
BY_CHOICE = {
    "rx7900xt-20b-cmoe": "all experts on the CPU (-cmoe) on a 20 GB card that holds the "
                         "whole model; the same person's full-GPU run is rx7900xt-20b",
}


def _plan(m: calibrate.Measurement) -> verdict.ModelVerdict:
    res = calibrate.machine(m)
    assert res is not None, m.id
    entry = next(e for e in CATALOG if e.key == m.model)
    return verdict.evaluate(entry, res, engine="mlx" if m.backend == "MLX" else "llama.cpp")


@pytest.mark.parametrize("row", [m for m in RUNS if calibrate.machine(m) is not None
                                 and m.id not in BY_CHOICE], ids=lambda m: m.id)
def test_the_planner_places_each_published_run_where_it_ran(row: calibrate.Measurement) -> None:
    plan = _plan(row)
    assert plan.status in ("runs", "slow"), plan.reasons
    assert plan.placement == row.placement, plan.reasons
    if row.placement == "expert-offload":
        # The plan lists --n-cpu-moe for every context that fits; what the person chose
        # (at the context they used) is within that range.
        listed = [a.n_cpu_moe for a in plan.alternatives]
        assert min(listed) <= row.n_cpu_moe <= max(listed), (row.n_cpu_moe, listed)


@pytest.mark.parametrize("row_id", sorted(BY_CHOICE))
def test_a_run_placed_by_choice_is_one_the_planner_would_not_need(row_id: str) -> None:
    row = next(m for m in RUNS if m.id == row_id)
    plan = _plan(row)
    assert plan.placement != row.placement and plan.status == "runs"


def test_most_published_runs_state_the_memory_their_placement_depends_on() -> None:
    checked = [m for m in RUNS if calibrate.machine(m) is not None]
    assert len(checked) >= 0.85 * len(RUNS)
    unchecked = {m.id for m in RUNS} - {m.id for m in checked}
    for m in RUNS:
        if m.id in unchecked:  # a Mac or a CPU-only run without its RAM, a card without VRAM
            assert not m.ram_gib if m.placement == "cpu" or m.unified else not m.vram_gib


def test_a_machine_keeps_the_budgets_the_probe_would_derive() -> None:
    mac = next(m for m in ROWS if m.id == "m4pro-20b-mlx")
    res = calibrate.machine(mac)
    assert res is not None and res.unified and res.backend == "Metal"
    assert res.apple_budget_bytes == 16 * 1024**3  # 2/3 of 24 GiB, Apple's default share
    card = next(m for m in ROWS if m.id == "rtx3060-20b-off2")
    res = calibrate.machine(card)
    assert res is not None and res.gpu_budget_bytes == 11 * 1024**3  # 12 GiB less 1 GiB
