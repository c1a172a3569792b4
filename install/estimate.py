"""Memory-fit estimator: the buffers llama.cpp allocates for a model and its settings.

It models the buffers llama.cpp reports when it loads (``model buffer size``, ``KV buffer
size``, ``compute buffer size``) rather than "params x bits":

- KV cache (f16 by default): full-attention layers hold ``n_ctx`` cells; sliding-window
  layers hold ``pad(n_swa + n_ubatch, 256)`` cells unless ``swa_full`` (llama.cpp's
  ``llama_kv_cache_iswa``; 768 cells for gpt-oss with ubatch 512, measured — docs/design.md,
  "KV cache and sliding window").
  llama-cpp-python defaults to a full-size SWA cache, which doubles gpt-oss's KV.
- Compute buffer with flash attention: dominated by the logits of one ubatch
  (4 bytes x n_vocab x n_ubatch); the rest of the graph adds about 6% (measured against
  llama.cpp's figures: gpt-oss 414/410 MiB, SmolLM2 102.5/49.1 MiB).
- Without flash attention the KQ matrix and the f32 masks (one per attention kind) are
  materialised: 4 x n_ctx x n_ubatch x (n_head + n_masks) bytes, plus about 8% of the
  logits (gpt-oss: 566 MiB at 4096, 16933 MiB at 131072; SmolLM2: 166.4 MiB at 8192).
- On the CPU backend with mmap, llama.cpp repacks the weights into a second copy, so both
  count; the plan therefore loads without mmap there.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptoss_doctor.catalog import ModelShape

GIB = 1024**3
MIB = 1024**2
KV_CELL_PADDING = 256
# Everything a running engine holds besides its buffers: the CUDA/Metal context, the
# Python process, tokenizer tables (docs/design.md, "Memory totals and margins": about 0.5 GiB).
RUNTIME_OVERHEAD_BYTES = GIB // 2
COMPUTE_GRAPH_FACTOR = 1.06
NO_FLASH_BASE_FACTOR = 0.08


@dataclass(frozen=True, slots=True)
class MemorySettings:
    """The settings that change memory use, named like llama-cpp-python's ``Llama()``."""

    n_ctx: int
    n_ubatch: int = 512
    flash_attn: bool = True
    swa_full: bool = False
    kv_bytes_per_value: int = 2  # f16; q8_0 would be 34/32
    use_mmap: bool = False
    repack: bool = False  # CPU backend repacks weights (an extra copy when mmap is on)


@dataclass(frozen=True, slots=True)
class KvEstimate:
    full_bytes: int
    swa_bytes: int
    swa_cells: int

    @property
    def total_bytes(self) -> int:
        return self.full_bytes + self.swa_bytes


def _pad(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def kv_cache(shape: ModelShape, settings: MemorySettings) -> KvEstimate:
    """KV buffer of full-attention layers and of sliding-window layers."""
    per_cell_layer = 2 * shape.kv_embd * settings.kv_bytes_per_value  # K and V
    full = shape.n_full_layers * settings.n_ctx * per_cell_layer
    if shape.n_swa_layers == 0:
        return KvEstimate(int(full), 0, 0)
    cells = settings.n_ctx if settings.swa_full else min(
        settings.n_ctx, _pad(shape.n_swa + settings.n_ubatch, KV_CELL_PADDING))
    return KvEstimate(int(full), int(shape.n_swa_layers * cells * per_cell_layer), cells)


def compute_buffer(shape: ModelShape, settings: MemorySettings) -> int:
    """The compute (graph) buffer llama.cpp reserves for one ubatch."""
    logits = 4 * shape.n_vocab * settings.n_ubatch
    with_flash = int(logits * COMPUTE_GRAPH_FACTOR)
    if settings.flash_attn:
        return with_flash
    masks = 2 if shape.n_swa_layers else 1
    kq = 4 * settings.n_ctx * settings.n_ubatch * (shape.n_head + masks)
    return max(with_flash, kq + int(logits * NO_FLASH_BASE_FACTOR))


def output_buffer(shape: ModelShape) -> int:
    """Logits of the last token, kept on the host."""
    return 4 * shape.n_vocab


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Bytes needed on the accelerator and in host RAM for one placement."""

    gpu_weights_bytes: int
    cpu_weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    overhead_bytes: int
    on_gpu: bool

    @property
    def gpu_total_bytes(self) -> int:
        if not self.on_gpu:
            return 0
        return self.gpu_weights_bytes + self.kv_bytes + self.compute_bytes

    @property
    def cpu_total_bytes(self) -> int:
        cpu = self.cpu_weights_bytes + self.overhead_bytes
        if not self.on_gpu:
            cpu += self.kv_bytes + self.compute_bytes
        return cpu

    @property
    def total_bytes(self) -> int:
        return self.gpu_total_bytes + self.cpu_total_bytes


def estimate(shape: ModelShape, settings: MemorySettings, *, on_gpu: bool,
             n_cpu_moe: int = 0) -> MemoryEstimate:
    """Memory for ``shape`` loaded with ``settings``.

    ``on_gpu``: every layer offloaded (KV and compute on the GPU); ``n_cpu_moe`` then keeps
    the expert tensors of that many layers in host RAM (llama.cpp ``--n-cpu-moe``).
    """
    kv = kv_cache(shape, settings).total_bytes
    compute = compute_buffer(shape, settings) + output_buffer(shape)
    if not on_gpu:
        weights = shape.weights_bytes
        if settings.use_mmap and settings.repack:
            weights += shape.n_layer * shape.expert_bytes_per_layer  # the repacked copy
        return MemoryEstimate(0, weights, kv, compute, RUNTIME_OVERHEAD_BYTES, on_gpu=False)
    cpu_experts = min(n_cpu_moe, shape.n_layer) * shape.expert_bytes_per_layer
    gpu_weights = shape.weights_bytes - shape.token_embd_bytes - cpu_experts
    return MemoryEstimate(gpu_weights, shape.token_embd_bytes + cpu_experts, kv, compute,
                          RUNTIME_OVERHEAD_BYTES, on_gpu=True)
