"""The endpoint layer: URLs, discovery, streams, the speed sweep's numbers and server turns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gptoss_doctor.bench import (
    chat_stream,
    chat_turns,
    endpoint_speed,
    grade,
    harmony,
    tool_suite,
)
from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.bench.speed import parse_tests
from gptoss_doctor.errors import UsageError

from openai_server import ServerState, serve

# LM Studio's native model lists, transcribed from its REST API docs
# (lmstudio.ai/docs/developer/rest/list for v1, /docs/developer/rest/endpoints for v0).
LMSTUDIO_V1 = {"models": [
    {"type": "llm", "publisher": "openai", "key": "openai/gpt-oss-20b",
     "display_name": "gpt-oss 20B", "architecture": "gpt-oss",
     "quantization": {"name": "MXFP4", "bits_per_weight": 4}, "size_bytes": 12109566560,
     "params_string": "20B", "loaded_instances": [
         {"id": "openai/gpt-oss-20b", "config": {"context_length": 8192,
                                                 "eval_batch_size": 512,
                                                 "flash_attention": True}}],
     "max_context_length": 131072, "format": "gguf"}]}
LMSTUDIO_V0 = {"object": "list", "data": [
    {"id": "qwen2-vl-7b-instruct", "object": "model", "type": "vlm",
     "publisher": "mlx-community", "arch": "qwen2_vl", "compatibility_type": "mlx",
     "quantization": "4bit", "state": "not-loaded", "max_context_length": 32768}]}


@pytest.mark.parametrize(("url", "normal"), [
    pytest.param("http://127.0.0.1:1234", "http://127.0.0.1:1234/v1", id="v1 is added"),
    pytest.param("http://host:8000/v1/", "http://host:8000/v1", id="a trailing slash goes"),
    pytest.param("https://x.example/openai", "https://x.example/openai/v1",
                 id="a path prefix is kept"),
])
def test_urls_are_normalized_to_their_v1_root(url: str, normal: str) -> None:
    assert ep.normalize_url(url) == normal


@pytest.mark.parametrize("url", [
    pytest.param("127.0.0.1:1234", id="no scheme"),
    pytest.param("ftp://host/v1", id="not http"),
    pytest.param("http://user:secret@host/v1", id="credentials in the URL"),
    pytest.param("http://host/v1?key=abc", id="a query"),
])
def test_bad_urls_are_refused_in_one_line(url: str) -> None:
    with pytest.raises(ep.EndpointError) as caught:
        ep.normalize_url(url)
    assert "secret" not in caught.value.message and "abc" not in caught.value.message


@pytest.mark.parametrize(("url", "kind"), [
    ("http://127.0.0.1:1234/v1", "local"), ("http://localhost:8080/v1", "local"),
    ("http://[::1]:8000/v1", "local"), ("http://192.168.1.20:1234/v1", "private"),
    ("http://10.0.0.5/v1", "private"), ("http://studio.local:1234/v1", "private"),
    ("https://api.example.com/v1", "remote"), ("http://8.8.8.8/v1", "remote"),
])
def test_host_class_says_whose_hardware_was_measured(url: str, kind: str) -> None:
    assert ep.host_class(url) == kind


def test_lmstudio_v1_entry_gives_load_state_quantization_and_context() -> None:
    entry = ep.parse_lmstudio(LMSTUDIO_V1, "openai/gpt-oss-20b")
    assert entry == {"api": "v1", "key": "openai/gpt-oss-20b", "format": "gguf",
                     "quantization": "MXFP4", "loaded": True, "size_bytes": 12109566560,
                     "max_context_length": 131072,
                     "loaded_config": {"context_length": 8192, "eval_batch_size": 512,
                                       "flash_attention": True}}
    assert ep.parse_lmstudio(LMSTUDIO_V1, "other") is None


def test_lmstudio_v0_entry_is_read_too() -> None:
    entry = ep.parse_lmstudio(LMSTUDIO_V0, "qwen2-vl-7b-instruct")
    assert entry is not None
    assert (entry["api"], entry["format"], entry["quantization"], entry["loaded"],
            entry["max_context_length"]) == ("v0", "mlx", "4bit", False, 32768)


def test_status_errors_scrub_the_key_the_server_echoes() -> None:
    endpoint = ep.Endpoint("http://h/v1", "sk-very-secret")
    error = ep.status_error(endpoint, 401, '{"error": {"message": "bad key sk-very-secret"}}',
                            None)
    assert "sk-very-secret" not in error.message + (error.hint or "")
    assert "401" in error.message and "--api-key-env" in (error.hint or "")
    server = ep.status_error(endpoint, 503, "<html>sk-very-secret overloaded</html>", "m")
    assert server.message == "the server answered 503: <html>*** overloaded</html>"
    assert "sk-very-secret" not in repr(endpoint)


def test_discovery_picks_the_only_model_and_reads_lmstudio() -> None:
    state = ServerState(lmstudio=LMSTUDIO_V1)
    with serve(state) as url:
        info, model = ep.discover(ep.Endpoint(url), None)
        with pytest.raises(ep.EndpointError, match="does not serve 'nope'"):
            ep.discover(ep.Endpoint(url), "nope")
    assert model == "openai/gpt-oss-20b"
    assert info.host_class == "local" and info.models == ("openai/gpt-oss-20b",)
    assert info.is_lmstudio and info.lmstudio is not None and info.lmstudio["loaded"]
    assert info.headers["server"].startswith("fake-openai/1.0")


def test_discovery_without_a_server_is_one_line() -> None:
    with serve(ServerState()) as url:
        pass  # closed again: nothing listens on that port now
    with pytest.raises(ep.EndpointError) as caught:
        ep.discover(ep.Endpoint(url, timeout_s=5), None)
    assert caught.value.message == f"cannot connect to {url}/models: connection refused"


def test_prompts_have_exactly_the_asked_number_of_tokens_and_differ() -> None:
    first, second = endpoint_speed.prompt_text(300, 1), endpoint_speed.prompt_text(300, 2)
    assert harmony.count_tokens(first) == 300 == harmony.count_tokens(second)
    assert first != second


def test_shapes_pair_prompts_with_outputs_and_refuse_depths() -> None:
    shapes = endpoint_speed.shapes_for(parse_tests("pp512,pp64,tg128"))
    assert [s.name for s in shapes] == ["pp64+tg128", "pp512+tg128"]
    assert [s.name for s in endpoint_speed.shapes_for(parse_tests("tg32"))] == ["pp16+tg32"]
    with pytest.raises(UsageError, match="depths"):
        endpoint_speed.shapes_for(parse_tests("pp512", (0, 4096)))
    assert endpoint_speed.parse_levels("4,1,2,2") == (1, 2, 4)
    for bad in ("0", "a", "", "1,999"):
        with pytest.raises(UsageError):
            endpoint_speed.parse_levels(bad)


def test_percentiles_interpolate_like_numpy() -> None:
    values = [0.4, 0.1, 0.3, 0.2]
    assert endpoint_speed.percentile(values, 50) == pytest.approx(0.25)
    assert endpoint_speed.percentile(values, 95) == pytest.approx(0.385)
    assert endpoint_speed.percentile([], 50) is None


def _stream(first: float, last: float, end: float, text: str, usage: dict[str, Any] | None,
            error: str | None = None, finish: str = "length") -> chat_stream.Stream:
    return chat_stream.Stream(first_s=first, last_s=last, end_s=end, chunks=5, content=text,
                     usage=usage, finish_reason=finish, error=error)


def test_a_sample_uses_usage_when_the_server_sends_it() -> None:
    shape = endpoint_speed.Shape(64, 11)
    got = endpoint_speed.sample(_stream(0.5, 1.5, 1.6, " a b", {"prompt_tokens": 80,
                                                               "completion_tokens": 11}),
                                shape, 1, 0, 0)
    assert (got["prompt_tokens"], got["prompt_tokens_source"]) == (80, "usage")
    assert (got["completion_tokens"], got["token_source"]) == (11, "usage")
    assert got["ttft_s"] == 0.5 and got["prompt_ts"] == 160.0
    assert got["decode_ts"] == 10.0  # 10 tokens after the first in 1.0 s
    assert got["e2e_s"] == 1.6 and got["stopped_early"] is False


def test_a_sample_counts_with_o200k_without_usage() -> None:
    shape = endpoint_speed.Shape(64, 8)
    got = endpoint_speed.sample(_stream(0.25, 0.75, 0.8, " hello world again", None,
                                        finish="stop"), shape, 1, 0, 0)
    assert (got["completion_tokens"], got["token_source"]) == (3, "counted")
    assert (got["prompt_tokens"], got["prompt_tokens_source"]) == (64, "sent")
    assert got["decode_ts"] == 4.0 and got["stopped_early"] is True


def test_a_level_summary_aggregates_and_keeps_errors() -> None:
    shape = endpoint_speed.Shape(16, 11)
    ok = [endpoint_speed.sample(_stream(0.1 * (i + 1), 0.1 * (i + 1) + 1.0, 2.0, "",
                                        {"completion_tokens": 11}), shape, 3, i, 0)
          for i in range(2)]
    bad = endpoint_speed.sample(chat_stream.Stream(end_s=0.5, error="the server closed the "
                                          "connection mid-response"), shape, 3, 2, 0)
    level = endpoint_speed.level_summary(shape, 3, [*ok, bad], wall_s=2.2)
    assert (level["requests"], level["ok"], level["generated_tokens"]) == (3, 2, 22)
    assert level["aggregate_ts"] == 10.0 and level["per_stream_ts"] == 10.0
    assert level["ttft_p50_s"] == pytest.approx(0.15)
    assert level["errors"] == {"the server closed the connection mid-response": 1}


def _sweep(state: ServerState, levels: tuple[int, ...], reps: int = 2, timeout: float = 10
           ) -> list[dict[str, Any]]:
    with serve(state) as url:
        endpoint = ep.Endpoint(url, state.api_key, timeout)
        shapes = endpoint_speed.shapes_for(parse_tests("pp32,tg8"))
        swept, interrupted = endpoint_speed.run_sweep(endpoint, state.model, shapes, levels,
                                                      reps)
    assert not interrupted
    return swept


def test_a_sweep_over_a_real_http_stream() -> None:
    swept = _sweep(ServerState(), (1, 3))
    assert [(lv["streams"], lv["requests"], lv["ok"]) for lv in swept] == [(1, 2, 2), (3, 6, 6)]
    sample = swept[0]["samples"][0]
    # the first chunk is reasoning: TTFT counts it, like a user sees the model start
    assert sample["token_source"] == "usage" and sample["completion_tokens"] == 8
    assert sample["ttft_s"] is not None and sample["decode_ts"] is not None
    tests = endpoint_speed.tests_from(swept, endpoint_speed.shapes_for(parse_tests("pp32,tg8")))
    assert [(t["name"], t["status"], len(t["samples_ts"])) for t in tests] == [
        ("pp32", "ok", 2), ("tg8", "ok", 2)]
    only_pp = endpoint_speed.tests_from(swept, endpoint_speed.shapes_for(parse_tests("pp32,tg8")),
                                        frozenset({"pp"}))
    assert [t["name"] for t in only_pp] == ["pp32"]


@pytest.mark.parametrize(("mode", "error"), [
    pytest.param("drop", "closed the connection mid-response", id="a stream that drops"),
    pytest.param("garbage", "malformed server-sent event", id="events that are not JSON"),
    pytest.param("hang", "no complete answer within 1 s", id="a server that hangs"),
    pytest.param("error500", "the server answered 500: CUDA out of memory", id="a 5xx"),
])
def test_misbehaving_servers_become_one_line_per_request(mode: str, error: str) -> None:
    state = ServerState(mode=mode, hang_s=5)
    swept = _sweep(state, (1,), reps=1, timeout=1)
    sample = swept[0]["samples"][0]
    assert sample["error"] is not None and error in sample["error"]
    assert "\n" not in sample["error"]
    tests = endpoint_speed.tests_from(swept, endpoint_speed.shapes_for(parse_tests("pp32,tg8")))
    assert all(t["status"] == "failed" and error in t["reason"] for t in tests)


def test_the_key_is_sent_as_a_bearer_header() -> None:
    state = ServerState(api_key="sk-test-123")
    swept = _sweep(state, (1,), reps=1)
    assert swept[0]["ok"] == 1
    assert set(state.authorizations) == {"Bearer sk-test-123"}
    assert "sk-test-123" not in json.dumps(swept)


def _message(**fields: Any) -> dict[str, Any]:
    return chat_turns.normalize({"role": "assistant", **fields})


def _call(name: str, arguments: Any, call_id: str = "c1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name,
                                                            "arguments": arguments}}


def test_server_tool_calls_become_harmony_calls() -> None:
    message = _message(content="", reasoning_content="The user wants weather.",
                       tool_calls=[_call("get_weather", '{"city": "Paris"}')])
    parsed, by = chat_turns.parse(message, "tool_calls")
    assert by == "server" and parsed.error is None and parsed.ended_with == "<|call|>"
    assert [(m.channel, m.recipient) for m in parsed.messages] == [
        ("analysis", None), ("commentary", "functions.get_weather")]
    assert grade.pending_calls(parsed) == [grade.Call("functions.get_weather", "get_weather",
                                                      '{"city": "Paris"}')]


def test_ollama_object_arguments_and_reasoning_field_are_read() -> None:
    message = _message(content=None, reasoning="thinking",
                       tool_calls=[_call("get_weather", {"city": "Tokyo"}),
                                   _call("get_weather", {"city": "Paris"}, "c2")])
    parsed, _ = chat_turns.parse(message, "stop")
    assert [c.arguments for c in grade.pending_calls(parsed)] == ['{"city": "Tokyo"}',
                                                                   '{"city": "Paris"}']


def test_raw_harmony_in_content_is_parsed_by_us() -> None:
    text = ("<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
            '{"city":"Paris"}<|call|>')
    parsed, by = chat_turns.parse(_message(content=text), "stop")
    assert by == "openai-harmony"
    assert grade.pending_call(parsed) == grade.Call("functions.get_weather", "get_weather",
                                                    '{"city":"Paris"}')


@pytest.mark.parametrize(("message", "error"), [
    pytest.param({"content": "analysisx assistantcommentary to=functions.get_weather json{}"},
                 "without its special tokens", id="harmony with its special tokens stripped"),
    pytest.param({"content": "", "tool_calls": [{"id": "x", "function": {"arguments": "{}"}}]},
                 "malformed", id="a call without a name"),
    pytest.param({"content": ""}, "no message", id="an empty answer"),
])
def test_unusable_server_turns_are_unparsable(message: dict[str, Any], error: str) -> None:
    parsed, _ = chat_turns.parse(_message(**message), "stop")
    assert parsed.error is not None and error in parsed.error


def test_parallel_server_calls_grade_like_harmony_ones() -> None:
    suite = tool_suite.load_suite()
    case = tool_suite.case_by_id(suite, "parallel-weather-two-cities")
    assert case is not None
    message = _message(content="", tool_calls=[_call("get_weather", '{"city": "Tokyo"}'),
                                               _call("get_weather", '{"city": "Paris"}', "c2")])
    final = _message(content="Paris is sunny and Tokyo is rainy.")
    turns = [chat_turns.parse(message, "tool_calls")[0], chat_turns.parse(final, "stop")[0]]
    result = grade.grade_parsed(case, turns, "final")
    assert result.passed and result.failure is None and not result.quirks
    one = grade.grade_parsed(case, [chat_turns.parse(_message(
        content="", tool_calls=[_call("get_weather", '{"city": "Tokyo"}')]), "tool_calls")[0]],
        "turn_limit")
    assert one.failure == "missing_calls"


def test_responses_api_output_items_become_the_same_turn() -> None:
    message, finish = chat_turns.from_response({"status": "completed", "output": [
        {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "Check it."}]},
        {"type": "function_call", "call_id": "fc_9", "name": "get_weather",
         "arguments": '{"city": "Paris"}'}]})
    parsed, by = chat_turns.parse(message, finish)
    assert (finish, by, parsed.ended_with) == ("tool_calls", "server", "<|call|>")
    assert [(m.channel, m.recipient, m.text) for m in parsed.messages] == [
        ("analysis", None, "Check it."),
        ("commentary", "functions.get_weather", '{"city": "Paris"}')]
    assert message["tool_calls"][0]["id"] == "fc_9"
    text, finish = chat_turns.from_response({"status": "incomplete", "output": [
        {"type": "message", "content": [{"type": "output_text", "text": "Paris is"}]}]})
    assert (text["content"], finish) == ("Paris is", "length")
    broken, _ = chat_turns.from_response({"output": "nope"})
    assert chat_turns.parse(broken, None)[0].error == chat_turns.MALFORMED

