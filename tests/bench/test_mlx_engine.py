"""The MLX engine for real, on mlx's Linux CPU backend, with the tiny synthetic MLX gpt-oss."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gptoss_doctor.bench import (
    grade,
    harmony,
    mlx_engine,
    results,
    tool_run,
    tool_suite,
    vocab,
)

from conftest import quiet_file
from forced import run_kv_to_file

pytestmark = pytest.mark.mlx

CALL = ("<|channel|>commentary to=functions.get_weather <|constrain|>json"
        '<|message|>{"city": "Paris"}<|call|>')


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(mlx_engine.write_synthetic(tmp_path_factory.mktemp("mlx") / "tiny").path)


@pytest.fixture(scope="module")
def engine(tiny: Path) -> Any:
    loaded = mlx_engine.MlxEngine(tiny, n_ctx=4096)
    yield loaded
    loaded.close()


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", *args],
                          capture_output=True, text=True, timeout=900, check=False)


def test_the_synthetic_folder_is_marked_and_tokenizes_like_o200k(tiny: Path) -> None:
    info = mlx_engine.read_model_dir(tiny)
    assert info.synthetic and info.is_gpt_oss and info.quantization == "mxfp4 4-bit, group 32"
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    prompt = harmony.chat_prompt()
    assert tokenizer.encode(harmony.decode(prompt)).ids == prompt


def test_the_engine_runs_on_the_cpu_without_metal(engine: Any) -> None:
    assert engine.on_gpu is False and engine.wired_limit_bytes is None
    assert engine.device_info.get(mlx_engine.WORKING_SET_KEY) is None  # Linux: no such key
    assert engine.n_vocab == vocab.N_VOCAB


def test_decode_in_prefill_steps_gives_the_same_logits(tiny: Path, engine: Any) -> None:
    prompt = harmony.chat_prompt()
    engine.reset()
    engine.decode(prompt)
    whole = engine.logits()
    stepped = mlx_engine.MlxEngine(tiny, n_ctx=4096, prefill_step_size=16)
    try:
        stepped.decode(prompt)
        assert np.allclose(stepped.logits(), whole, atol=1e-3)
        assert stepped.argmax_next() == int(np.argmax(whole))
    finally:
        stepped.close()


def test_a_logits_processor_forces_a_tool_call_through_stream_generate(engine: Any) -> None:
    suite = tool_suite.load_suite()
    case = tool_suite.case_by_id(suite, "simple-weather-paris")
    assert case is not None
    prompt = harmony.tool_prompt(suite.instructions, [t.for_prompt() for t in case.tools],
                                 case.prompt)
    script = harmony.encode(CALL)

    def force(tokens: Any, logits: Any) -> Any:
        import mlx.core as mx

        index = len(tokens) - len(prompt)  # tokens: the prompt and what was generated
        if index >= len(script):  # mlx-lm computes one step ahead of what it yields
            return logits
        boost = mx.zeros_like(logits)
        boost[..., script[index]] = 1e4
        return logits + boost

    streamed = engine.stream(prompt, 64, logits_processors=[force])
    # it stopped on <|call|>, which mlx-lm would not do by itself
    assert streamed.tokens == tuple(script) and streamed.stopped_on == "<|call|>"
    assert streamed.prompt_tps > 0 and streamed.generation_tps > 0
    assert streamed.peak_memory_bytes > 0
    verdict = grade.grade(case, grade.Transcript((streamed.tokens,), "call"))
    assert verdict.passed and verdict.strict_passed, verdict


def test_a_forced_act_loop_through_the_mlx_engine(engine: Any) -> None:
    run_kv_to_file(engine)


class Recording:
    """An engine wrapper that keeps the first tokens each attempt decodes: the prompt."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.n_ctx, self.prompts = engine, engine.n_ctx, []

    def reset(self) -> None:
        self.engine.reset()
        self.prompts.append(None)

    def decode(self, tokens: Any) -> None:
        if self.prompts[-1] is None:
            self.prompts[-1] = list(tokens)
        self.engine.decode(tokens)

    def logits(self) -> Any:
        return self.engine.logits()


@pytest.mark.llama
def test_both_engines_get_the_same_token_ids_for_every_case(engine: Any,
                                                            tmp_path: Path) -> None:
    from gptoss_doctor.bench import synth
    from gptoss_doctor.bench.llama_engine import LlamaEngine
    from gptoss_doctor.load_settings import LoadSettings

    suite = tool_suite.load_suite()
    settings = tool_run.RunSettings(max_tokens=1, sampling=tool_run.Sampling(temperature=0))
    gguf = synth.write_synthetic("tiny", tmp_path / "tiny.gguf").path
    llama = LlamaEngine(gguf, LoadSettings(n_ctx=4096, n_threads=2))
    try:
        seen = []
        for real in (engine, llama):
            recorder = Recording(real)
            for case in suite.cases:
                tool_run.run_attempt(recorder, suite, case, settings, 0)
            seen.append([p for p in recorder.prompts if p is not None])
    finally:
        llama.close()
    assert len(seen[0]) == len(suite.cases) and seen[0] == seen[1]


