"""Synthetic gpt-oss GGUFs: the real architecture and tokenizer with random weights.

Mixture-of-experts speed does not depend on weight values, so a file of the real 20b or 120b
shape runs at the real speed before anyone downloads 12 or 63 GB. Layout, metadata and
tensor types follow the ggml-org release (docs/design.md, "Synthetic GGUF"): experts MXFP4,
other matrices Q8_0, vectors F32; 3 + 19 x n_layer tensors. Files are marked synthetic in
their metadata (``gptoss_doctor.synthetic``) so no report can pass them off as real weights.

Writing streams tensor by tensor in bounded chunks (never the model in RAM), into a
temporary name that is renamed only when complete; the same seed gives the same bytes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gptoss_doctor.bench import vocab
from gptoss_doctor.catalog import ARCHITECTURES, Architecture
from gptoss_doctor.errors import DoctorError, UsageError

SYNTHETIC_KEY = "gptoss_doctor.synthetic"
CHUNK_BLOCKS = 1 << 20  # blocks of 32 values generated at a time (17-34 MiB)
# 2^-6: random nibbles stay finite through the layers (docs/design.md, "Synthetic GGUF")
MXFP4_SCALE_BYTE = 121
Q8_0_SCALE = 0.002
DISK_MARGIN_BYTES = 256 * 1024**2
TYPE_BYTES_PER_BLOCK = {"Q8_0": 34, "MXFP4": 17}


class SynthError(DoctorError):
    """The synthetic model could not be written."""


SynthShape = Architecture  # a synthetic file is written from the catalogue's shape
SHAPES = ARCHITECTURES


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One tensor: GGUF dims (ne0 first), GGML type and how its values are drawn."""

    name: str
    dims: tuple[int, ...]
    ggml_type: str  # "F32" | "Q8_0" | "MXFP4"
    fill: str  # "ones" | "zeros" | "normal" | "random"

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.dims:
            count *= dim
        return count

    @property
    def n_bytes(self) -> int:
        if self.ggml_type == "F32":
            return 4 * self.n_elements
        return self.n_elements // 32 * TYPE_BYTES_PER_BLOCK[self.ggml_type]


def tensor_specs(shape: SynthShape) -> tuple[TensorSpec, ...]:
    """Every tensor in file order, as llama.cpp's gpt-oss loader expects them (pure)."""
    e, f, x, v = shape.n_embd, shape.n_ff, shape.n_expert, shape.n_vocab
    q, kv = shape.n_head * shape.head_dim, shape.n_head_kv * shape.head_dim
    specs = [TensorSpec("token_embd.weight", (e, v), "Q8_0", "random"),
             TensorSpec("output_norm.weight", (e,), "F32", "ones"),
             TensorSpec("output.weight", (e, v), "Q8_0", "random")]
    for i in range(shape.n_layer):
        b = f"blk.{i}"
        specs += [
            TensorSpec(f"{b}.attn_norm.weight", (e,), "F32", "ones"),
            TensorSpec(f"{b}.post_attention_norm.weight", (e,), "F32", "ones"),
            TensorSpec(f"{b}.attn_q.weight", (e, q), "Q8_0", "random"),
            TensorSpec(f"{b}.attn_q.bias", (q,), "F32", "zeros"),
            TensorSpec(f"{b}.attn_k.weight", (e, kv), "Q8_0", "random"),
            TensorSpec(f"{b}.attn_k.bias", (kv,), "F32", "zeros"),
            TensorSpec(f"{b}.attn_v.weight", (e, kv), "Q8_0", "random"),
            TensorSpec(f"{b}.attn_v.bias", (kv,), "F32", "zeros"),
            TensorSpec(f"{b}.attn_output.weight", (q, e), "Q8_0", "random"),
            TensorSpec(f"{b}.attn_output.bias", (e,), "F32", "zeros"),
            TensorSpec(f"{b}.attn_sinks.weight", (shape.n_head,), "F32", "zeros"),
            TensorSpec(f"{b}.ffn_gate_inp.weight", (e, x), "F32", "normal"),
            TensorSpec(f"{b}.ffn_gate_inp.bias", (x,), "F32", "zeros"),
            TensorSpec(f"{b}.ffn_gate_exps.weight", (e, f, x), "MXFP4", "random"),
            TensorSpec(f"{b}.ffn_gate_exps.bias", (f, x), "F32", "zeros"),
            TensorSpec(f"{b}.ffn_up_exps.weight", (e, f, x), "MXFP4", "random"),
            TensorSpec(f"{b}.ffn_up_exps.bias", (f, x), "F32", "zeros"),
            TensorSpec(f"{b}.ffn_down_exps.weight", (f, e, x), "MXFP4", "random"),
            TensorSpec(f"{b}.ffn_down_exps.bias", (e, x), "F32", "zeros"),
        ]
    return tuple(specs)


