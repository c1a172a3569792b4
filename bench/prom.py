"""A server's own Prometheus metrics beside the client's numbers: a text parser and a watcher.

``parse`` reads the Prometheus text exposition format (version 0.0.4: ``# HELP``/``# TYPE``
comments, ``name{label="value",...} value [timestamp]`` samples) from a hostile server:
the text is cut at ``MAX_TEXT_CHARS``, a line past ``MAX_LINE_CHARS`` or one that does not
parse is skipped and counted, at most ``MAX_SAMPLES`` samples are kept, and ``NaN`` and
``±Inf`` are read as floats (the summaries ignore them).

``watch`` scrapes ``<server root>/metrics`` before a run, every ``interval_s`` during it and
after it, through ``endpoint.get_text`` (the one module that speaks HTTP). ``summary()``
gives ``ServerMetrics``: for each series in ``KNOWN`` that the server has (llama-server
started with ``--metrics``, vLLM, SGLang with ``--enable-metrics``), the values before,
after, at their peak and on average, and a counter's increase over the run. A server
without metrics (404, 501, an HTML page, a refused connection) gives ``available=False``
and a one-line reason, never an error: the benchmark goes on without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

from gptoss_doctor.bench import endpoint
from gptoss_doctor.errors import DoctorError

MAX_TEXT_CHARS = 4 << 20  # a whole page: vLLM's, histograms included, is ~100 KB
MAX_LINE_CHARS = 64 << 10
MAX_SAMPLES = 100_000
SCRAPE_TIMEOUT_S = 5.0
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|NaN)",
                    re.IGNORECASE)
ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
SERVERS = {"llamacpp:": "llama.cpp", "vllm:": "vLLM", "sglang:": "SGLang"}

Kind = Literal["gauge", "counter"]


@dataclass(frozen=True, slots=True)
class Known:
    """One quantity under each server's name for it; ``mean`` averages label sets (ratios),
    else they are summed (vLLM and SGLang label each engine or rank)."""

    key: str
    kind: Kind
    names: tuple[str, ...]
    mean: bool = False


# Names from llama.cpp's server (tools/server, handle_metrics), vLLM's "Production Metrics"
# page (docs.vllm.ai, usage/metrics) and SGLang's "Production Metrics" page
# (docs.sglang.io, references/production_metrics); docs/serving-client.md lists them.
KNOWN = (
    Known("kv_cache_usage", "gauge", ("llamacpp:kv_cache_usage_ratio", "vllm:kv_cache_usage_perc",
                                      "vllm:gpu_cache_usage_perc", "sglang:token_usage"), True),
    Known("kv_cache_tokens", "gauge", ("llamacpp:kv_cache_tokens", "sglang:num_used_tokens")),
    Known("requests_running", "gauge", ("llamacpp:requests_processing",
                                        "vllm:num_requests_running", "sglang:num_running_reqs")),
    Known("requests_waiting", "gauge", ("llamacpp:requests_deferred",
                                        "vllm:num_requests_waiting", "sglang:num_queue_reqs")),
    Known("busy_slots_per_decode", "gauge", ("llamacpp:n_busy_slots_per_decode",), True),
    Known("prefix_cache_hit_rate", "gauge", ("sglang:cache_hit_rate",
                                             "vllm:gpu_prefix_cache_hit_rate"), True),
    Known("prompt_tokens", "counter", ("llamacpp:prompt_tokens_total", "vllm:prompt_tokens_total",
                                       "sglang:prompt_tokens_total")),
    Known("generated_tokens", "counter", ("llamacpp:tokens_predicted_total",
                                          "vllm:generation_tokens_total",
                                          "sglang:generation_tokens_total")),
    Known("decode_calls", "counter", ("llamacpp:n_decode_total",)),
    Known("prefix_cache_queries", "counter", ("vllm:prefix_cache_queries_total",)),
    Known("prefix_cache_hits", "counter", ("vllm:prefix_cache_hits_total",)),
    Known("cached_prompt_tokens", "counter", ("llamacpp:prompt_tokens_cached_total",
                                              "sglang:cached_tokens_total")),
    Known("preemptions", "counter", ("vllm:num_preemptions_total",)),
    Known("requests_finished", "counter", ("vllm:request_success_total",
                                           "sglang:num_requests_total")),
)
KNOWN_NAMES = frozenset(name for known in KNOWN for name in known.names)


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class Exposition:
    """One page: its samples, the ``# TYPE`` of each family, what was skipped or cut."""

    samples: tuple[Sample, ...]
    types: dict[str, str]
    skipped: int = 0
    truncated: bool = False

    def values(self, name: str) -> list[float]:
        """Every sample named exactly ``name`` (one per label set)."""
        return [s.value for s in self.samples if s.name == name]


