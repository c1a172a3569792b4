"""Prometheus metrics: the text parser on recorded and hostile pages, the run summary, and
the watcher against the zero-work server, servers without metrics and llama-server."""

from __future__ import annotations

import asyncio
import math
import socket
from pathlib import Path

import pytest

from gptoss_doctor.bench import chat_stream, endpoint, prom

from zero_server import ZeroConfig, running

PAGES = Path(__file__).parents[1] / "fixtures" / "prometheus"


def page(name: str) -> prom.Exposition:
    return prom.parse((PAGES / name).read_text())


def test_recorded_llama_server_page() -> None:
    after = page("llama-server-after-load.txt")
    assert after.skipped == 0 and not after.truncated
    assert after.values("llamacpp:tokens_predicted_total") == [256.0]
    assert after.types["llamacpp:requests_processing"] == "gauge"
    summary = prom.summarize("u", [page("llama-server-idle.txt"), after], 0, None, "llama.cpp")
    generated = summary.get("generated_tokens")
    assert generated is not None and generated.delta == 256 and generated.before == 0
    assert summary.get("cached_prompt_tokens") is not None
    assert summary.get("kv_cache_usage") is None  # this llama.cpp build has none
    busy = summary.get("busy_slots_per_decode")
    assert busy is not None and busy.peak == pytest.approx(1.98473) and busy.delta is None


def test_vllm_engines_are_summed_and_ratios_averaged() -> None:
    vllm = page("vllm-docs.txt")
    summary = prom.summarize("u", [vllm], 0, None)
    running_now = summary.get("requests_running")
    kv = summary.get("kv_cache_usage")
    assert running_now is not None and running_now.after == 21
    assert kv is not None and kv.metric == "vllm:kv_cache_usage_perc" and kv.after == 0.375
    prompt = summary.get("prompt_tokens")
    assert prompt is not None and prompt.after == 4096  # the _created sample is not counted
    assert vllm.values("vllm:e2e_request_latency_seconds_bucket")[-1] == 7


def test_sglang_docs_page() -> None:
    text = (PAGES / "sglang-docs.txt").read_text()
    summary = prom.summarize("u", [prom.parse(text)], 0, None, prom.server_of(text))
    assert summary.server == "SGLang"
    usage = summary.get("kv_cache_usage")
    assert usage is not None and usage.metric == "sglang:token_usage" and usage.peak == 0.28
    generated = summary.get("generated_tokens")
    assert generated is not None and generated.after == 7.557572e6


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param('a{x="q\\"uote",y="back\\\\slash",z="new\\nline"} 1',
                 (("x", 'q"uote'), ("y", "back\\slash"), ("z", "new\nline")),
                 id="escaped quote, backslash and newline in label values"),
    pytest.param('a{x="1",} 2', (("x", "1"),), id="a trailing comma"),
    pytest.param('a{x="}{,="} 3', (("x", "}{,="),), id="braces and commas inside a value"),
    pytest.param("a{} 4", (), id="empty braces"),
])
def test_labels(line: str, expected: tuple[tuple[str, str], ...]) -> None:
    sample = prom.parse_sample(line)
    assert sample is not None and sample.labels == expected


@pytest.mark.parametrize(("text", "check"), [
    pytest.param("a NaN\nb +Inf\nc -Inf\nd 1e3 1700000000000",
                 lambda v: math.isnan(v[0]) and v[1:] == [math.inf, -math.inf, 1000.0],
                 id="NaN, infinities and a timestamp"),
])
def test_special_values(text: str, check: object) -> None:
    values = [s.value for s in prom.parse(text).samples]
    assert callable(check) and check(values)


@pytest.mark.parametrize("line", [
    pytest.param("a 1_000", id="an underscore Python's float() would accept"),
    pytest.param("a one", id="a word for a value"),
    pytest.param('a{x="unterminated} 1', id="an unterminated label value"),
    pytest.param("a{x=1} 1", id="an unquoted label value"),
    pytest.param("a{9x=\"1\"} 1", id="a label name starting with a digit"),
    pytest.param("a 1 2 3", id="too many fields"),
    pytest.param("a1", id="no space before the value"),
    pytest.param("a 1 1.5", id="a fractional timestamp"),
    pytest.param("<html><body>Not Found</body></html>", id="HTML"),
])
def test_malformed_lines_are_skipped_and_counted(line: str) -> None:
    parsed = prom.parse(f"good 1\n{line}\nalso_good 2\n")
    assert [s.name for s in parsed.samples] == ["good", "also_good"]
    assert parsed.skipped == 1


