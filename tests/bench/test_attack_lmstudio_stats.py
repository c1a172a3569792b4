"""LM Studio's stats are hostile numbers: a rate of 1e-320 tokens/s is finite and
non-negative, so it passes the field checks, but LM Studio's own latency account (time to
first token + tokens / rate) is then infinite, which a results file cannot hold (JSON has no
infinity; the loader refuses it). The answer's shape is LM Studio's /api/v1/chat ``stats``
as bench/lmstudio_stats.py documents it."""

from __future__ import annotations

import json
import math

import pytest

from gptoss_doctor.bench import lmstudio_stats


@pytest.mark.parametrize("rate", [1e-320, 5e-324])
def test_an_absurd_rate_gives_no_latency_account_rather_than_infinity(rate: float) -> None:
    figures = lmstudio_stats.parse_v1({"stats": {
        "tokens_per_second": rate, "time_to_first_token_seconds": 0.1,
        "total_output_tokens": 100, "reasoning_output_tokens": 10, "input_tokens": 20}}, 1.5)
    latency = figures.lmstudio_latency_s
    assert latency is None or math.isfinite(latency)
    json.dumps({"latency": latency}, allow_nan=False)
