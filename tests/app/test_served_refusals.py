"""``bench speed --engine llama-server`` refuses the in-process options it cannot honour,
each with one line and exit 2, before any model is written or served."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("flags", "named", "why"), [
    (("--no-chat",), "--no-chat", "no separate chat test"),
    (("--cooldown", "5"), "--cooldown", "one request sweep"),
])
def test_options_a_served_model_cannot_honour_are_refused(
        flags: tuple[str, ...], named: str, why: str) -> None:
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "speed", "--engine",
                           "llama-server", "--synthetic", "tiny", *flags, "-o", "-"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert named in line and why in line and "Traceback" not in done.stderr
    assert done.stdout == ""  # nothing measured, nothing written
