"""What we know about the models: architecture shapes and where their files live.

Weight sizes are computed from the architecture and the tensor types of the ggml-org GGUF
release (experts MXFP4, other matrices Q8_0, vectors F32: DESIGN.md, "gpt-oss facts"),
so the estimator needs no download. Sizes are checked in tests against the published
file sizes (11.27 GiB / 59.02 GiB).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def gpt_oss_shape(name: str, n_layer: int, n_expert: int, active_params: int) -> ModelShape:
    """The gpt-oss layout (20b and 120b differ only in depth and expert count)."""
    embd, vocab, ff, heads, heads_kv, head_dim, used = 2880, 201088, 2880, 64, 8, 64, 4
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


GPT_OSS_20B = ModelEntry(
    key="20b",
    shape=gpt_oss_shape("gpt-oss-20b", n_layer=24, n_expert=32, active_params=3_600_000_000),
    gguf_repo="ggml-org/gpt-oss-20b-GGUF",
    gguf_files=("gpt-oss-20b-mxfp4.gguf",),
    mlx_repo="mlx-community/gpt-oss-20b-MXFP4-Q8",
)
GPT_OSS_120B = ModelEntry(
    key="120b",
    shape=gpt_oss_shape("gpt-oss-120b", n_layer=36, n_expert=128, active_params=5_100_000_000),
    gguf_repo="ggml-org/gpt-oss-120b-GGUF",
    gguf_files=tuple(f"gpt-oss-120b-mxfp4-0000{i}-of-00003.gguf" for i in (1, 2, 3)),
    mlx_repo="mlx-community/gpt-oss-120b-MXFP4-Q8",
)
CATALOG: tuple[ModelEntry, ...] = (GPT_OSS_20B, GPT_OSS_120B)
CONTEXT_CHOICES = (131072, 65536, 32768, 16384, 8192, 4096)
