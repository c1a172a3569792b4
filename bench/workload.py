"""Workloads for the endpoint benchmark: which request shapes a run sends, seeded.

``--workload`` names one (parsed by ``parse_workload``):

- ``fixed`` (the default): every request has the ``--tests`` shape (``ppN`` in, ``tgM`` out);
- ``chat``: input and output lengths drawn per request from log-normal distributions whose
  means are the ShareGPT conversation statistics published with vLLM's PagedAttention
  paper (about 161 tokens in, 338 out), clamped to the bounds ``vllm bench serve`` applies
  to ShareGPT (at least 4 tokens each, at most 1024 in and 2048 in and out together);
  docs/serving-client.md cites the sources and says what is our own choice (the spread);
- ``prefix:<N>``: the ``--tests`` shape after a shared system prompt of ``N`` tokens that
  every request repeats word for word, so that a server with prefix caching answers the
  first token sooner than it would for ``N`` fresh tokens.

``Workload.shapes`` is pure and reproducible: the same seed gives the same shapes on every
machine (Python's ``random.Random`` is specified to be). A ``RequestShape``'s
``prompt_tokens`` is the fresh part only; the prefix comes before it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal, Protocol

from gptoss_doctor.errors import UsageError

WorkloadKind = Literal["fixed", "chat", "prefix"]
MAX_PREFIX_TOKENS = 131_072  # gpt-oss's whole context
MAX_REQUESTS = 1_000_000
# ShareGPT as served by vLLM's benchmarks (docs/serving-client.md, "Workloads"):
CHAT_MEAN_INPUT = 161.0  # tokens, PagedAttention paper (Kwon et al., SOSP 2023), Fig. 11
CHAT_MEAN_OUTPUT = 338.0
CHAT_SIGMA = 1.0  # spread of log(length): our choice, a long tail as in the paper's figure
CHAT_MIN_TOKENS = 4  # vllm bench serve drops ShareGPT turns under 4 tokens either way
CHAT_MAX_INPUT = 1024  # ... and prompts over 1024 tokens
CHAT_MAX_TOTAL = 2048  # ... and prompt + output over 2048
USAGE = "use fixed, chat or prefix:<N> (N shared system-prompt tokens, 1 to 131072)"


class ShapeLike(Protocol):
    """What a default shape must have (``bench.endpoint_speed.Shape`` has it)."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RequestShape:
    """One request: ``prefix_tokens`` shared, then ``prompt_tokens`` fresh; ``max_tokens``."""

    prompt_tokens: int
    max_tokens: int
    prefix_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Workload:
    kind: WorkloadKind = "fixed"
    prefix_tokens: int = 0  # "prefix" only

    @property
    def name(self) -> str:
        """The text that names it, as ``parse_workload`` reads it."""
        return f"prefix:{self.prefix_tokens}" if self.kind == "prefix" else self.kind

    def shapes(self, count: int, seed: int, default: ShapeLike) -> list[RequestShape]:
        """``count`` request shapes; the same (count, seed, default) always gives the same."""
        if not 0 <= count <= MAX_REQUESTS:
            raise UsageError(f"bad request count {count}: from 0 to {MAX_REQUESTS}")
        if self.kind == "chat":
            rng = random.Random(seed)
            return [chat_shape(rng) for _ in range(count)]
        prefix = self.prefix_tokens if self.kind == "prefix" else 0
        return [RequestShape(default.prompt_tokens, default.max_tokens, prefix)] * count


def lognormal_mu(mean: float, sigma: float) -> float:
    """The ``mu`` of a log-normal distribution with this ``mean`` and ``sigma``."""
    return math.log(mean) - sigma * sigma / 2


def chat_shape(rng: random.Random) -> RequestShape:
    """One chat-like request: log-normal lengths, clamped to the ShareGPT filter's bounds."""
    prompt = round(rng.lognormvariate(lognormal_mu(CHAT_MEAN_INPUT, CHAT_SIGMA), CHAT_SIGMA))
    output = round(rng.lognormvariate(lognormal_mu(CHAT_MEAN_OUTPUT, CHAT_SIGMA), CHAT_SIGMA))
    prompt = min(max(prompt, CHAT_MIN_TOKENS), CHAT_MAX_INPUT)
    output = min(max(output, CHAT_MIN_TOKENS), CHAT_MAX_TOTAL - prompt)
    return RequestShape(prompt, output, 0)


def parse_workload(text: str) -> Workload:
    """``fixed``, ``chat`` or ``prefix:<N>``; anything else is a one-line UsageError."""
    value = text.strip().lower()
    if value in ("", "fixed"):
        return Workload("fixed")
    if value == "chat":
        return Workload("chat")
    kind, sep, number = value.partition(":")
    digits = number.strip()
    if kind == "prefix" and sep and len(digits) <= 7 and digits.isascii() and digits.isdigit():
        tokens = int(digits)
        if 1 <= tokens <= MAX_PREFIX_TOKENS:
            return Workload("prefix", tokens)
    shown = text if len(text) <= 40 else text[:40] + "…"
    raise UsageError(f"bad --workload {shown!r}: {USAGE}")
