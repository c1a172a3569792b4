"""`install --engine lmstudio` through the recorded fake `lms` (tests/fixtures/lms/lms.py).

The fake is put on PATH as `lms`; its server (`lms server start`) is tests/openai_server.py
on a free port. Each failure scenario must end in one error line naming what LM Studio
said and the next command, with no traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_doctor.app import lmstudio as app_lmstudio
from gptoss_doctor.app.feedback import Silent
from gptoss_doctor.bench import synth
from gptoss_doctor.install import lmstudio as lms
from gptoss_doctor.install.verdict import assess
from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES

FAKE = Path(__file__).parents[1] / "fixtures" / "lms" / "lms.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_lms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A `lms` on PATH that runs the fake; yields its state folder. Stops its server."""
    bin_dir, state = tmp_path / "bin", tmp_path / "lms-state"
    bin_dir.mkdir()
    wrapper = bin_dir / "lms"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LMS_STATE", str(state))
    monkeypatch.setenv("FAKE_LMS_SCENARIO", "ok")
    yield state
    server = state / "server.json"
    if server.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(json.loads(server.read_text())["pid"], signal.SIGTERM)


def _calls(state: Path) -> list[list[str]]:
    return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]


def doctor(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", *args],
                          capture_output=True, text=True, env=dict(os.environ),
                          timeout=timeout, check=False)


def _one_line(done: subprocess.CompletedProcess[str], *texts: str) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("gptoss-doctor: error:")]
    assert len(errors) == 1, done.stderr
    for text in texts:
        assert text in done.stderr, done.stderr
    return errors[0]


def test_install_runs_get_estimate_load_serve_and_smoke_then_bench_tools_through_it(
        fake_lms: Path, isolated_env: Path) -> None:
    port = _free_port()
    done = doctor("install", "--engine", "lmstudio", "--model", "20b", "--yes", "--json",
                  "--port", str(port), "--ctx", "8192")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    calls = _calls(fake_lms)
    assert [c[:2] for c in calls] == [["ls", "--json"], ["get", "openai/gpt-oss-20b"],
                                     ["load", "openai/gpt-oss-20b"],
                                     ["load", "openai/gpt-oss-20b"], ["ps", "--json"],
                                     ["server", "status"], ["server", "start"]]
    assert "--gguf" in calls[1] and "--estimate-only" in calls[2]
    assert "--estimate-only" not in calls[3]
    for load in calls[2:4]:
        assert load[load.index("--context-length") + 1] == "8192"
        assert load[load.index("--gpu") + 1] == out["gpu"]
    assert calls[6][calls[6].index("--port") + 1] == str(port)
    # LM Studio's figures as the fake printed them, beside the doctor's for 8192 tokens.
    rows = {row["what"]: row for row in out["agreement"]}
    assert rows["total"]["lmstudio_bytes"] == out["estimate"]["total_bytes"] > 0
    assert rows["total"]["doctor_bytes"] > 10 * 1024**3
    assert out["endpoint"] == f"http://127.0.0.1:{port}/v1"
    assert out["smoke_test"]["reply"] and out["loaded"]["contextLength"] == 8192
    recipe = json.loads(Path(out["recipe"]).read_text())
    assert recipe["engine"] == "lmstudio"
    assert recipe["endpoint"] == {"url": out["endpoint"], "model": "openai/gpt-oss-20b"}
    assert [c["command"][1:] for c in recipe["commands"]] == calls
    results = isolated_env / "tools.json"
    bench = doctor("bench", "tools", "--recipe", out["recipe"], "--category", "simple",
                   "-o", str(results), timeout=600)
    assert bench.returncode == 0, bench.stderr
    record = json.loads(results.read_text())
    assert record["status"] == "complete" and record["attempts"]
    assert record["endpoint"]["url"] == out["endpoint"]
    assert record["endpoint"]["is_lmstudio"] is True
    speed = doctor("bench", "speed", "--recipe", out["recipe"], "--reps", "1", "-o",
                   str(isolated_env / "speed.json"))
    assert speed.returncode == 0, speed.stderr
    measured = json.loads((isolated_env / "speed.json").read_text())
    assert measured["endpoint"]["model_id"] == "openai/gpt-oss-20b"
    stats = measured["endpoint"]["lmstudio_stats"]  # LM Studio's own, beside ours
    assert stats["api"] == "/api/v1/chat" and len(stats["requests"]) == 3
    assert all(r["lmstudio"]["tokens_per_second"] and r["measured"]["latency_s"]
               for r in stats["requests"])
    refused = doctor("bench", "speed", "--recipe", out["recipe"], "--threads", "2")
    assert refused.returncode == 2 and "--threads" in refused.stderr