def weights_bytes(shape: SynthShape) -> int:
    return sum(spec.n_bytes for spec in tensor_specs(shape))


# Our own compact harmony template (system header, developer instructions, turns). The
# benchmarks render prompts with openai-harmony; this one serves chat through llama.cpp.
CHAT_TEMPLATE = (
    "{%- set effort = reasoning_effort | default('medium') -%}"
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\n\nReasoning: {{ effort }}\n\n"
    "# Valid channels: analysis, commentary, final. "
    "Channel must be included for every message.<|end|>"
    "{%- for m in messages -%}"
    "{%- if m.role in ('system', 'developer') -%}"
    "<|start|>developer<|message|># Instructions\n\n{{ m.content }}<|end|>"
    "{%- elif m.role == 'user' -%}<|start|>user<|message|>{{ m.content }}<|end|>"
    "{%- elif m.role == 'assistant' -%}"
    "<|start|>assistant<|channel|>final<|message|>{{ m.content }}<|end|>"
    "{%- elif m.role == 'tool' -%}"
    "<|start|>functions.{{ m.name }} to=assistant<|channel|>commentary<|message|>"
    "{{ m.content }}<|end|>"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"
)


def _chunks(spec: TensorSpec, rng: object) -> Iterator[bytes]:
    import numpy as np

    generator: np.random.Generator = rng  # type: ignore[assignment]
    if spec.ggml_type == "F32":
        remaining = spec.n_elements
        while remaining:
            count = min(remaining, CHUNK_BLOCKS * 8)
            if spec.fill == "ones":
                values = np.ones(count, dtype=np.float32)
            elif spec.fill == "zeros":
                values = np.zeros(count, dtype=np.float32)
            else:
                values = generator.normal(0.0, 0.02, count).astype(np.float32)
            yield values.tobytes()
            remaining -= count
        return
    blocks_left = spec.n_elements // 32
    width = TYPE_BYTES_PER_BLOCK[spec.ggml_type]
    while blocks_left:
        count = min(blocks_left, CHUNK_BLOCKS)
        blocks = generator.integers(0, 256, size=(count, width), dtype=np.uint8)
        if spec.ggml_type == "MXFP4":
            blocks[:, 0] = MXFP4_SCALE_BYTE
        else:  # Q8_0: fp16 scale, then 32 int8 quants (any byte is a valid int8)
            blocks[:, 0:2] = np.frombuffer(np.float16(Q8_0_SCALE).tobytes(), dtype=np.uint8)
        yield blocks.tobytes()
        blocks_left -= count


