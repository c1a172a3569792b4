"""Smoke test after an install: the model loads with the planned settings and answers.

gpt-oss gets a harmony prompt and generation stops at ``<|return|>``/``<|call|>``; other
models get a plain prompt. Load time and generation speed are reported (synthetic weights
answer noise, which is still a valid smoke test of the engine and the files).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gptoss_doctor.bench.records import FitDevice

QUESTION = "Say hello in five words."
SMOKE_TOKENS = 24


@dataclass(frozen=True, slots=True)
class SmokeResult:
    load_s: float
    prompt_tokens: int
    generated_tokens: int
    tokens_per_s: float
    stopped_on: str  # "<|return|>" | "<|call|>" | "max_tokens"
    text: str
    llama_cpp_memory: tuple[FitDevice, ...] = ()  # llama.cpp's own breakdown, where logged


class SmokeEngine(Protocol):
    def decode(self, tokens: Sequence[int]) -> None: ...

    def argmax_next(self) -> int: ...

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def close(self) -> None: ...


def smoke_test(load: Callable[[], SmokeEngine], gpt_oss: bool,
               max_tokens: int = SMOKE_TOKENS) -> SmokeResult:
    """Load (timed) with ``load()``, answer one question greedily, close."""
    started = time.perf_counter()
    engine = load()
    loaded = time.perf_counter()
    try:
        if gpt_oss:
            from gptoss_doctor.bench import harmony

            prompt = harmony.chat_prompt(QUESTION)
            stops = set(harmony.stop_tokens())
        else:
            prompt = engine.tokenize(f"Question: {QUESTION}\nAnswer:")
            stops = set()
        engine.decode(prompt)
        generated: list[int] = []
        stopped_on = "max_tokens"
        first = time.perf_counter()
        while len(generated) < max_tokens:
            token = engine.argmax_next()
            if token in stops:
                stopped_on = "<|call|>" if token == 200012 else "<|return|>"
                break
            generated.append(token)
            engine.decode([token])
        elapsed = time.perf_counter() - first
        text = engine.detokenize(generated)
    finally:
        engine.close()
    rate = len(generated) / elapsed if elapsed > 0 and generated else 0.0
    return SmokeResult(loaded - started, len(prompt), len(generated), rate, stopped_on, text)
