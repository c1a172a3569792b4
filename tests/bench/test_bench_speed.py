"""`gptoss-doctor bench speed` end to end on real models, and its bad input.

Bad files and usage errors stop before any engine loads: they are not marked ``llama``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from gptoss_doctor.bench import gguf_info, results, synth


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "speed", *args],
                          capture_output=True, text=True, timeout=600, check=False)


def _check_tests(record: dict[str, object], reps: int) -> None:
    for test in record["tests"]:  # type: ignore[attr-defined]
        assert test["status"] == "ok"
        assert len(test["samples_ts"]) == reps == len(test["durations_s"])
        assert test["mean_ts"] == pytest.approx(statistics.mean(test["samples_ts"]))
        assert test["stddev_ts"] == pytest.approx(statistics.stdev(test["samples_ts"]))
        for rate, seconds in zip(test["samples_ts"], test["durations_s"], strict=True):
            assert rate == pytest.approx(test["n_tokens"] / seconds)


@pytest.mark.llama
def test_synthetic_tiny_gpt_oss_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    done = bench("--synthetic", "tiny", "--reps", "2", "--tests", "pp64,tg8", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "pp64" in done.stdout and "tg8" in done.stdout and "TTFT" in done.stdout
    record = results.load(out)
    jsonschema.validate(record, results.schema())
    assert record["status"] == "complete" and record["model"]["synthetic"] is True
    assert record["model"]["architecture"] == "gpt-oss" and len(record["model"]["sha256"]) == 64
    assert [t["name"] for t in record["tests"]] == ["pp64", "tg8"]
    _check_tests(record, reps=2)
    chat = record["chat"]
    assert chat["status"] == "ok" and chat["prompt_tokens"] > 50
    assert len(chat["ttft_s"]) == 3 and all(t > 0 for t in chat["ttft_s"])
    assert record["load_buffers"]["kv_mib"] > 0 and record["load_buffers"]["compute_mib"] > 0
    assert record["memory"]["peak_rss_bytes"] > 10 * 1024**2
    if record["machine"]["gpus"] == []:
        assert record["memory"]["gpu_used_by_model_bytes"] is None
        assert record["memory"]["gpu_note"]
    assert "tg8" in record["roofline"]["tg_percent_of_ceiling"]
    assert record["key_properties"]["model_sha256"] == record["model"]["sha256"]
    assert record["key_properties"]["tests"] == ["pp64", "tg8"]


@pytest.mark.llama
def test_smollm2_end_to_end_with_depth_and_json(tmp_path: Path, smollm_gguf: Path) -> None:
    out = tmp_path / "smol.json"
    done = bench("--model", str(smollm_gguf), "--reps", "2", "--tests", "pp32,tg4",
                 "--depths", "0,64", "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed == results.load(out)
    jsonschema.validate(printed, results.schema())
    assert [t["name"] for t in printed["tests"]] == ["pp32", "pp32 @ d64", "tg4", "tg4 @ d64"]
    _check_tests(printed, reps=2)
    assert printed["chat"]["status"] == "skipped" and "llama model" in printed["chat"]["reason"]
    assert printed["model"]["synthetic"] is False


@pytest.mark.parametrize(("make", "message"), [
    pytest.param(lambda p: p.write_text("not a model"), "is not a GGUF file", id="not a GGUF"),
    pytest.param(None, "truncated", id="truncated GGUF"),
    pytest.param(lambda p: p.write_bytes(b"GGUF" + (3).to_bytes(4, "little")
                                         + (2**60).to_bytes(8, "little") * 2),
                 "damaged or truncated", id="a header claiming 2^60 tensors"),
    pytest.param(lambda p: p.write_bytes(synth.write_synthetic("tiny", p.with_name("f.gguf"))
                                         .path.read_bytes()[:5000]),
                 "damaged or truncated", id="a header cut inside the metadata"),
])
def test_bad_model_files_fail_in_one_line_without_a_results_file(tmp_path: Path, make: object,
                                                                 message: str) -> None:
    model = tmp_path / "model.gguf"
    if make is None:
        data = synth.write_synthetic("tiny", tmp_path / "full.gguf").path.read_bytes()
        model.write_bytes(data[: len(data) // 2])
    else:
        make(model)  # type: ignore[operator]
    out = tmp_path / "r.json"
    done = bench("--model", str(model), "-o", str(out))
    assert done.returncode == 2  # a bad input file is a usage error
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert not out.exists() and not list(tmp_path.glob(".r.json*"))


@pytest.mark.llama
def test_gpt_oss_is_required_where_it_must_be(smollm_gguf: Path) -> None:
    with pytest.raises(gguf_info.ModelFileError, match="is a llama model, not gpt-oss"):
        gguf_info.read_info(smollm_gguf, require_gpt_oss=True)


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(("--synthetic", "tiny", "--model", "x.gguf"), "exactly one of",
                 id="model and synthetic together"),
    pytest.param((), "exactly one of", id="neither model nor synthetic"),
    pytest.param(("--synthetic", "tiny", "--tests", "pp"), "bad test", id="bad test name"),
    pytest.param(("--synthetic", "tiny", "--protocol", "ggml", "--tests", "pp8"),
                 "--protocol sets", id="protocol with tests"),
    pytest.param(("--synthetic", "tiny", "--depths", "a,b"), "bad --depths", id="bad depths"),
    pytest.param(("--synthetic", "tiny", "--reps", "0"), "reps", id="zero reps"),
])
def test_usage_errors_exit_two(args: tuple[str, ...], message: str) -> None:
    done = bench(*args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.llama
def test_ctrl_c_keeps_finished_tests_in_the_results_file(tmp_path: Path,
                                                          smollm_gguf: Path) -> None:
    import os
    import signal

    out = tmp_path / "r.json"
    # No sleep to guess by: the progress bar names the test it is in (rich draws it when told
    # the pipe is an interactive terminal), and the interrupt goes once it says tg4000, so it
    # lands after pp16 has finished, inside tg4000, however slow or loaded the machine is.
    process = subprocess.Popen(
        [sys.executable, "-m", "gptoss_doctor", "bench", "speed", "--model", str(smollm_gguf),
         "--tests", "pp16,tg4000", "--reps", "2", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "TTY_INTERACTIVE": "1", "FORCE_COLOR": "1", "TERM": "xterm"})
    assert process.stderr is not None
    seen = b""
    while b"tg4000" not in seen and (chunk := os.read(process.stderr.fileno(), 4096)):
        seen += chunk
    assert b"tg4000" in seen, seen.decode(errors="replace")
    process.send_signal(signal.SIGINT)
    _stdout, rest = process.communicate(timeout=120)
    stderr = (seen + rest).decode(errors="replace")
    assert process.returncode == 130, stderr
    record = results.load(out)
    jsonschema.validate(record, results.schema())
    assert record["status"] == "interrupted"
    assert [(t["name"], t["status"]) for t in record["tests"]] == [
        ("pp16", "ok"), ("tg4000", "interrupted")]
    assert len(record["tests"][0]["samples_ts"]) == 2
    assert "Traceback" not in stderr


@pytest.mark.llama
def test_expert_offload_setting_reaches_llama_cpp(tmp_path: Path) -> None:
    out = tmp_path / "moe.json"
    done = bench("--synthetic", "tiny", "--tests", "pp8", "--reps", "1", "--no-chat",
                 "--n-cpu-moe", "1", "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    assert record["config"]["n_cpu_moe"] == 1 and record["key_properties"]["n_cpu_moe"] == 1
    assert "blk.0.ffn_up_exps.weight" in record["overridden_tensors"]
    assert not any(name.startswith("blk.1.") for name in record["overridden_tensors"])
    assert record["chat"] == {"status": "skipped", "reason": "--no-chat"}