def parse(text: str, only: Collection[str] | None = None) -> Exposition:
    """The samples of a Prometheus text page; ``only`` keeps just those names (cheaper: other
    lines are not parsed past their name). Never raises on what the page holds."""
    truncated = len(text) > MAX_TEXT_CHARS
    samples: list[Sample] = []
    types: dict[str, str] = {}
    skipped = 0
    for raw in text[:MAX_TEXT_CHARS].splitlines():
        line = raw.strip()
        if not line:
            continue
        if len(line) > MAX_LINE_CHARS:
            skipped += 1
        elif line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) == 4 and parts[1] == "TYPE" and NAME.fullmatch(parts[2]):
                types[parts[2]] = parts[3].strip()[:20]
        elif len(samples) >= MAX_SAMPLES:
            truncated = True
            break
        else:
            name = NAME.match(line)
            if name is not None and only is not None and name.group() not in only:
                continue
            sample = parse_sample(line)
            if sample is None:
                skipped += 1
            else:
                samples.append(sample)
    return Exposition(tuple(samples), types, skipped, truncated)


def parse_sample(line: str) -> Sample | None:
    """``name{labels} value [timestamp]``, or None when the line is malformed."""
    name = NAME.match(line)
    if name is None:
        return None
    rest = line[name.end():]
    labels: tuple[tuple[str, str], ...] = ()
    if rest.startswith("{"):
        parsed = parse_labels(rest)
        if parsed is None:
            return None
        labels, rest = parsed
    fields = rest.split()
    if not rest[:1].isspace() or not 1 <= len(fields) <= 2 or not NUMBER.fullmatch(fields[0]):
        return None
    if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
        return None
    return Sample(name.group(), labels, float(fields[0]))


def parse_labels(text: str) -> tuple[tuple[tuple[str, str], ...], str] | None:
    """``{a="x",b="y\\"z"}rest`` -> (labels, rest), or None when malformed."""
    labels: list[tuple[str, str]] = []
    position = 1
    while True:
        while text[position:position + 1].isspace():
            position += 1
        if text[position:position + 1] == "}":
            return tuple(labels), text[position + 1:]
        name = LABEL_NAME.match(text, position)
        if name is None or text[name.end():name.end() + 2] != '="':
            return None
        value: list[str] = []
        position = name.end() + 2
        while True:
            char = text[position:position + 1]
            if char in ("", "\n"):
                return None
            if char == '"':
                break
            if char == "\\":
                escaped = text[position + 1:position + 2]
                value.append(ESCAPES.get(escaped, "\\" + escaped))
                position += 2
            else:
                value.append(char)
                position += 1
        labels.append((name.group(), "".join(value)))
        position += 1
        if text[position:position + 1] == ",":
            position += 1
        elif text[position:position + 1] != "}":
            return None


def server_of(text: str) -> str | None:
    """Which server wrote a page, by the prefix of its first sample (llama.cpp, vLLM,
    SGLang)."""
    first: tuple[int, str] | None = None
    for prefix, server in SERVERS.items():
        at = 0 if text.startswith(prefix) else text.find("\n" + prefix)
        if at >= 0 and (first is None or at < first[0]):
            first = (at, server)
    return first[1] if first else None


def value_of(page: Exposition, known: Known) -> tuple[str, float] | None:
    """(the name found, its value over label sets) for the first of ``known.names`` present
    (a sum that overflows a float counts as absent: JSON has no infinity)."""
    for name in known.names:
        values = [v for v in page.values(name) if math.isfinite(v)]
        if values:
            value = sum(v / len(values) for v in values) if known.mean else sum(values)
            return (name, value) if math.isfinite(value) else None
    return None