def test_install_text_shows_the_commands_and_the_agreement_table(fake_lms: Path) -> None:
    port = str(_free_port())
    done = doctor("install", "--engine", "lmstudio", "--model", "20b", "--yes", "--port", port)
    assert done.returncode == 0, done.stderr
    assert "$ lms get openai/gpt-oss-20b --gguf --yes" in done.stdout
    assert "LM Studio" in done.stdout and "doctor" in done.stdout and "ratio" in done.stdout
    assert "next: gptoss-doctor bench tools --recipe" in done.stdout
    assert "the doctor's verdict for its plan: " in done.stdout and " of " in done.stdout
    # Run again: LM Studio's server already serves on that port and is kept, not restarted.
    again = doctor("install", "--engine", "lmstudio", "--model", "20b", "--yes", "--port", port)
    assert again.returncode == 0, again.stderr
    assert f"already runs on port {port}" in again.stdout
    assert [c[:2] for c in _calls(fake_lms)].count(["server", "start"]) == 1
    assert [c[0] for c in _calls(fake_lms)].count("get") == 1  # lms ls --json listed it
    assert "already in LM Studio" in again.stdout


def test_an_unreadable_model_list_means_lms_get_decides(
        fake_lms: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LMS_SCENARIO", "ls-garbage")
    done = doctor("install", "--engine", "lmstudio", "--model", "20b", "--yes", "--port",
                  str(_free_port()))
    assert done.returncode == 0, done.stderr
    assert ["get", "openai/gpt-oss-20b"] in [c[:2] for c in _calls(fake_lms)]


@pytest.mark.parametrize(("scenario", "texts"), [
    pytest.param("daemon-down", ("LM Studio is not running", "lms daemon up"), id="daemon"),
    pytest.param("model-not-found", ("no such model", "lms ls"), id="model-not-found"),
    pytest.param("oom", ("ran out of memory", "cudaMalloc failed", "--ctx"), id="oom"),
    pytest.param("port-busy", ("is already taken", "--port"), id="port-busy"),
    pytest.param("estimate-garbage", ("no memory estimate", "update LM Studio"),
                 id="estimate-unreadable"),
])
def test_every_lms_failure_is_one_line_with_the_next_command(
        fake_lms: Path, monkeypatch: pytest.MonkeyPatch, scenario: str,
        texts: tuple[str, ...]) -> None:
    monkeypatch.setenv("FAKE_LMS_SCENARIO", scenario)
    _one_line(doctor("install", "--engine", "lmstudio", "--model", "20b", "--yes",
                     "--port", str(_free_port())), *texts)


def test_hostile_lms_output_is_one_bounded_line_without_control_characters(
        fake_lms: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LMS_SCENARIO", "hostile")
    line = _one_line(doctor("install", "--engine", "lmstudio", "--model", "20b", "--yes",
                            "--port", str(_free_port())), "unexpected")
    assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line
    assert len(line) < 600


def test_the_guardrail_refusal_gives_lm_studios_own_numbers(
        fake_lms: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LMS_SCENARIO", "guardrail")
    line = _one_line(doctor("install", "--engine", "lmstudio", "--model", "20b", "--yes",
                            "--port", str(_free_port()), "--ctx", "4096"), "guardrail")
    estimate = subprocess.run(["lms", "load", "openai/gpt-oss-20b", "--estimate-only",
                               "--context-length", "4096", "--gpu", "max"],
                              capture_output=True, text=True, check=True).stdout
    figure = lms.parse_estimate(estimate).total_bytes
    assert figure is not None and f"{figure / 1024**3:.2f} GiB" in line
    assert ["load", "openai/gpt-oss-20b"] not in [c[:2] for c in _calls(fake_lms)
                                                 if "--estimate-only" not in c]


def test_a_guardrail_refusal_at_load_quotes_lm_studios_figure(
        fake_lms: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LMS_SCENARIO", "guardrail")
    subprocess.run(["lms", "get", "openai/gpt-oss-20b", "--yes"], check=True,
                   capture_output=True)
    ran = lms.run("lms", ("load", "openai/gpt-oss-20b", "--yes"), 60)
    error = lms.classify(ran, "load")
    assert error.kind == "guardrail"
    quoted = lms.parse_size(ran.stderr[ran.stderr.index("approximately"):])
    assert quoted is not None and f"{quoted / 1024**3:.2f} GiB" in error.message


def test_lms_not_installed_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", f"{empty}{os.pathsep}{Path(sys.executable).parent}")
    _one_line(doctor("install", "--engine", "lmstudio", "--model", "20b", "--yes"),
              "`lms` is not installed", "lms bootstrap")


def test_a_flood_of_output_is_cut_not_held(fake_lms: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LMS_SCENARIO", "flood")
    ran = lms.run("lms", ("get", "openai/gpt-oss-20b", "--yes"), 60)
    assert ran.returncode == 0 and ran.truncated
    assert len(ran.stdout) <= lms.OUTPUT_LIMIT  # characters decoded from the bytes kept


def test_a_hanging_lms_is_stopped_at_its_time_limit(fake_lms: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LMS_SCENARIO", "hang")
    ticks: list[float] = []
    with pytest.raises(lms.LmsError, match="did not finish in 1 s") as caught:
        lms.run("lms", ("ps", "--json"), 1.0, ticks.append)
    assert caught.value.kind == "timeout" and ticks  # progress ticked while it waited


def test_server_status_json_and_its_garbage(fake_lms: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert lms.parse_server_status(lms.run("lms", ("server", "status", "--json"), 30).stdout) \
        == (False, None)
    monkeypatch.setenv("FAKE_LMS_SCENARIO", "status-garbage")
    with pytest.raises(lms.LmsError, match="did not answer"):
        lms.parse_server_status(lms.run("lms", ("server", "status", "--json"), 30).stdout)


@pytest.mark.parametrize(("text", "size"), [
    ("12.35 GiB", int(12.35 * 1024**3)), ("512.00 MiB", 512 * 1024**2),
    ("273.25 GB", int(273.25e9)), ("0 Bytes", 0), ("NaN undefined", None),
])
def test_sizes_as_lms_prints_them(text: str, size: int | None) -> None:
    assert lms.parse_size(text) == size


@pytest.mark.parametrize(("layers", "gpu"), [(-1, "max"), (24, "max"), (0, "off"),
                                             (12, "0.50")])
def test_gpu_setting_from_the_doctors_layers(layers: int, gpu: str) -> None:
    assert lms.gpu_setting(LoadSettings(n_gpu_layers=layers), 24) == gpu


def test_on_a_mac_the_doctor_picks_mlx_and_lms_gets_the_mlx_variant(
        fake_lms: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replayed M4 Max: the verdict's engine is MLX, so `lms get --mlx`; the estimate
    and the load carry the plan's context and --gpu max (unified memory)."""
    mac = snapshot(ReplaySources(MACHINES / "mac-m4max-64gb"), current({"HOME": "/home/u"}))
    verdict = assess(mac).verdict("20b")
    assert verdict.engine == "mlx" and verdict.load_settings is not None
    monkeypatch.setattr(app_lmstudio, "take_snapshot", lambda settings: mac)
    done = app_lmstudio.install(app_lmstudio.LmsOptions("20b", _free_port(), None), Silent())
    calls = _calls(fake_lms)
    assert calls[1] == ["get", "openai/gpt-oss-20b", "--mlx", "--yes"]
    assert done.variant == "mlx" and done.gpu == "max"
    assert calls[2][calls[2].index("--context-length") + 1] == \
        str(verdict.load_settings.n_ctx)
    assert json.loads(Path(done.recipe).read_text())["lmstudio"]["variant"] == "mlx"
    gpu_row = next(row for row in done.agreement if row.what == "gpu")
    assert gpu_row.doctor_bytes > 10 * 1024**3  # the doctor's estimate is on the GPU too


def test_prefer_lmstudio_takes_the_lms_path_only_when_lms_is_there(
        fake_lms: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert app_lmstudio.chosen("auto", prefer_lmstudio=True)
    assert not app_lmstudio.chosen("auto", prefer_lmstudio=False)
    assert not app_lmstudio.chosen("llama.cpp", prefer_lmstudio=True)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert not app_lmstudio.chosen("auto", prefer_lmstudio=True)
    assert app_lmstudio.chosen("lmstudio", prefer_lmstudio=False)


def test_options_of_the_doctors_own_install_are_refused(fake_lms: Path) -> None:
    done = doctor("install", "--engine", "lmstudio", "--dry-run")
    assert done.returncode == 2 and "--dry-run" in done.stderr
    assert not (fake_lms / "calls.jsonl").exists()


@pytest.mark.server
def test_through_a_real_engine_behind_the_fake_lms(
        fake_lms: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`lms server start` runs llama-cpp-python's server on the tiny synthetic gpt-oss under
    the loaded identifier: the smoke test and `bench tools --recipe` go through a real
    engine (random weights: the answers are noise, the run must still complete)."""
    model = synth.write_synthetic("tiny", tmp_path / "tiny.gguf").path
    monkeypatch.setenv("FAKE_LMS_BACKEND", "llama-cpp")
    monkeypatch.setenv("FAKE_LMS_MODEL", str(model))
    done = doctor("install", "--engine", "lmstudio", "--model", "20b", "--yes", "--json",
                  "--port", str(_free_port()), "--ctx", "4096")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert isinstance(out["smoke_test"]["reply"], str)
    assert out["smoke_test"]["completion_tokens"] > 0
    results = tmp_path / "tools.json"
    bench = doctor("bench", "tools", "--recipe", out["recipe"], "--category", "simple",
                   "--max-tokens", "32", "--timeout", "120", "-o", str(results), timeout=900)
    assert "Traceback" not in bench.stderr, bench.stderr
    record = json.loads(results.read_text())
    assert record["status"] in ("complete", "partial") and record["attempts"]
    assert record["endpoint"]["model_id"] == "openai/gpt-oss-20b"
    assert any("message" in turn for a in record["attempts"] for turn in a["turns"])


@pytest.mark.llama
def test_bench_speed_takes_an_in_process_recipe_too(tmp_path: Path) -> None:
    """`bench speed --recipe` of the doctor's own install: the recipe's model and engine."""
    model = synth.write_synthetic("tiny", tmp_path / "tiny.gguf").path
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"kind": "gptoss-doctor/recipe", "schema_version": 1,
                                  "engine": "llama.cpp", "model_path": str(model),
                                  "load_settings": {"n_ctx": 2048}}))
    out = tmp_path / "speed.json"
    done = doctor("bench", "speed", "--recipe", str(recipe), "--tests", "pp16,tg4", "--reps",
                  "1", "--no-chat", "-o", str(out))
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["model"]["path"] == str(model) and record["config"]["engine"] == "llama.cpp"
    both = doctor("bench", "speed", "--recipe", str(recipe), "--synthetic", "tiny")
    assert both.returncode == 2 and "exactly one of" in both.stderr
