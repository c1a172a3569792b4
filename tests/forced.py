"""A real engine steered by a scripted logits bias, and the act loop both engines must pass.

The wrapper lets the model run at every position (its logits must be finite) and adds a
large bias to the scripted token, so a known harmony reply goes through the real engine,
its KV cache and the tool loop; ``run_kv_to_file`` checks that loop the same way for
llama.cpp and MLX.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gptoss_doctor.bench import harmony, tool_run, tool_suite

KV_TO_FILE = (
    "<|channel|>analysis<|message|>Look it up first.<|end|><|start|>assistant"
    "<|channel|>commentary to=functions.kv_get <|constrain|>json"
    '<|message|>{"key": "city"}<|call|>',
    "<|channel|>commentary to=functions.create_file <|constrain|>json"
    '<|message|>{"path": "city.txt", "content": "Lisbon"}<|call|>',
    "<|channel|>final<|message|>Wrote Lisbon to city.txt.<|return|>")


class Forced:
    """A real engine (reset/decode/logits) whose next token is the script's."""

    def __init__(self, engine: Any, turns: Sequence[str]) -> None:
        self.engine, self.n_ctx = engine, engine.n_ctx
        self.queue = [t for text in turns for t in harmony.encode(text)]
        self.positions: list[int] = []

    def reset(self) -> None:
        self.engine.reset()
        self.positions.append(0)

    def decode(self, tokens: Sequence[int]) -> None:
        self.engine.decode(tokens)
        self.positions[-1] += len(tokens)

    def logits(self) -> Any:
        real = np.array(self.engine.logits())
        assert np.isfinite(real).all()  # the real model ran at this position
        real[self.queue.pop(0)] += 1e4
        return real


def run_kv_to_file(engine: Any) -> None:
    """The act case ``act-kv-to-file`` forced through ``engine``: it must pass, and the
    cache must have been reset once and only appended to after that."""
    suite = tool_suite.load_suite()
    case = tool_suite.case_by_id(suite, "act-kv-to-file")
    assert case is not None
    forced = Forced(engine, KV_TO_FILE)
    attempt = tool_run.run_attempt(forced, suite, case, tool_run.RunSettings(
        max_tokens=64, sampling=tool_run.Sampling(temperature=0.0)), 0)
    assert attempt["end"] == "final" and attempt["grade"]["passed"], attempt["grade"]
    assert attempt["turns"][0]["tool_result"] == {"value": "Lisbon"}
    assert attempt["turns"][1]["tool_result"]["written"] == "city.txt"
    # one reset, then every turn only appended: the cache holds the last prompt and the
    # last completion but its stop token
    last = attempt["turns"][-1]
    assert forced.positions == [last["prompt_tokens"] + len(last["completion_ids"]) - 1]