def test_size_limits() -> None:
    huge_line = "a{x=\"" + "y" * (prom.MAX_LINE_CHARS + 1) + "\"} 1"
    assert prom.parse(huge_line + "\nb 1").skipped == 1
    flood = "a 1\n" * (prom.MAX_SAMPLES + 5)
    parsed = prom.parse(flood)
    assert len(parsed.samples) == prom.MAX_SAMPLES and parsed.truncated
    assert prom.parse("a 1\n" + "#" * prom.MAX_TEXT_CHARS).truncated


def test_only_keeps_the_names_asked_for() -> None:
    parsed = prom.parse("a 1\nb{broken 2\nc 3\n", only={"a", "c"})
    assert [s.name for s in parsed.samples] == ["a", "c"] and parsed.skipped == 0


def test_a_counter_reset_has_no_delta() -> None:
    pages = [prom.parse("llamacpp:tokens_predicted_total 50"),
             prom.parse("llamacpp:tokens_predicted_total 5")]
    generated = prom.summarize("u", pages, 0, None).get("generated_tokens")
    assert generated is not None and generated.delta is None and generated.peak == 50


@pytest.mark.parametrize(("url", "expected"), [
    ("http://h:8000/v1", "http://h:8000/metrics"),
    ("http://h:8000/v1/", "http://h:8000/metrics"),
    ("http://h:8000", "http://h:8000/metrics"),
])
def test_metrics_url(url: str, expected: str) -> None:
    assert prom.metrics_url(url) == expected


async def watched(url: str, work_s: float, interval_s: float = 0.05) -> prom.ServerMetrics:
    async with endpoint.async_client(endpoint.Endpoint(url), 4) as client, prom.watch(
            url, client, interval_s) as watcher:
        if work_s:
            body = {"model": "zero", "max_tokens": 40, "messages": [], "stream": True}
            streams = [chat_stream.stream_chat(client, endpoint.Endpoint(url), body)
                       for _ in range(3)]
            done = await asyncio.gather(*streams)
            assert all(s.error is None for s in done)
    return watcher.summary()


def test_watch_sees_the_runs_requests_and_tokens() -> None:
    with running(ZeroConfig(delay_s=0.01)) as (url, _zero):
        summary = asyncio.run(watched(url + "/v1", 1))
    assert summary.available and summary.server == "llama.cpp"
    assert summary.scrapes >= 3 and summary.failed_scrapes == 0
    generated = summary.get("generated_tokens")
    assert generated is not None and generated.delta == 120
    busy = summary.get("requests_running")
    assert busy is not None and busy.before == 0 and busy.after == 0 and busy.peak >= 1


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_servers_without_metrics_are_unavailable_with_a_reason() -> None:
    with running(ZeroConfig(metrics=False)) as (url, _zero):
        missing = asyncio.run(watched(url, 0))
    assert not missing.available and missing.reason is not None and "404" in missing.reason
    refused = asyncio.run(watched(_refused_url(), 0))
    assert not refused.available and "refused" in (refused.reason or "")
    assert refused.scrapes == 0 and refused.failed_scrapes == 1


def test_an_html_page_is_not_metrics() -> None:
    from openai_server import ServerState, serve

    with serve(ServerState()) as url:  # its unknown paths answer an error page, not metrics
        summary = asyncio.run(watched(url, 0))
    assert not summary.available and summary.reason


@pytest.mark.xllamacpp
def test_llama_servers_own_metrics_during_a_run(tmp_path: Path) -> None:
    from gptoss_doctor.bench import engines, synth
    from gptoss_doctor.bench.engine import serving
    from gptoss_doctor.load_settings import LoadSettings

    model = synth.write_synthetic("tiny", tmp_path / "tiny.gguf").path
    adapter = serving(engines.ENGINES["llama-server"])
    assert adapter is not None
    with adapter.serve(model, LoadSettings(), 2, 0, False) as served:
        root = served.url.removesuffix("/v1")

        async def run() -> prom.ServerMetrics:
            async with endpoint.async_client(endpoint.Endpoint(served.url), 4) as client, \
                    prom.watch(served.url, client, 0.1) as watcher:
                body = {"max_tokens": 32, "stream": True,
                        "messages": [{"role": "user", "content": "hello " * 30}]}
                await asyncio.gather(*(chat_stream.stream_chat(
                    client, endpoint.Endpoint(served.url), body) for _ in range(4)))
            return watcher.summary()

        summary = asyncio.run(run())
    assert root.startswith("http://127.0.0.1:")
    assert summary.available and summary.server == "llama.cpp" and summary.skipped_lines == 0
    generated = summary.get("generated_tokens")
    assert generated is not None and generated.delta is not None and generated.delta >= 4
    prompt = summary.get("prompt_tokens")
    assert prompt is not None and prompt.delta is not None and prompt.delta > 0
