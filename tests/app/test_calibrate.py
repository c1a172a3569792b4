"""`gptoss-doctor calibrate`: runs from `bench speed` results files become per-machine
corrections that later verdicts on that machine apply and name (issue 14).

Results files are built from the recorded `tests/fixtures/results/synthetic-20b-cpu-2threads.json`
(a real run on this project's CI machine), re-pointed at replayed machines with the roofline
that `bench speed` itself computes (``app.speed.roofline``) for chosen measured speeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.app import calibrate
from gptoss_doctor.app.doctor import build_report
from gptoss_doctor.app.feedback import Silent
from gptoss_doctor.app.speed import roofline
from gptoss_doctor.bench import synth
from gptoss_doctor.bench.speed import TestResult as SpeedTest
from gptoss_doctor.install import corrections
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.serde import to_json
from gptoss_doctor.settings import current

from conftest import FIXTURES, MACHINES
from hub_server import HubServer, HubState, Repo

RECORDED = FIXTURES / "results" / "synthetic-20b-cpu-2threads.json"


def _machine(name: str) -> HardwareSnapshot:
    return snapshot(ReplaySources(MACHINES / name), current({"HOME": "/home/user"}))


def _test(kind: str, n_tokens: int, mean: float, depth: int = 0) -> SpeedTest:
    name = f"{kind}{n_tokens}" + (f" @ d{depth}" if depth else "")
    return SpeedTest(name, kind, n_tokens, depth, "ok", None, (1.0,), (mean,), mean, 0.0)


def _results(tmp_path: Path, snap: HardwareSnapshot, *, on_gpu: bool, tg: float,
             pp: float | None = None, stamp: str = "2026-12-01T10:00:00+00:00",
             name: str = "run.json") -> Path:
    """A `bench speed` results file of gpt-oss-20b on ``snap`` measuring ``tg`` (and ``pp``)."""
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    tests = [_test("tg", 128, tg), _test("tg", 128, tg / 2, depth=4096)]
    if pp is not None:
        tests += [_test("pp", 512, pp), _test("pp", 64, pp / 5)]
    data.update(machine=to_dict(snap), created_at=stamp, tests=to_json(tests),
                roofline=to_json(roofline(snap, "20b", 0, on_gpu, tests, threads=2)))
    data["model"]["gpt_oss"] = "20b"
    data["config"]["n_gpu_layers"] = 99 if on_gpu else 0
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _predicted(snap: HardwareSnapshot) -> tuple[float, float]:
    v = assess(snap).verdict("20b")
    assert v.predicted_tokens_per_s and v.predicted_prompt_tokens_per_s
    return v.predicted_tokens_per_s, v.predicted_prompt_tokens_per_s


def test_runs_on_this_machine_correct_later_verdicts_and_say_so(tmp_path: Path) -> None:
    snap = _machine("rtx4090-24gb")
    tg, pp = _predicted(snap)
    files = tuple(_results(tmp_path, snap, on_gpu=True, tg=tg * ratio, pp=pp * 1.2,
                           stamp=f"2026-12-01T10:0{i}:00+00:00", name=f"r{i}.json")
                  for i, ratio in enumerate((0.8, 0.9, 0.85)))
    result = calibrate.calibrate(files, Silent(), snap)
    assert result.added == 3 and result.this_machine == corrections.fingerprint(snap)
    (correction,) = result.corrections
    assert correction.placement == "gpu" and correction.tg is not None
    assert correction.tg.value == pytest.approx(0.85, abs=0.002)  # the median, not the mean
    assert (correction.tg.runs, correction.tg.low, correction.tg.high) == (3, 0.8, 0.9)
    assert correction.pp is not None and correction.pp.value == pytest.approx(1.2, abs=0.002)
    verdict = build_report(snap).assessment.verdict("20b")
    assert verdict.predicted_tokens_per_s == pytest.approx(tg * 0.85, abs=0.2)
    assert verdict.predicted_prompt_tokens_per_s == pytest.approx(pp * 1.2, abs=2)
    assert any("calibrated from your own runs on this machine" in r and "tg ×0.85 (3 runs"
               in r for r in verdict.reasons)
    # The 120b plan here is expert offload: no run of that placement, no correction.
    assert not any("calibrated" in r for r in build_report(snap).assessment.verdict(
        "120b").reasons)


def test_a_run_from_another_machine_is_kept_for_that_machine_only(tmp_path: Path) -> None:
    here, there = _machine("rtx4090-24gb"), _machine("2x-rtx3090")
    tg, _ = _predicted(there)
    result = calibrate.calibrate((_results(tmp_path, there, on_gpu=True, tg=tg * 0.5),),
                                 Silent(), here)
    (correction,) = result.corrections
    assert correction.machine != result.this_machine
    assert "2 x NVIDIA GeForce RTX 3090" in correction.label
    assert build_report(here).assessment == corrections.apply(assess(here), here, ())
    assert build_report(there).assessment.verdict("20b").predicted_tokens_per_s == \
        pytest.approx(tg * 0.5, abs=0.2)


def test_the_same_file_twice_counts_once_and_reset_forgets(tmp_path: Path) -> None:
    snap = _machine("cpu-only-64gb")
    tg, _ = _predicted(snap)
    path = _results(tmp_path, snap, on_gpu=False, tg=tg * 1.1)
    calibrate.calibrate((path,), Silent(), snap)
    again = calibrate.calibrate((path,), Silent(), snap)
    assert again.added == 0 and len(again.runs) == 1
    assert again.corrections[0].placement == "cpu" and again.corrections[0].pp is None
    assert calibrate.show(snap).runs == again.runs
    assert calibrate.reset(snap).runs == () and not calibrate.store_path().exists()
    assert build_report(snap).assessment == assess(snap)


def test_files_without_a_prediction_are_skipped_and_none_usable_is_refused(
        tmp_path: Path) -> None:
    snap = _machine("rtx4090-24gb")
    recorded = tmp_path / "old.json"  # a version-1 file: no prediction recorded yet
    recorded.write_bytes(RECORDED.read_bytes())
    with pytest.raises(calibrate.CalibrationError, match="no prediction recorded"):
        calibrate.calibrate((recorded,), Silent(), snap)
    assert not calibrate.store_path().exists()
    tg, _ = _predicted(snap)
    good = _results(tmp_path, snap, on_gpu=True, tg=tg)
    result = calibrate.calibrate((recorded, good), Silent(), snap)
    assert result.added == 1 and len(result.skipped) == 1 and "old.json" in result.skipped[0]


def test_an_implausible_ratio_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    snap = _machine("rtx4090-24gb")
    tg, _ = _predicted(snap)
    with pytest.raises(calibrate.CalibrationError, match=r"outside 0\.05-20"):
        calibrate.calibrate((_results(tmp_path, snap, on_gpu=True, tg=tg * 50),), Silent(),
                            snap)
    assert not calibrate.store_path().exists()


@pytest.mark.parametrize(("stored", "message"), [
    ("{", r"is not a calibration file \(Expecting"),
    ("[" * 50, "deeper"),
    ('{"kind": "x"}', "not a gptoss-doctor calibration file"),
    ('{"kind": "gptoss-doctor/calibration", "schema_version": 9, "runs": []}', "schema 1"),
    ('{"kind": "gptoss-doctor/calibration", "schema_version": 1, "runs": [1]}', "keys of a run"),
    ('{"kind": "gptoss-doctor/calibration", "schema_version": 1, "runs": [{"machine": "m", '
     '"label": "l", "placement": "gpu", "model": "20b", "created_at": "t", "tg_ratio": -1, '
     '"pp_ratio": null}]}', "not a plausible number"),
    ('{"kind": "gptoss-doctor/calibration", "schema_version": 1, "runs": [{"machine": 1, '
     '"label": "l", "placement": "gpu", "model": "20b", "created_at": "t", "tg_ratio": 1, '
     '"pp_ratio": null}]}', "machine is not a string"),
    ('{"kind": "gptoss-doctor/calibration", "schema_version": 1, "runs": [{"machine": "m", '
     '"label": "l", "placement": "moon", "model": "20b", "created_at": "t", "tg_ratio": 1, '
     '"pp_ratio": null}]}', "not a placement"),
])
def test_a_damaged_store_is_one_line_naming_the_reset(stored: str, message: str) -> None:
    path = calibrate.store_path()
    path.parent.mkdir(parents=True)
    path.write_text(stored)
    with pytest.raises(calibrate.CalibrationError, match=message) as caught:
        calibrate.show(_machine("rtx4090-24gb"))
    assert "\n" not in caught.value.message
    assert caught.value.hint is None or "--reset" in caught.value.hint


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "calibrate", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_command_line_json_show_reset_and_hostile_files(tmp_path: Path) -> None:
    snap = _machine("h100-80gb")  # another machine than the one running the test
    tg, _ = _predicted(snap)
    done = _cli(str(_results(tmp_path, snap, on_gpu=True, tg=tg * 0.9)), "--json")
    assert done.returncode == 0, done.stderr
    envelope = json.loads(done.stdout)
    assert envelope["kind"] == "gptoss-doctor/calibration-report" and envelope["added"] == 1
    (correction,) = envelope["corrections"]
    assert correction["this_machine"] is False and correction["tg"]["value"] == 0.9
    shown = _cli("--show")
    assert shown.returncode == 0 and "another machine" in shown.stdout and "H100" in shown.stdout
    hostile = tmp_path / "hostile.json"
    hostile.write_text('{"kind": "gptoss-doctor/results", "schema_version": 2}')
    for args in ((str(hostile),), (str(tmp_path / "missing.json"),), ()):
        refused = _cli(*args)
        assert refused.returncode == 2 and refused.stdout == ""
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "Traceback" not in refused.stderr
    assert _cli("--reset").returncode == 0
    assert "no calibration stored" in _cli("--show").stdout


def test_bench_speed_records_placement_pp_and_only_full_batch_depth_zero_pp_ratios() -> None:
    snap = _machine("rtx4090-24gb")
    tests = [_test("tg", 128, 100.0), _test("pp", 512, 5000.0), _test("pp", 64, 900.0),
             _test("pp", 512, 4000.0, depth=4096)]
    recorded = roofline(snap, "20b", 0, True, tests)
    assert recorded.predicted_placement == "gpu" and recorded.predicted_prompt_tokens_per_s
    assert set(recorded.pp_ratio_to_predicted) == {"pp512"}
    assert recorded.pp_ratio_to_predicted["pp512"] == pytest.approx(
        5000.0 / recorded.predicted_prompt_tokens_per_s, abs=0.001)
    assert roofline(snap, "120b", 0, False, tests, threads=8).predicted_placement == "cpu"
    assert roofline(snap, None, 10**9, True, tests).predicted_placement is None


def test_install_plans_with_this_machines_correction_and_says_so(tmp_path: Path) -> None:
    """`install` chooses and shows its plan with the same correction as the doctor (the
    machine running the test: the correction must match its own fingerprint)."""
    snap = snapshot(settings=current())
    verdict = assess(snap).verdict("20b")
    assert verdict.predicted_tokens_per_s is not None and verdict.placement == "cpu"
    run = _results(tmp_path, snap, on_gpu=False, tg=verdict.predicted_tokens_per_s * 0.5)
    assert calibrate.calibrate((run,), Silent(), snap).corrections[0].placement == "cpu"
    standin = synth.write_synthetic("tiny", tmp_path / "gpt-oss-20b-mxfp4.gguf").path
    state = HubState(repos={"ggml-org/gpt-oss-20b-GGUF": Repo({standin.name: standin})})
    with HubServer(state) as url:
        done = subprocess.run(
            [sys.executable, "-m", "gptoss_doctor", "install", "--model", "20b", "--dry-run"],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_TELEMETRY": "1"})
    assert done.returncode == 0, done.stderr
    expected = build_report(snap).assessment.verdict("20b").predicted_tokens_per_s
    assert expected == pytest.approx(verdict.predicted_tokens_per_s * 0.5, abs=0.2)
    assert f"expected: ~{expected:g} tok/s generation" in done.stderr
    assert "calibrated from your own runs on this machine" in done.stderr
    assert "tg ×0.5 (1 run" in done.stderr


def test_an_offload_correction_rewrites_the_other_contexts_with_prompt_speeds_too() -> None:
    snap = _machine("rtx3060-12gb")
    before = assess(snap)
    plain = before.verdict("20b")
    assert plain.placement == "expert-offload" and len(plain.alternatives) > 1
    (note,) = [r for r in plain.reasons if r.startswith("planned at ")]
    other = next(a for a in plain.alternatives if a.context_length != plain.context_length)
    assert f"{other.context_length} → --n-cpu-moe {other.n_cpu_moe} → " \
        f"~{other.predicted_tokens_per_s:g} tok/s, prompt ~" \
        f"{other.predicted_prompt_tokens_per_s:g}" in note
    fix = corrections.Correction(corrections.fingerprint(snap), "here", "expert-offload",
                                 corrections.Factor(0.5, 2, 0.4, 0.6),
                                 corrections.Factor(2.0, 2, 1.9, 2.1))
    after = corrections.apply(before, snap, (fix,)).verdict("20b")
    (rewritten,) = [r for r in after.reasons if r.startswith("planned at ")]
    moved = next(a for a in after.alternatives if a.context_length == other.context_length)
    assert moved.predicted_tokens_per_s == pytest.approx(
        (other.predicted_tokens_per_s or 0) * 0.5, abs=0.1)
    assert f"~{moved.predicted_tokens_per_s:g} tok/s, prompt ~" \
        f"{moved.predicted_prompt_tokens_per_s:g}" in rewritten
