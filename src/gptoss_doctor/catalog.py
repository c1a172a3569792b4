"""The model catalogue: every gpt-oss shape the project knows and where its files live.

One place for the architecture facts that synthetic models are written from, that identify
a GGUF file or an MLX folder as gpt-oss-20b/120b (or the tiny test shape), that match a
served model's name, and that the memory and speed estimates use. Weight sizes are computed
from the architecture and the tensor types of the ggml-org GGUF release (experts MXFP4,
other matrices Q8_0, vectors F32: docs/design.md, "gpt-oss facts"), so the estimator needs
no download. Sizes are checked in tests against the published file sizes (11.27 GiB /
59.02 GiB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

N_VOCAB = 201088  # o200k_harmony, padded as in the release

# Bytes per value of the GGML types gpt-oss uses: blocks of 32 values.
Q8_0_BYTES_PER_VALUE = 34 / 32  # fp16 scale + 32 int8
MXFP4_BYTES_PER_VALUE = 17 / 32  # E8M0 scale + 32 nibbles
F32_BYTES = 4


@dataclass(frozen=True, slots=True)
class ModelShape:
    """The architecture facts the memory and speed estimates depend on.

    ``weights_bytes`` and friends may be given directly (read from a GGUF's tensor table)
    or derived from the gpt-oss layout by ``gpt_oss_shape``.
    """

    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_vocab: int
    weights_bytes: int
    token_embd_bytes: int  # stays on the CPU in llama.cpp even with full offload
    expert_bytes_per_layer: int = 0  # 0 for dense models
    active_bytes_per_token: int = 0  # weights read to generate one token
    n_expert: int = 0
    n_expert_used: int = 0
    n_swa: int = 0  # sliding-window size; 0 = no sliding layers
    n_swa_layers: int = 0
    n_ctx_train: int = 0
    active_params: int = 0

    @property
    def n_full_layers(self) -> int:
        return self.n_layer - self.n_swa_layers

    @property
    def kv_embd(self) -> int:
        """Width of K (and of V) per token and layer: heads_kv x head_dim."""
        return self.n_head_kv * self.head_dim


@dataclass(frozen=True, slots=True)
class Architecture:
    """Dimensions of one gpt-oss variant: what a synthetic model is written with and what
    identifies a file (head size 64 and the o200k vocabulary are fixed)."""

    key: str  # "tiny" | "20b" | "120b"
    n_layer: int
    n_embd: int
    n_ff: int
    n_expert: int
    n_expert_used: int
    n_head: int
    n_head_kv: int
    head_dim: int = 64
    n_vocab: int = N_VOCAB
    context_length: int = 131072

    @property
    def gguf_tensor_count(self) -> int:
        """Tensors in a gpt-oss GGUF of this depth: 3 + 19 per block."""
        return 3 + 19 * self.n_layer


ARCHITECTURES: dict[str, Architecture] = {
    "tiny": Architecture("tiny", n_layer=2, n_embd=32, n_ff=32, n_expert=4, n_expert_used=2,
                         n_head=2, n_head_kv=1),
    "20b": Architecture("20b", n_layer=24, n_embd=2880, n_ff=2880, n_expert=32,
                        n_expert_used=4, n_head=64, n_head_kv=8),
    "120b": Architecture("120b", n_layer=36, n_embd=2880, n_ff=2880, n_expert=128,
                         n_expert_used=4, n_head=64, n_head_kv=8),
}
RELEASED = ("20b", "120b")  # the shapes with real weights; "tiny" exists for tests only
_NAME = re.compile(r"gpt[-_]?oss[-_:]?(20b|120b)\b")


def gpt_oss_shape(name: str, n_layer: int, n_expert: int, active_params: int) -> ModelShape:
    """The gpt-oss layout (20b and 120b differ only in depth and expert count)."""
    embd, vocab, ff, heads, heads_kv, head_dim, used = 2880, N_VOCAB, 2880, 64, 8, 64, 4
    q8 = Q8_0_BYTES_PER_VALUE
    token_embd = int(embd * vocab * q8)
    output = int(embd * vocab * q8)
    q_width, kv_width = heads * head_dim, heads_kv * head_dim
    attention = (
        int(embd * q_width * q8) + int(embd * kv_width * q8) * 2 + int(q_width * embd * q8)
        + (q_width + 2 * kv_width + embd) * F32_BYTES  # q/k/v/output biases
        + heads * F32_BYTES  # attention sinks
        + 2 * embd * F32_BYTES  # attn_norm, post_attention_norm
        + (embd * n_expert + n_expert) * F32_BYTES  # router weights + bias
    )
    experts = (
        3 * int(embd * ff * n_expert * MXFP4_BYTES_PER_VALUE)  # gate, up, down
        + (2 * ff * n_expert + embd * n_expert) * F32_BYTES  # their biases
    )
    weights = token_embd + output + embd * F32_BYTES + n_layer * (attention + experts)
    active = output + n_layer * (attention + experts * used // n_expert)
    return ModelShape(
        name=name, n_layer=n_layer, n_embd=embd, n_head=heads, n_head_kv=heads_kv,
        head_dim=head_dim, n_vocab=vocab, weights_bytes=weights, token_embd_bytes=token_embd,
        expert_bytes_per_layer=experts, active_bytes_per_token=active, n_expert=n_expert,
        n_expert_used=used, n_swa=128, n_swa_layers=n_layer // 2, n_ctx_train=131072,
        active_params=active_params,
    )


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model we can plan for: its shape and where its weights come from."""

    key: str  # "20b" | "120b"
    shape: ModelShape
    gguf_repo: str
    gguf_files: tuple[str, ...]
    mlx_repo: str


def _released_shape(key: str, active_params: int) -> ModelShape:
    arch = ARCHITECTURES[key]
    return gpt_oss_shape(f"gpt-oss-{key}", arch.n_layer, arch.n_expert, active_params)


GPT_OSS_20B = ModelEntry(
    key="20b",
    shape=_released_shape("20b", active_params=3_600_000_000),
    gguf_repo="ggml-org/gpt-oss-20b-GGUF",
    gguf_files=("gpt-oss-20b-mxfp4.gguf",),
    mlx_repo="mlx-community/gpt-oss-20b-MXFP4-Q8",
)
GPT_OSS_120B = ModelEntry(
    key="120b",
    shape=_released_shape("120b", active_params=5_100_000_000),
    gguf_repo="ggml-org/gpt-oss-120b-GGUF",
    gguf_files=tuple(f"gpt-oss-120b-mxfp4-0000{i}-of-00003.gguf" for i in (1, 2, 3)),
    mlx_repo="mlx-community/gpt-oss-120b-MXFP4-Q8",
)
CATALOG: tuple[ModelEntry, ...] = (GPT_OSS_20B, GPT_OSS_120B)
CONTEXT_CHOICES = (131072, 65536, 32768, 16384, 8192, 4096)


def entry(key: str) -> ModelEntry | None:
    """The catalogue entry of a released model ("20b", "120b"), else None."""
    return next((e for e in CATALOG if e.key == key), None)


def identify(n_layer: int | None, n_expert: int | None, synthetic: bool = False) -> str | None:
    """"20b"/"120b" for a gpt-oss of that depth and expert count (real or synthetic);
    "tiny" for the synthetic test shape; None for anything else."""
    for arch in ARCHITECTURES.values():
        if (arch.n_layer, arch.n_expert) == (n_layer, n_expert) \
                and (arch.key in RELEASED or synthetic):
            return arch.key
    return None


def identify_gguf(n_tensors: int, synthetic: bool = False) -> str | None:
    """The catalogue key of a gpt-oss GGUF from its tensor count (3 + 19 per block)."""
    for arch in ARCHITECTURES.values():
        if arch.gguf_tensor_count == n_tensors and (arch.key in RELEASED or synthetic):
            return arch.key
    return None


def match_name(name: str) -> str | None:
    """"20b"/"120b" when a served model's name says which gpt-oss it is, e.g.
    ``openai/gpt-oss-20b``, ``gpt-oss:120b``, ``ggml-org/gpt-oss-20b-GGUF``."""
    found = _NAME.search(name.lower())
    return found.group(1) if found else None