@pytest.mark.llama
def test_speed_and_tools_on_mlx_then_a_report_beside_llama_cpp(tmp_path: Path) -> None:
    mlx_speed, mlx_tools = tmp_path / "mlx-speed.json", tmp_path / "mlx-tools.json"
    done = bench("speed", "--synthetic", "tiny", "--engine", "mlx", "--tests", "pp64,tg16",
                 "--reps", "2", "-o", str(mlx_speed))
    assert done.returncode == 0, done.stderr
    record = results.load(mlx_speed)
    assert record["config"]["engine"] == "mlx" and record["config"]["device"] == "cpu"
    assert record["config"]["prefill_step_size"] == mlx_engine.PREFILL_STEP
    assert [t["name"] for t in record["tests"]] == ["pp64", "tg16"]
    assert all(t["status"] == "ok" and len(t["samples_ts"]) == 2 for t in record["tests"])
    assert record["chat"]["status"] == "ok"
    assert record["chat"]["engine_reported"]["by"] == "mlx_lm.stream_generate"
    assert record["model"]["synthetic"] and record["key_properties"]["model"] == "gpt-oss-tiny"
    assert record["memory"]["mlx_peak_memory_bytes"] > 0

    done = bench("tools", "--synthetic", "tiny", "--engine", "mlx", "--max-tokens", "16",
                 "-o", str(mlx_tools))
    assert done.returncode == 0, done.stderr
    tools = results.load(mlx_tools)
    assert len(tools["attempts"]) == len(tool_suite.load_suite().cases)
    assert tools["config"]["renderer"] == "openai-harmony"

    llama_speed = tmp_path / "llama-speed.json"
    done = bench("speed", "--synthetic", "tiny", "--tests", "pp64,tg16", "--reps", "2",
                 "-o", str(llama_speed))
    assert done.returncode == 0, done.stderr
    page = tmp_path / "report.html"
    files = [str(quiet_file(p)) for p in (llama_speed, mlx_speed, mlx_tools)]
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "report", *files,
                           "-o", str(page)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert "Differences within this table — engine: llama.cpp, mlx" in html
    assert "the Linux CPU testing path" in html
    assert "gptoss-doctor bench speed --synthetic tiny --engine mlx --tests pp64,tg16" in html
    assert "Not comparable" not in html.split("Tool-use comparison")[0]


@pytest.mark.parametrize(("weights", "error"), [
    pytest.param("bfloat16", "runs such experts only in float32", id="bf16 MoE on a CPU"),
])
def test_a_model_mlx_cannot_run_here_is_one_line(tmp_path: Path, weights: str,
                                                  error: str) -> None:
    folder = tmp_path / "bf16"
    mlx_engine.write_synthetic(folder, weights=weights)
    done = bench("speed", "--model", str(folder), "--tests", "pp16", "--reps", "1",
                 "-o", str(tmp_path / "x.json"))
    assert done.returncode == 1
    assert error in done.stderr and "Traceback" not in done.stderr
    assert "GatherMM::eval" not in done.stderr.replace("[GatherMM]", "")
    assert not (tmp_path / "x.json").exists()


def test_folders_that_are_not_models_fail_before_loading(tmp_path: Path, tiny: Path) -> None:
    broken = tmp_path / "no-tokenizer"
    broken.mkdir()
    for name in ("config.json", "model.safetensors"):
        (broken / name).write_bytes((tiny / name).read_bytes())
    done = bench("tools", "--model", str(broken), "-o", str(tmp_path / "x.json"))
    assert done.returncode == 1 and "has no tokenizer (tokenizer.json)" in done.stderr
    done = bench("speed", "--model", str(tmp_path), "-o", str(tmp_path / "x.json"))
    assert done.returncode == 1 and "no config.json" in done.stderr


def test_synth_writes_mlx_folders(tmp_path: Path) -> None:
    for weights, quantization in (("mxfp4", "mxfp4 4-bit, group 32"), ("float32", None)):
        target = tmp_path / weights
        done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "synth", "tiny", "--mlx",
                               weights, "-o", str(target), "--json"], capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        info = mlx_engine.read_model_dir(target)
        assert info.synthetic and info.quantization == quantization
        assert info.dtype == (None if quantization else "float32")
    again = subprocess.run([sys.executable, "-m", "gptoss_doctor", "synth", "tiny", "--mlx",
                            "mxfp4", "-o", str(tmp_path / "mxfp4")], capture_output=True,
                           text=True, timeout=300, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
