"""Parsing llama.cpp's load log (lines recorded from llama-cpp-python 0.3.36 loading SmolLM2)."""

from __future__ import annotations

from gptoss_doctor.bench.llama_log import parse_load_log, parse_overrides

RECORDED = """\
load_tensors:   CPU_Mapped model buffer size =    92.10 MiB
llama_context:        CPU  output buffer size =     0.19 MiB
llama_kv_cache:        CPU KV buffer size =    45.00 MiB
llama_kv_cache: size =   45.00 MiB (  2048 cells,  30 layers,  1/1 seqs), K (f16):   22.50 MiB
sched_reserve:        CPU compute buffer size =   102.51 MiB
"""


def test_buffer_sizes_are_summed_by_kind() -> None:
    buffers = parse_load_log(RECORDED)
    assert buffers.model_mib == 92.10
    assert buffers.kv_mib == 45.00  # the "size = ... cells" summary line is not double-counted
    assert buffers.compute_mib == 102.51
    assert buffers.output_mib == 0.19
    assert buffers.by_buffer["model:CPU_Mapped"] == 92.10


def test_several_devices_add_up() -> None:
    text = ("load_tensors:        CUDA0 model buffer size = 10000.00 MiB\n"
            "load_tensors:   CPU_Mapped model buffer size =  1536.00 MiB\n")
    buffers = parse_load_log(text)
    assert buffers.model_mib == 11536.00
    assert set(buffers.by_buffer) == {"model:CUDA0", "model:CPU_Mapped"}


def test_unrelated_text_gives_zeros() -> None:
    assert parse_load_log("hello\n").model_mib == 0.0


def test_override_lines_name_tensor_and_buffer_type() -> None:
    # recorded from llama-cpp-python 0.3.36 loading the tiny synthetic gpt-oss, n_cpu_moe=1
    text = ("tensor blk.0.ffn_gate_exps.weight (0 MiB mxfp4) buffer type overridden to "
            "CPU_REPACK\ntensor blk.0.ffn_gate_exps.bias (0 MiB f32) buffer type overridden "
            "to CPU\nllama_model_loader: tensor overrides to CPU are used with mmap enabled\n")
    assert parse_overrides(text) == {"blk.0.ffn_gate_exps.weight": "CPU_REPACK",
                                     "blk.0.ffn_gate_exps.bias": "CPU"}
