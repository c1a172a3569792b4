"""MLX model folders, the CPU dtype rule and Metal's working set — no mlx needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.bench import mlx_engine

from conftest import FIXTURES

DEVICES: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "mlx" / "device_info.json").read_text())
GPT_OSS_20B_MLX_BYTES = 12_080_000_000  # mlx-community/gpt-oss-20b-MXFP4-Q8, about 11.25 GiB


def _folder(root: Path, config: dict[str, Any] | None = None, *, weights: bool = True,
            tokenizer: bool = True) -> Path:
    root.mkdir()
    if config is not None:
        (root / "config.json").write_text(json.dumps(config))
    if weights:
        (root / "model.safetensors").write_bytes(b"\0" * 64)
    if tokenizer:
        (root / "tokenizer.json").write_text("{}")
    return root


GPT_OSS = {"model_type": "gpt_oss", "num_hidden_layers": 24, "num_local_experts": 32,
           "quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}}


def test_folder_facts(tmp_path: Path) -> None:
    info = mlx_engine.read_model_dir(_folder(tmp_path / "gpt-oss-20b-MXFP4-Q8", GPT_OSS))
    assert (info.architecture, info.is_gpt_oss, info.n_layers, info.n_experts) == (
        "gpt_oss", True, 24, 32)
    assert info.quantization == "mxfp4 4-bit, group 32" and info.size_bytes == 64
    assert not info.synthetic and info.file_name == "gpt-oss-20b-MXFP4-Q8"


@pytest.mark.parametrize(("make", "message"), [
    pytest.param(lambda p: p.write_text("x"), "is not an MLX model folder", id="a file"),
    pytest.param(lambda p: _folder(p, None), "no config.json", id="no config"),
    pytest.param(lambda p: (_folder(p, None), (p / "config.json").write_text("{oops")),
                 "config.json is not JSON", id="config that is not JSON"),
    pytest.param(lambda p: _folder(p, {"vocab_size": 3}), "names no model_type",
                 id="config without a model type"),
    pytest.param(lambda p: _folder(p, GPT_OSS, weights=False), "has no weights",
                 id="no safetensors"),
    pytest.param(lambda p: _folder(p, GPT_OSS, tokenizer=False), "has no tokenizer",
                 id="a missing tokenizer"),
])
def test_bad_folders_fail_in_one_line(tmp_path: Path, make: Any, message: str) -> None:
    target = tmp_path / "model"
    make(target)
    with pytest.raises(mlx_engine.MlxError) as caught:
        mlx_engine.read_model_dir(target)
    assert message in caught.value.message and "\n" not in caught.value.message


@pytest.mark.parametrize(("config", "on_gpu", "problem"), [
    pytest.param({**GPT_OSS, "quantization": None, "torch_dtype": "bfloat16"}, False, True,
                 id="unquantized bf16 experts on a CPU"),
    pytest.param({**GPT_OSS, "quantization": None, "torch_dtype": "bfloat16"}, True, False,
                 id="the same on Metal"),
    pytest.param({**GPT_OSS, "quantization": None, "torch_dtype": "float32"}, False, False,
                 id="float32 experts on a CPU"),
    pytest.param(GPT_OSS, False, False, id="mxfp4 experts on a CPU"),
])
def test_cpu_dtype_rule(tmp_path: Path, config: dict[str, Any], on_gpu: bool,
                        problem: bool) -> None:
    info = mlx_engine.read_model_dir(_folder(tmp_path / "m", config))
    found = mlx_engine.cpu_problem(info, on_gpu)
    assert (found is not None) == problem
    if found:
        assert "GatherMM" in found and "bfloat16" in found


@pytest.mark.parametrize(("device", "working_set"), [
    ("linux-cpu", None), ("m2-ultra-192gb", 188743680000), ("m5-max-128gb", 115448725504),
    ("m1-16gb", 11453251584)])
def test_working_set_is_read_with_get(device: str, working_set: int | None) -> None:
    assert mlx_engine.working_set_bytes(DEVICES[device]) == working_set


def test_wired_limit_follows_mlx_lm() -> None:
    # Linux: no Metal, nothing to wire
    assert mlx_engine.wired_limit_plan(DEVICES["linux-cpu"], GPT_OSS_20B_MLX_BYTES) == (
        None, None)
    # a 128 GB Mac wires up to its working set; 20b is far below it
    assert mlx_engine.wired_limit_plan(DEVICES["m5-max-128gb"], GPT_OSS_20B_MLX_BYTES) == (
        115448725504, None)
    # a 16 GB Mac: 20b in MLX is above 90 % of the 10.7 GiB working set
    # (docs/design.md, "Apple working set")
    limit, warning = mlx_engine.wired_limit_plan(DEVICES["m1-16gb"], GPT_OSS_20B_MLX_BYTES)
    assert limit == 11453251584
    assert warning is not None and "11520 MiB" in warning and "10922 MiB" in warning


def test_the_wired_limit_is_set_on_metal_and_left_alone_elsewhere() -> None:
    calls: list[int] = []

    def set_limit(limit: int) -> int:
        calls.append(limit)
        return 0  # mlx returns the previous limit

    mac = mlx_engine.apply_wired_limit(DEVICES["m5-max-128gb"], GPT_OSS_20B_MLX_BYTES, True,
                                       set_limit)
    assert mac == (115448725504, None, 0) and calls == [115448725504]
    linux = mlx_engine.apply_wired_limit(DEVICES["linux-cpu"], GPT_OSS_20B_MLX_BYTES, False,
                                         set_limit)
    assert linux == (None, None, None) and calls == [115448725504]



def test_a_folder_given_to_the_llama_engine_says_what_it_is(tmp_path: Path) -> None:
    from gptoss_doctor.bench import gguf_info

    folder = _folder(tmp_path / "gpt-oss-20b-MXFP4-Q8", GPT_OSS)
    with pytest.raises(gguf_info.ModelFileError) as caught:
        gguf_info.read_info(folder)
    assert caught.value.message == f"{folder} is a folder, not a GGUF file"
    assert "--engine mlx" in (caught.value.hint or "")
