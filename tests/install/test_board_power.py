"""Predicted energy per token from published board power (an estimate, labelled as one)."""

from __future__ import annotations

import pytest

from gptoss_doctor.install import board_power


@pytest.mark.parametrize(("name", "expected"), [
    pytest.param("NVIDIA GeForce RTX 4060 Ti", ("RTX 4060 Ti", 160),
                 id="the longest name wins over a shorter one it contains"),
    pytest.param("NVIDIA H100 80GB HBM3", ("H100 80GB HBM3", 700), id="H100 SXM"),
    pytest.param("NVIDIA H100 PCIe", ("H100 PCIe", 350), id="H100 PCIe"),
    pytest.param("NVIDIA GeForce RTX 4060 Laptop GPU", None,
                 id="a laptop GPU has no single board power"),
    pytest.param("Some Future GPU", None, id="an unknown GPU"),
])
def test_lookup(name: str, expected: tuple[str, float] | None) -> None:
    assert board_power.lookup(name) == expected


def test_estimate_is_board_power_over_the_predicted_rate() -> None:
    found = board_power.estimate(("NVIDIA GeForce RTX 4090",), 150.0)
    assert found is not None and found.joules_per_token == 3.0
    assert found.basis.startswith("estimate: published board power (RTX 4090, 450 W)")
    assert "upper bound" in found.basis


def test_every_gpu_counts_and_an_unknown_one_gives_no_estimate() -> None:
    two = board_power.estimate(("NVIDIA A100-SXM4-40GB",) * 2, 200.0)
    assert two is not None and two.joules_per_token == 4.0
    assert "2 x A100-SXM4, 800 W in all" in two.basis
    assert board_power.estimate(("NVIDIA A100-SXM4-40GB", "Mystery"), 200.0) is None
    assert board_power.estimate(("NVIDIA GeForce RTX 4090",), None) is None


@pytest.mark.parametrize(("machine", "key", "watts"), [
    pytest.param("rtx4090-24gb", "20b", 450,
                 id="a whole model on a known GPU gets a predicted J/token"),
    pytest.param("rtx3060-12gb", "20b", None,
                 id="expert offload has no estimate (the CPU's power is unknown)"),
    pytest.param("mac-m3pro-36gb", "20b", None, id="Apple silicon has no published figure here"),
])
def test_the_verdict_carries_the_estimate(machine: str, key: str, watts: float | None) -> None:
    from gptoss_doctor.install.verdict import assess
    from gptoss_doctor.probe.replay import ReplaySources
    from gptoss_doctor.probe.snapshot import snapshot

    from conftest import MACHINES

    verdict = assess(snapshot(ReplaySources(MACHINES / machine))).verdict(key)
    if watts is None:
        assert verdict.predicted_joules_per_token is None
    else:
        assert verdict.predicted_tokens_per_s is not None
        assert verdict.predicted_joules_per_token == pytest.approx(
            watts / verdict.predicted_tokens_per_s, abs=0.01)
    if watts is not None:
        assert verdict.energy_basis is not None and verdict.energy_basis.startswith("estimate")
