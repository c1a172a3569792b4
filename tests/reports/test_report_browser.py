"""The report in a real headless Chromium: renders, no console errors, no network, a screenshot.

The page forbids every request with a Content-Security-Policy, so any attempt to load
something would show up as a "Refused to ..." console error, which this test looks for.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gptoss_doctor.reports.html import render

from conftest import CHROMIUM, FIXTURES

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.chromium


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         *args], capture_output=True, text=True, timeout=120, check=False)


def test_report_renders_cleanly_in_headless_chromium(tmp_path: Path) -> None:
    records = [json.loads((FIXTURES / "results" / name).read_text()) for name in
               ("synthetic-20b-cpu-2threads.json", "synthetic-tiny-cpu.json",
                "synthetic-tiny-tools.json", "endpoint-lmstudio-fake.json")]
    records[1]["model"]["name"] = "<script>document.title='pwned'</script>"
    records[3]["endpoint"]["headers"]["server"] = "<img src=x onerror=alert(1)>"
    page = tmp_path / "report.html"
    page.write_text(render(records))
    dom = _chromium(tmp_path / "p1", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "comparison of 4 runs" in dom.stdout and "pp64 @ d512" in dom.stdout
    assert "<h3>Concurrency</h3>" in dom.stdout and "<img src=x" not in dom.stdout
    assert "act-create-file" in dom.stdout and "pass^2" in dom.stdout
    assert "pwned" not in dom.stdout.split("<title>")[1].split("</title>")[0]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    capture = _chromium(tmp_path / "p2", f"--screenshot={shot}", "--window-size=1280,2400",
                        page.as_uri())
    assert capture.returncode == 0, capture.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    for log in (dom.stderr, capture.stderr):
        problems = [line for line in log.splitlines()
                    if "Refused to" in line or ("CONSOLE" in line and "rror" in line)
                    or "Uncaught" in line]
        assert problems == []
