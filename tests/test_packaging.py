"""A plain wheel of the project installs one import package and no generic top-level names."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_only_the_gptoss_doctor_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("gptoss_doctor-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names}
    assert top_levels == {"gptoss_doctor", wheel.name.split("-py3")[0] + ".dist-info"}
    for expected in ("gptoss_doctor/probe/nvml.py", "gptoss_doctor/install/verdict.py",
                     "gptoss_doctor/bench/llama_log.py", "gptoss_doctor/cli/__init__.py",
                     "gptoss_doctor/reports/schemas/doctor.schema.json",
                     "gptoss_doctor/bench/schemas/results.schema.json",
                     "gptoss_doctor/py.typed"):
        assert expected in names
    assert not any(name.startswith(("install/", "bench/", "probe/", "reports/", "tests/"))
                   for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "gptoss-doctor = gptoss_doctor.cli:main" in text
