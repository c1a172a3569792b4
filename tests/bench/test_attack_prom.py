"""A hostile /metrics page against the watcher: what it keeps per scrape stays bounded, and
summed values that overflow a float do not put an infinity into the results (JSON has none,
and the results loader refuses the file). Pages are built here, in the text format that
tests/fixtures/prometheus/llama-server-after-load.txt records."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from gptoss_doctor.bench import endpoint, prom
from gptoss_doctor.serde import to_json


def _watch_pages(monkeypatch: pytest.MonkeyPatch, texts: list[str]) -> prom.Watch:
    pages = iter(texts)

    async def get_text(_client: Any, _url: str, _limit: int, _timeout: float = 10.0) -> str:
        return next(pages)

    monkeypatch.setattr(endpoint, "get_text", get_text)
    watcher = prom.Watch("http://127.0.0.1:1/v1", None, lambda: 0.0)
    for _ in texts:
        assert asyncio.run(watcher.scrape())
    return watcher


def test_a_scrape_keeps_one_value_per_known_series_not_every_sample(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 50,000 label sets of a known counter, and as many # TYPE lines: a server can send
    # them every second of an hour-long run, so a scrape must not keep them all
    lines = [f'llamacpp:tokens_predicted_total{{slot="{i}"}} 1' for i in range(50_000)]
    lines += [f"# TYPE junk_{i} gauge" for i in range(50_000)]
    text = "\n".join(lines) + "\n"
    watcher = _watch_pages(monkeypatch, [text, text])
    kept = sum(len(page.samples) + len(page.types) for page in watcher.pages)
    assert kept <= 2 * (len(prom.KNOWN_NAMES) + 1)
    generated = watcher.summary().get("generated_tokens")
    assert generated is not None and generated.after == 50_000 and generated.delta == 0


def test_values_that_sum_past_a_float_are_not_infinite_in_the_results(
        monkeypatch: pytest.MonkeyPatch) -> None:
    text = ('vllm:num_requests_running{engine="0"} 1e308\n'
            'vllm:num_requests_running{engine="1"} 1e308\n'
            "vllm:kv_cache_usage_perc 1e308\n")
    watcher = _watch_pages(monkeypatch, [text, text.replace("kv_cache_usage_perc 1e308",
                                                            "kv_cache_usage_perc 1.7e308")])
    summary = watcher.summary()
    written = json.dumps(to_json(summary), allow_nan=False)  # raises on inf or nan
    # a mean over scrapes of 1e308 and 1.7e308 is a float; a sum of two 1e308 is not
    assert "vllm:kv_cache_usage_perc" in written
    assert summary.get("requests_running") is None
    for series in summary.series:
        for value in (series.before, series.after, series.peak, series.mean, series.delta):
            assert value is None or math.isfinite(value)


def test_the_event_loop_runs_while_a_large_page_is_parsed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher shares the event loop with the streams it measures: a 4 MiB page of known
    names with long labels took about half a second to parse, during which no stream's
    chunk could be timestamped. The parse runs off the loop; a task that yields in a loop
    must get turns while it does."""
    line = ("vllm:num_requests_running{" + ",".join(f'l{i}="{"x" * 50}"' for i in range(100))
            + "} 1\n")
    text = line * (prom.MAX_TEXT_CHARS // len(line))

    async def get_text(_client: Any, _url: str, _limit: int, _timeout: float = 10.0) -> str:
        return text

    monkeypatch.setattr(endpoint, "get_text", get_text)

    async def scrape_beside_a_ticker() -> tuple[bool, int]:
        turns = 0
        done = False

        async def ticker() -> None:
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = turns
        ok = await prom.Watch("http://127.0.0.1:1/v1", None, lambda: 0.0).scrape()
        done = True
        await task
        return ok, turns - before

    ok, turns = asyncio.run(scrape_beside_a_ticker())
    assert ok and turns > 0