def compact(page: Exposition) -> Exposition:
    """What ``summarize`` reads of a page: one sample per ``KNOWN`` quantity, so that a run
    of many scrapes of a page of 100,000 label sets keeps a few values per scrape."""
    found = [value_of(page, known) for known in KNOWN]
    return Exposition(tuple(Sample(name, (), value) for name, value in filter(None, found)),
                      {}, page.skipped, page.truncated)


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """One known quantity over a run; a counter's ``delta`` is None after a reset."""

    key: str
    metric: str
    kind: Kind
    before: float | None
    after: float | None
    peak: float
    mean: float
    delta: float | None


@dataclass(frozen=True, slots=True)
class ServerMetrics:
    """What the server's ``/metrics`` said during a run (``available=False``: nothing)."""

    available: bool
    reason: str | None
    url: str
    server: str | None = None
    scrapes: int = 0
    failed_scrapes: int = 0
    skipped_lines: int = 0
    series: tuple[SeriesSummary, ...] = ()

    def get(self, key: str) -> SeriesSummary | None:
        return next((s for s in self.series if s.key == key), None)


def summarize(url: str, pages: list[Exposition], failed: int, reason: str | None,
              server: str | None = None) -> ServerMetrics:
    """The run's ``ServerMetrics`` from its Prometheus pages in scrape order (before ...
    after); with no page, ``reason`` says why."""
    if not pages:
        return ServerMetrics(False, reason or f"{url} was not scraped", url,
                             failed_scrapes=failed)
    series: list[SeriesSummary] = []
    for known in KNOWN:
        found = [value_of(page, known) for page in pages]
        points = [value for _name, value in filter(None, found)]
        if not points:
            continue
        metric = next(name for name, _value in filter(None, found))
        before, after = (f[1] if f else None for f in (found[0], found[-1]))
        delta = (after - before if known.kind == "counter" and before is not None
                 and after is not None and after >= before else None)
        series.append(SeriesSummary(known.key, metric, known.kind, before, after,
                                    max(points), sum(p / len(points) for p in points),
                                    delta if delta is None or math.isfinite(delta) else None))
    return ServerMetrics(True, None, url, server, len(pages), failed,
                         sum(page.skipped for page in pages), tuple(series))


def metrics_url(base_url: str) -> str:
    """``<root>/metrics`` for a server root or an OpenAI ``.../v1`` base URL."""
    root = base_url.rstrip("/")
    return (root[:-3] if root.endswith("/v1") else root) + "/metrics"


class Watch:
    """Scrapes of one server's ``/metrics``; ``summary()`` at any time."""

    def __init__(self, base_url: str, client: Any, clock: Callable[[], float]) -> None:
        self.url = metrics_url(base_url)
        self._client = client
        self._clock = clock
        self.pages: list[Exposition] = []
        self.times: list[float] = []
        self.failed = 0
        self.reason: str | None = None
        self.server: str | None = None

    async def scrape(self) -> bool:
        """One scrape; False (with ``reason``) when it failed or held no samples."""
        try:
            text = await endpoint.get_text(self._client, self.url, MAX_TEXT_CHARS,
                                           SCRAPE_TIMEOUT_S)
        except DoctorError as exc:
            self.failed += 1
            self.reason = exc.message
            return False
        # off the event loop: a 4 MiB page takes a good part of a second to parse, and the
        # streams being measured share the loop
        page = await asyncio.to_thread(parse, text, KNOWN_NAMES)
        if not (page.samples or page.types or parse(text[:MAX_LINE_CHARS]).samples):
            self.failed += 1
            self.reason = f"{self.url} did not answer Prometheus metrics"
            return False
        self.server = self.server or server_of(text)
        self.pages.append(compact(page))
        self.times.append(self._clock())
        return True

    async def poll(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.scrape()

    def summary(self) -> ServerMetrics:
        return summarize(self.url, self.pages, self.failed, self.reason, self.server)


@contextlib.asynccontextmanager
async def watch(base_url: str, client: Any, interval_s: float = 1.0,
                clock: Callable[[], float] = time.monotonic) -> AsyncIterator[Watch]:
    """Scrape before, every ``interval_s`` during and after the block. ``client`` is the
    run's ``httpx.AsyncClient`` (made by ``endpoint.async_client``). A server without
    metrics is scraped once: its ``summary()`` says why nothing is available."""
    watcher = Watch(base_url, client, clock)
    task = (asyncio.create_task(watcher.poll(max(interval_s, 0.05)))
            if await watcher.scrape() else None)
    try:
        yield watcher
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task is not None:
        await watcher.scrape()

