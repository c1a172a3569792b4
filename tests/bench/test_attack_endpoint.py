"""A server's model lists are hostile: LM Studio's native /api/v1/models and /api/v0/models
entries (shapes as tests/bench/test_endpoint.py's recorded LMSTUDIO_V1 and LMSTUDIO_V0) with
fields of the wrong type raised TypeError or AttributeError out of ``discover``, and values
of any size or depth went into the results file as they came, where a 2 MiB string or a
config nested 100 deep makes a file that report, publish and share refuse to read."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.bench import chat_stream, endpoint_speed, results
from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.jsonin import MIB

from openai_server import ServerState, serve


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("body", [
    {"models": 5}, {"models": "m"}, {"data": 3}, {"models": [7, None]},
    {"models": [{"key": "m", "loaded_instances": 7}]},
    {"models": [{"key": "m", "loaded_instances": ["x", 3]}]},
    {"models": [{"key": "x", "loaded_instances": "abc"}]},
    {"models": [{"key": "m", "loaded_instances": [{"id": "m", "config": [1, 2]}]}]},
])
def test_misshapen_lmstudio_lists_are_not_a_crash(body: dict[str, Any]) -> None:
    entry = ep.parse_lmstudio(body, "m")
    assert entry is None or isinstance(entry["loaded_config"], dict | None)


def test_lmstudio_values_are_typed_and_bounded() -> None:
    body = {"models": [{"key": "m", "format": "g" * (2 * MIB), "quantization": {"name": [1]},
                        "size_bytes": "12 GB", "max_context_length": 10**30,
                        "loaded_instances": [{"id": "m", "config": {
                            "context_length": 4096, "flash_attention": True,
                            "nested": _deep(100), "name": "n" * (2 * MIB)}}]}]}
    entry = ep.parse_lmstudio(body, "m")
    assert entry is not None
    assert entry["format"] is not None and len(entry["format"]) <= ep.MAX_HEADER_CHARS
    assert entry["quantization"] is None and entry["size_bytes"] is None
    assert entry["max_context_length"] is None
    assert entry["loaded_config"]["context_length"] == 4096
    assert entry["loaded_config"]["flash_attention"] is True
    assert "nested" not in entry["loaded_config"]
    assert len(json.dumps(entry)) < 4096


def test_model_ids_are_strings_of_a_bounded_length() -> None:
    body = {"data": [{"id": "openai/gpt-oss-20b"}, {"id": "x" * (2 * MIB)}, {"id": _deep(50)},
                     {"id": 12}]}
    assert ep.parse_models(body) == ("openai/gpt-oss-20b",)
    assert results.LIMITS.max_text > ep.MAX_ID_CHARS


def test_a_hostile_lmstudio_entry_still_gives_a_results_file_that_loads(
        tmp_path: Path) -> None:
    """End to end against tests/openai_server.py posing as LM Studio: settings of the wrong
    type in its loaded config (a string context length, a number for flash attention) went
    into the run's config as they came; the file must load again."""
    native = {"models": [{"key": "openai/gpt-oss-20b", "format": "gguf",
                          "quantization": {"name": "MXFP4"}, "size_bytes": "12 GB",
                          "max_context_length": "lots", "loaded_instances": [{
                              "id": "openai/gpt-oss-20b", "config": {
                                  "context_length": "8192", "eval_batch_size": 1.5,
                                  "flash_attention": 7}}]}]}
    out = tmp_path / "speed.json"
    with serve(ServerState(lmstudio=native)) as url:
        done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "speed",
                               "--endpoint", url, "--tests", "pp16,tg4", "--reps", "1",
                               "-o", str(out)], capture_output=True, text=True, timeout=300,
                              check=False)
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    assert record["endpoint"]["is_lmstudio"]
    assert record["config"]["n_ctx"] is None and record["config"]["flash_attn"] is None


def _stream(state: ServerState) -> chat_stream.Stream:
    async def one(url: str) -> chat_stream.Stream:
        endpoint = ep.Endpoint(url, None, 30)
        async with ep.async_client(endpoint, 1) as client:
            return await chat_stream.stream_chat(client, endpoint, {
                "model": state.model, "max_tokens": 8,
                "messages": [{"role": "user", "content": "hi"}]})

    with serve(state) as url:
        return asyncio.run(one(url))


def test_a_long_answer_keeps_a_bounded_text_and_is_still_counted_whole() -> None:
    """An open-loop level has up to 1,024 streams in flight, and each kept its whole text,
    up to the 8 MiB a stream may be: several GiB from one hostile server. The text is only
    ever counted (when a server sends no usage), and counting reads its first 256 Ki
    characters and scales by the length: that head is what is kept, and the length."""
    state = ServerState(mode="flood", flood_chars=6 << 20, flood_event_chars=4096)
    stream = _stream(state)
    assert stream.error is None and stream.text_chars == 6 << 20
    assert len(stream.reasoning) + len(stream.content) <= chat_stream.MAX_KEPT_CHARS + 4096
    sample = endpoint_speed.sample(stream, endpoint_speed.Shape(16, 8), 1, 0, 0)
    assert sample["completion_tokens"] == (6 << 20) // 8  # o200k: eight "a" per token
    assert f"of {6 << 20} characters" in sample["token_estimate"]
