"""LM Studio's native per-request stats beside the client's clock, against the test server
answering ``/api/v1/chat`` or ``/api/v0/chat/completions`` with the stats LM Studio's REST
reference documents (tests/openai_server.py, ``NATIVE_STATS``)."""

from __future__ import annotations

import math

import jsonschema
import pytest

from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.bench import lmstudio_stats, results

from openai_server import NATIVE_STATS, ServerState, serve


def _schema() -> dict[str, object]:
    props = results.schema()["properties"]["endpoint"]["properties"]
    return dict(props["lmstudio_stats"])


@pytest.mark.parametrize("api", ["v1", "v0"])
def test_stats_stand_beside_the_measured_latency(api: str) -> None:
    with serve(ServerState(native_chat=api)) as url:
        found = lmstudio_stats.measure(ep.Endpoint(url), "openai/gpt-oss-20b", requests=2)
    assert found["api"] == {"v1": lmstudio_stats.V1, "v0": lmstudio_stats.V0}[api]
    assert len(found["requests"]) == 2 and found["error"] is None
    first = found["requests"][0]
    assert first["lmstudio"]["tokens_per_second"] == NATIVE_STATS["tokens_per_second"]
    assert first["lmstudio"]["output_tokens"] == NATIVE_STATS["total_output_tokens"]
    assert first["lmstudio"]["reasoning_output_tokens"] == 0
    implied = NATIVE_STATS["time_to_first_token_seconds"] + \
        NATIVE_STATS["total_output_tokens"] / NATIVE_STATS["tokens_per_second"]
    assert first["lmstudio"]["latency_s"] == pytest.approx(implied, abs=1e-3)
    assert first["measured"]["latency_s"] > 0
    assert found["median"]["lmstudio_tokens_per_second"] == pytest.approx(
        NATIVE_STATS["tokens_per_second"], abs=1e-3)
    jsonschema.validate(found, _schema())
    line = lmstudio_stats.summary(found)
    assert f"{NATIVE_STATS['tokens_per_second']:.1f} tok/s" in line
    assert f"TTFT {NATIVE_STATS['time_to_first_token_seconds']:.3f} s" in line


def test_a_server_without_native_chat_is_a_note_not_a_failure() -> None:
    with serve(ServerState()) as url:
        found = lmstudio_stats.measure(ep.Endpoint(url), "openai/gpt-oss-20b")
    assert found["api"] is None and found["requests"] == [] and "404" in found["error"]
    assert "not available" in lmstudio_stats.summary(found)
    jsonschema.validate(found, _schema())


@pytest.mark.parametrize("bad", [math.nan, -3.0, True, "fast", 10**400, None, [1]])
def test_hostile_stats_become_unknown(bad: object) -> None:
    stats = {**NATIVE_STATS, "tokens_per_second": bad, "total_output_tokens": bad}
    with serve(ServerState(native_chat="v1", native_stats=stats)) as url:
        found = lmstudio_stats.measure(ep.Endpoint(url), "openai/gpt-oss-20b", requests=1)
    row = found["requests"][0]
    assert row["lmstudio"]["tokens_per_second"] is None
    assert row["lmstudio"]["latency_s"] is None
    jsonschema.validate(found, _schema())
