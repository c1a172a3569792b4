"""The llama.cpp adapter on a real model: buffers, expert offload by tensor overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gptoss_doctor.bench import synth
from gptoss_doctor.bench.llama_engine import (
    EngineError,
    LlamaEngine,
    expert_pattern,
)
from gptoss_doctor.load_settings import LoadSettings


def test_expert_pattern_matches_only_the_first_n_layers() -> None:
    pattern = re.compile(expert_pattern(3))
    assert pattern.search("blk.2.ffn_up_exps.weight")
    assert pattern.search("blk.0.ffn_gate_exps.bias")
    assert not pattern.search("blk.3.ffn_down_exps.weight")
    assert not pattern.search("blk.12.ffn_down_exps.weight")
    assert not pattern.search("blk.1.attn_q.weight")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_synthetic("tiny", tmp_path_factory.mktemp("e") / "tiny.gguf").path


@pytest.mark.llama
def test_n_cpu_moe_overrides_exactly_the_expert_tensors_of_those_layers(tiny: Path) -> None:
    engine = LlamaEngine(tiny, LoadSettings(n_ctx=256, n_threads=2, n_cpu_moe=1))
    try:
        assert set(engine.overridden_tensors) == {
            f"blk.0.ffn_{part}_exps.{kind}" for part in ("gate", "up", "down")
            for kind in ("weight", "bias")}
        engine.decode([1, 2, 3])
        assert 0 <= engine.argmax_next() < engine.n_vocab
    finally:
        engine.close()


@pytest.mark.llama
def test_without_offload_nothing_is_overridden_and_buffers_are_reported(tiny: Path) -> None:
    engine = LlamaEngine(tiny, LoadSettings(n_ctx=512, n_threads=2))
    try:
        assert engine.overridden_tensors == {}
        assert engine.buffers.kv_mib > 0 and engine.buffers.model_mib > 0
        assert engine.n_vocab == 201088 and engine.n_ctx == 512
        engine.decode(list(range(300)))
        engine.reset()
        engine.decode([5])
    finally:
        engine.close()


@pytest.mark.llama
def test_an_unloadable_file_is_one_engine_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(EngineError, match=r"could not load bad\.gguf"):
        LlamaEngine(bad, LoadSettings(n_ctx=256))
