"""The install smoke test on a real chat model and on the tiny synthetic gpt-oss."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_doctor.bench import synth

from conftest import require_llama_cpp

pytestmark = pytest.mark.llama
require_llama_cpp()
from gptoss_doctor.bench.llama_engine import LlamaSettings  # noqa: E402
from gptoss_doctor.bench.smoke import smoke_test  # noqa: E402


def test_smollm2_answers_in_words(smollm_gguf: Path) -> None:
    result = smoke_test(smollm_gguf, LlamaSettings(n_ctx=512, n_threads=2), gpt_oss=False)
    assert result.generated_tokens > 0 and result.tokens_per_s > 0
    assert any(ch.isalpha() for ch in result.text)
    assert result.load_s > 0


def test_tiny_synthetic_gpt_oss_runs_a_harmony_prompt(tmp_path: Path) -> None:
    model = synth.write_synthetic("tiny", tmp_path / "t.gguf").path
    result = smoke_test(model, LlamaSettings(n_ctx=512, n_threads=2), gpt_oss=True,
                        max_tokens=8)
    assert result.prompt_tokens > 50  # the rendered harmony conversation
    assert result.stopped_on in ("max_tokens", "<|return|>", "<|call|>")
    assert result.generated_tokens <= 8
