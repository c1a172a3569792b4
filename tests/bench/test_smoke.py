"""The install smoke test on a real chat model and on the tiny synthetic gpt-oss."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_doctor.bench import synth
from gptoss_doctor.bench.llama_engine import LlamaEngine
from gptoss_doctor.bench.smoke import smoke_test
from gptoss_doctor.load_settings import LoadSettings

pytestmark = pytest.mark.llama


def test_smollm2_answers_in_words(smollm_gguf: Path) -> None:
    settings = LoadSettings(n_ctx=512, n_threads=2)
    result = smoke_test(lambda: LlamaEngine(smollm_gguf, settings), gpt_oss=False)
    assert result.generated_tokens > 0 and result.tokens_per_s > 0
    assert any(ch.isalpha() for ch in result.text)
    assert result.load_s > 0


def test_tiny_synthetic_gpt_oss_runs_a_harmony_prompt(tmp_path: Path) -> None:
    model = synth.write_synthetic("tiny", tmp_path / "t.gguf").path
    settings = LoadSettings(n_ctx=512, n_threads=2)
    result = smoke_test(lambda: LlamaEngine(model, settings), gpt_oss=True, max_tokens=8)
    assert result.prompt_tokens > 50  # the rendered harmony conversation
    assert result.stopped_on in ("max_tokens", "<|return|>", "<|call|>")
    assert result.generated_tokens <= 8