def _metadata(writer: object, shape: SynthShape, seed: int) -> None:
    import gguf

    w: gguf.GGUFWriter = writer  # type: ignore[assignment]
    w.add_name(f"gpt-oss-{shape.key} (synthetic random weights)")
    w.add_description("Random weights in the gpt-oss architecture, written by gptoss-doctor "
                      "for speed measurements. Not a real model: its output is noise.")
    w.add_bool(SYNTHETIC_KEY, True)
    w.add_string("gptoss_doctor.shape", shape.key)
    w.add_uint64("gptoss_doctor.seed", seed)
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_MXFP4_MOE))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(shape.context_length)
    w.add_embedding_length(shape.n_embd)
    w.add_block_count(shape.n_layer)
    w.add_expert_feed_forward_length(shape.n_ff)
    w.add_expert_count(shape.n_expert)
    w.add_expert_used_count(shape.n_expert_used)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_key_length(shape.head_dim)
    w.add_value_length(shape.head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_sliding_window(128)
    w.add_rope_freq_base(150000.0)
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(32.0)
    w.add_rope_scaling_orig_ctx_len(4096)
    tokenizer = vocab.harmony_gguf_vocab()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-4o")
    w.add_token_list(list(tokenizer.tokens))
    w.add_token_types(list(tokenizer.token_types))
    w.add_token_merges(list(tokenizer.merges))
    w.add_bos_token_id(199998)
    w.add_eos_token_id(vocab.RETURN_ID)
    w.add_pad_token_id(199999)
    w.add_chat_template(CHAT_TEMPLATE)


def _pad(handle: IO[bytes], alignment: int = 32) -> None:
    extra = -handle.tell() % alignment
    if extra:
        handle.write(b"\0" * extra)


def free_disk_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def check_disk(folder: Path, needed: int,
               free_bytes: Callable[[Path], int] = free_disk_bytes) -> None:
    """Refuse to start when ``folder`` cannot hold ``needed`` bytes."""
    free = free_bytes(folder)
    if free < needed + DISK_MARGIN_BYTES:
        raise SynthError(f"not enough disk space in {folder}: {needed / 1024**3:.2f} GiB "
                         f"needed, {free / 1024**3:.2f} GiB free",
                         "choose another folder with -o")


@dataclass(frozen=True, slots=True)
class SynthResult:
    path: Path
    shape: str
    seed: int
    size_bytes: int
    n_tensors: int


def write_synthetic(shape_key: str, output: Path, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None,
                    free_bytes: Callable[[Path], int] = free_disk_bytes) -> SynthResult:
    """Write a synthetic gpt-oss GGUF to ``output``; ``progress(done, total)`` in bytes."""
    import gguf
    import numpy as np

    if shape_key not in SHAPES:
        raise UsageError(f"unknown shape {shape_key!r}; choose one of {', '.join(SHAPES)}")
    shape = SHAPES[shape_key]
    output = output.resolve()
    if not output.parent.is_dir():
        raise UsageError(f"folder {output.parent} does not exist")
    specs = tensor_specs(shape)
    check_disk(output.parent, sum(spec.n_bytes for spec in specs), free_bytes)
    partial = output.with_name(f".{output.name}.partial")
    writer: gguf.GGUFWriter | None = None
    try:
        writer = gguf.GGUFWriter(str(partial), "gpt-oss")
        _header(writer, shape, seed, specs)
        assert writer.fout is not None
        handle: IO[bytes] = writer.fout[0]
        _tensors(handle, writer.data_alignment, specs, np.random.default_rng(seed), progress)
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        writer.fout = None
        partial.replace(output)
    except BaseException as exc:
        for open_handle in (writer.fout or []) if writer is not None else []:
            open_handle.close()
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, DoctorError):
            raise SynthError(f"cannot write {output}: {exc.strerror or exc}") from exc
        raise
    return SynthResult(output, shape_key, seed, output.stat().st_size, len(specs))


def _header(writer: Any, shape: SynthShape, seed: int, specs: tuple[TensorSpec, ...]) -> None:
    """The metadata and every tensor's description (quantized ones by their byte shape)."""
    import gguf
    import numpy as np

    _metadata(writer, shape, seed)
    for spec in specs:
        numpy_shape = tuple(reversed(spec.dims))
        if spec.ggml_type == "F32":
            writer.add_tensor_info(spec.name, numpy_shape, np.dtype(np.float32), spec.n_bytes)
        else:
            byte_shape = (*numpy_shape[:-1], numpy_shape[-1] // 32
                          * TYPE_BYTES_PER_BLOCK[spec.ggml_type])
            writer.add_tensor_info(spec.name, byte_shape, np.dtype(np.uint8), spec.n_bytes,
                                   raw_dtype=gguf.GGMLQuantizationType[spec.ggml_type])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()


def _tensors(handle: IO[bytes], alignment: int, specs: tuple[TensorSpec, ...], rng: object,
             progress: Callable[[int, int], None] | None) -> None:
    """Every tensor's data, each aligned, reporting bytes written."""
    total = sum(spec.n_bytes for spec in specs)
    done = 0
    for spec in specs:
        _pad(handle, alignment)
        for chunk in _chunks(spec, rng):
            handle.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    _pad(handle, alignment)
