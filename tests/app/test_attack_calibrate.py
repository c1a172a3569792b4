"""``calibrate`` stores runs from results files, which are anyone's: a run's words (its
``created_at``, the machine label made of accelerator names) are kept in calibration.json,
whose reader allows 512 characters a text. A longer one was stored, and every later
``calibrate`` and ``doctor`` on the machine then failed on the "damaged" store. The results
file is the recorded tests/fixtures/results/synthetic-20b-cpu-2threads.json re-pointed at a
replayed machine, as tests/app/test_calibrate.py builds them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gptoss_doctor.app import calibrate
from gptoss_doctor.app.doctor import build_report
from gptoss_doctor.app.feedback import Silent
from gptoss_doctor.app.speed import roofline
from gptoss_doctor.bench.speed import TestResult as SpeedTest
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.serde import to_json
from gptoss_doctor.settings import current

from conftest import FIXTURES, MACHINES

RECORDED = FIXTURES / "results" / "synthetic-20b-cpu-2threads.json"


def test_a_run_with_overlong_words_does_not_break_the_store(tmp_path: Path) -> None:
    snap = snapshot(ReplaySources(MACHINES / "rtx4090-24gb"), current({"HOME": "/home/user"}))
    tg = assess(snap).verdict("20b").predicted_tokens_per_s
    assert tg
    tests = [SpeedTest("tg128", "tg", 128, 0, "ok", None, (1.0,), (tg,), tg, 0.0)]
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    data.update(machine=to_dict(snap), tests=to_json(tests),
                created_at="2026-12-01T10:00:00+00:00" + "x" * 2000,
                roofline=to_json(roofline(snap, "20b", 0, True, tests, threads=2)))
    data["model"]["gpt_oss"] = "20b"
    data["config"]["n_gpu_layers"] = 99
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    calibrate.calibrate((path,), Silent(), snap)
    assert len(calibrate.show(snap).runs) == 1  # the store reads back
    build_report(snap)  # and the doctor still runs
