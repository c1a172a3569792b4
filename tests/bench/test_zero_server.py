"""The zero-work streaming server (tests/zero_server.py) answers like an OpenAI-compatible
server: models, streamed tokens one per event with usage, metrics, 404 elsewhere."""

from __future__ import annotations

import asyncio

import pytest

from gptoss_doctor.bench import chat_stream, endpoint

from zero_server import ZeroConfig, running


@pytest.mark.parametrize(("config", "asked", "expected"), [
    pytest.param(ZeroConfig(), 7, 7, id="max_tokens when no count is set"),
    pytest.param(ZeroConfig(tokens=12, delay_s=0.001), 3, 12, id="a set count and a delay"),
])
def test_streams_one_token_per_event_then_usage(config: ZeroConfig, asked: int,
                                                expected: int) -> None:
    with running(config) as (url, zero):
        target = endpoint.Endpoint(url + "/v1")

        async def main() -> list[chat_stream.Stream]:
            async with endpoint.async_client(target, 2) as client:
                body = {"model": "zero", "max_tokens": asked, "messages": []}
                return list(await asyncio.gather(
                    *(chat_stream.stream_chat(client, target, body) for _ in range(2))))

        streams = asyncio.run(main())
        models, _ = endpoint.get_json(target, url + "/v1/models")
    for stream in streams:
        assert stream.error is None and stream.chunks == expected
        assert stream.content == " tok" * expected and stream.finish_reason == "length"
        assert stream.usage is not None and stream.usage["completion_tokens"] == expected
    assert endpoint.parse_models(models) == ("zero",)
    assert zero.state.requests == 2 and zero.state.tokens == 2 * expected
    assert zero.state.running == 0 and zero.state.peak_running >= 1


def test_unknown_paths_are_404_and_metrics_can_be_off() -> None:
    with running(ZeroConfig(metrics=False)) as (url, _zero), pytest.raises(
            endpoint.EndpointError, match="404"):
        endpoint.get_json(endpoint.Endpoint(url + "/v1"), url + "/metrics")
