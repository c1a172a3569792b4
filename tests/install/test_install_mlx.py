"""`install --engine mlx` on Linux (mlx-lm[cpu], the testing path) from a local Hub server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_doctor.bench import mlx_engine, results, tool_suite

from hub_server import HubServer, HubState, Repo

pytestmark = pytest.mark.mlx

REPO = "mlx-community/gpt-oss-20b-MXFP4-Q8"
SMALL = frozenset({"config.json", "tokenizer_config.json"})  # regular git files on the Hub


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic MLX gpt-oss, served as the 20b MLX repository."""
    return Path(mlx_engine.write_synthetic(tmp_path_factory.mktemp("mlx") / "tiny").path)


@pytest.fixture
def hub(standin: Path) -> Iterator[tuple[str, HubState]]:
    files = {p.name: p for p in sorted(standin.iterdir())}
    state = HubState(repos={REPO: Repo(files, plain=SMALL)})
    with HubServer(state) as url:
        yield url, state


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_XET": "1"}
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", *args], capture_output=True,
                          text=True, env=environ, timeout=600, check=False)


def test_install_mlx_downloads_verifies_smoke_tests_then_benches(
        hub: tuple[str, HubState], standin: Path, isolated_env: Path, tmp_path: Path) -> None:
    url, state = hub
    done = run("install", "--model", "20b", "--engine", "mlx", "--yes", "--json", url=url)
    assert done.returncode == 0, done.stderr
    envelope = json.loads(done.stdout)
    plan = envelope["plan"]
    assert plan["verdict"]["engine"] == "mlx" and plan["verdict"]["backend"] == "MLX (CPU)"
    assert any("testing path" in reason for reason in plan["verdict"]["reasons"])
    assert plan["engine"]["action"] == "keep"  # the test environment has mlx-lm[cpu]
    steps = {f["path"]: f for f in plan["files"]}
    assert set(steps) == {p.name for p in standin.iterdir()}
    assert steps["config.json"]["sha256"] is None and steps["config.json"]["git_sha1"]
    assert steps["model.safetensors"]["sha256"] is not None
    folder = isolated_env / "models" / REPO.replace("/", "--")
    for name in steps:
        assert (folder / name).read_bytes() == (standin / name).read_bytes()
    smoke = envelope["smoke_test"]
    assert smoke["generated_tokens"] > 0 and smoke["stopped_on"] in (
        "max_tokens", "<|return|>", "<|call|>")
    recipe_path = Path(envelope["recipe"])
    recipe = json.loads(recipe_path.read_text())
    assert recipe["engine"] == "mlx" and recipe["model_path"] == str(folder)
    assert "mlx_lm.server" in recipe["serve_command"]

    served = state.bytes_served
    again = run("install", "--model", "20b", "--engine", "mlx", "--yes", "--json", url=url)
    assert again.returncode == 0, again.stderr
    assert {f["action"] for f in json.loads(again.stdout)["plan"]["files"]} == {"reuse"}
    assert state.bytes_served == served

    out = tmp_path / "tools.json"
    done = run("bench", "tools", "--recipe", str(recipe_path), "--category", "simple",
               "--max-tokens", "8", "-o", str(out), url=url)
    assert done.returncode == 0, done.stderr
    record = results.load(out)
    simple = tool_suite.select(tool_suite.load_suite(), ("simple",))
    assert record["config"]["engine"] == "mlx" and len(record["attempts"]) == len(simple)


def test_a_changed_small_file_is_not_reused(hub: tuple[str, HubState], standin: Path,
                                           isolated_env: Path) -> None:
    url, _state = hub
    assert run("install", "--model", "20b", "--engine", "mlx", "--yes", url=url).returncode == 0
    config = isolated_env / "models" / REPO.replace("/", "--") / "config.json"
    config.write_text(config.read_text().replace("gpt_oss", "gpt_os5"))
    done = run("install", "--model", "20b", "--engine", "mlx", "--yes", "--json", url=url)
    assert done.returncode == 0, done.stderr
    steps = {f["path"]: f["action"] for f in json.loads(done.stdout)["plan"]["files"]}
    assert steps["config.json"] == "download" and steps["model.safetensors"] == "reuse"
    assert config.read_bytes() == (standin / "config.json").read_bytes()
