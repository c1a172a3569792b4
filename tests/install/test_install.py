"""`gptoss-doctor install` for real: huggingface_hub against a local Hub-protocol server.

A run that gets past the plan installs the engine first (with ``--yes``, on a machine without
llama-cpp-python, that is a compile), so those tests are marked ``llama``; the dry run, the
refusals and the usage errors stop before it and are not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_doctor.bench import synth
from gptoss_doctor.install import download

from hub_server import HubServer, HubState, Repo

REPO = "ggml-org/gpt-oss-20b-GGUF"
FILE = "gpt-oss-20b-mxfp4.gguf"


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic gpt-oss, served under the real 20b file name."""
    return synth.write_synthetic("tiny", tmp_path_factory.mktemp("standin") / FILE).path


@pytest.fixture
def hub(standin: Path) -> Iterator[tuple[str, HubState]]:
    state = HubState(repos={REPO: Repo({FILE: standin})})
    with HubServer(state) as url:
        yield url, state


def install(url: str, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_XET": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", "install", "--model", "20b",
                           "--yes", *args], capture_output=True, text=True, env=environ,
                          timeout=300, check=False)


def _target(home: Path) -> Path:
    return home / "models" / REPO.replace("/", "--") / FILE


def _one_line_failure(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 1, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("gptoss-doctor: error:")]
    assert len(errors) == 1 and text in errors[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.llama
def test_fresh_install_then_a_second_run_downloads_nothing(hub: tuple[str, HubState],
                                                           isolated_env: Path,
                                                           standin: Path) -> None:
    url, state = hub
    done = install(url, "--json")
    assert done.returncode == 0, done.stderr
    envelope = json.loads(done.stdout)
    target = _target(isolated_env)
    assert target.read_bytes() == standin.read_bytes()
    assert state.bytes_served == standin.stat().st_size
    (step,) = envelope["plan"]["files"]
    assert step["action"] == "download" and step["sha256"] == state.repos[REPO].sha256[FILE]
    assert envelope["smoke_test"]["generated_tokens"] > 0
    recipe = json.loads(Path(envelope["recipe"]).read_text())
    assert recipe["model_path"] == str(target) and "llama_cpp.server" in recipe["serve_command"]
    assert "--port" in recipe["serve_command"] and "1234" in recipe["serve_command"]
    assert "OpenAI(base_url='http://127.0.0.1:1234/v1'" in recipe["openai_sdk_snippet"]

    again = install(url, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["plan"]["files"][0]["action"] == "reuse"
    assert state.bytes_served == standin.stat().st_size  # nothing downloaded the second time


def test_dry_run_shows_the_plan_and_touches_nothing(hub: tuple[str, HubState],
                                                    isolated_env: Path) -> None:
    url, state = hub
    done = install(url, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "Install plan for gpt-oss-20b" in done.stderr and "download ->" in done.stderr
    assert state.bytes_served == 0 and not _target(isolated_env).exists()


@pytest.mark.llama
def test_reuses_the_hugging_face_cache(hub: tuple[str, HubState], isolated_env: Path) -> None:
    url, state = hub
    seed = subprocess.run([sys.executable, "-c", (
        "import huggingface_hub as h;"
        f"h.hf_hub_download({REPO!r}, {FILE!r}, endpoint={url!r})")],
        env={**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1"},
        capture_output=True, text=True, check=True)
    assert seed.returncode == 0
    served = state.bytes_served
    done = install(url, "--json")
    assert done.returncode == 0, done.stderr
    step = json.loads(done.stdout)["plan"]["files"][0]
    assert (step["action"], step["source"]) == ("reuse", "hf-cache")
    assert state.bytes_served == served


@pytest.mark.llama
def test_reuses_an_lm_studio_copy_and_refuses_one_that_does_not_match(
        hub: tuple[str, HubState], isolated_env: Path, standin: Path) -> None:
    url, state = hub
    folder = isolated_env / ".lmstudio" / "models" / "lmstudio-community" / "gpt-oss-20b-GGUF"
    folder.mkdir(parents=True)
    copy = folder / "gpt-oss-20b-MXFP4.gguf"
    copy.write_bytes(standin.read_bytes())
    done = install(url, "--json")
    step = json.loads(done.stdout)["plan"]["files"][0]
    assert (step["action"], step["source"], step["local_path"]) == ("reuse", "lmstudio",
                                                                     str(copy))
    assert state.bytes_served == 0
    # Same size, other bytes: verified, refused, downloaded instead.
    data = bytearray(standin.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    done = install(url, "--json")
    assert json.loads(done.stdout)["plan"]["files"][0]["action"] == "download"
    assert "does not match the Hub's sha256; not reused" in done.stderr


@pytest.mark.llama
def test_model_path_is_verified_and_reused(hub: tuple[str, HubState], isolated_env: Path,
                                           standin: Path) -> None:
    url, state = hub
    done = install(url, "--model-path", str(standin), "--json")
    step = json.loads(done.stdout)["plan"]["files"][0]
    assert (step["action"], step["source"]) == ("reuse", "model-path")
    assert state.bytes_served == 0


@pytest.mark.llama
def test_a_corrupt_download_is_removed_and_reported(hub: tuple[str, HubState],
                                                    isolated_env: Path) -> None:
    url, state = hub
    state.corrupt = True
    done = install(url)
    _one_line_failure(done, "does not match the Hub's sha256")
    assert not _target(isolated_env).exists()
    assert not list((isolated_env / "models" / ".partial").glob("*"))


@pytest.mark.llama
def test_a_server_dying_mid_file_is_resumed_by_the_next_run(hub: tuple[str, HubState],
                                                           isolated_env: Path,
                                                           standin: Path) -> None:
    url, state = hub
    size = standin.stat().st_size
    state.die_after_bytes = 5 * 1024 * 1024
    done = install(url)
    _one_line_failure(done, "broke off")
    assert "run again" in done.stderr
    assert not _target(isolated_env).exists()
    (partial,) = (isolated_env / "models" / ".partial").glob("*.part")
    assert partial.stat().st_size == 5 * 1024 * 1024
    state.die_after_bytes = None
    served = state.bytes_served
    again = install(url, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["plan"]["files"][0]["action"] == "resume"
    assert state.bytes_served - served == size - 5 * 1024 * 1024  # only the rest
    assert _target(isolated_env).read_bytes() == standin.read_bytes()


@pytest.mark.llama
def test_missing_and_gated_repositories(standin: Path, isolated_env: Path) -> None:
    with HubServer(HubState()) as url:
        _one_line_failure(install(url), "repository ggml-org/gpt-oss-20b-GGUF not found")
    state = HubState(repos={REPO: Repo({FILE: standin}, gated=True)})
    with HubServer(state) as url:
        _one_line_failure(install(url), "is gated")
        secret = "hf_not_a_real_token_1234567890"
        done = install(url, "--json", env={"HF_TOKEN": secret})
        assert done.returncode == 0, done.stderr
        assert secret not in done.stdout + done.stderr
        for written in (isolated_env / "models").rglob("*.json"):
            assert secret not in written.read_text()


@pytest.mark.llama
def test_offline_mode_uses_what_is_on_disk_or_says_how_to_fix_it(
        hub: tuple[str, HubState], isolated_env: Path) -> None:
    url, _state = hub
    offline = {"HF_HUB_OFFLINE": "1"}
    _one_line_failure(install(url, env=offline), "HF_HUB_OFFLINE=1")
    assert install(url).returncode == 0  # online first
    done = install(url, "--json", env=offline)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["plan"]["files"][0]["action"] == "reuse"


def test_interrupted_partial_is_longer_than_the_file_is_discarded(tmp_path: Path) -> None:
    # A stale partial file that cannot belong to this download never gets appended to.
    partial_dir = tmp_path / ".partial"
    partial_dir.mkdir()
    stale = download.partial_path(partial_dir, "ab" * 32)
    stale.write_bytes(b"x" * 100)
    with pytest.raises(download.DownloadError):
        download.fetch("http://127.0.0.1:9/none", {}, tmp_path / "f", 10, "ab" * 32,
                       partial_dir, retries=0)  # refused is transient: no retries wanted here
    assert not stale.exists()


def test_without_a_terminal_it_asks_for_yes(hub: tuple[str, HubState],
                                            isolated_env: Path) -> None:
    url, state = hub
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "install", "--model", "20b"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                          env={**os.environ, "HF_ENDPOINT": url,
                               "HF_HUB_DISABLE_TELEMETRY": "1"}, check=False)
    assert done.returncode == 2 and "add --yes" in done.stderr
    assert state.bytes_served == 0 and not _target(isolated_env).exists()


def test_no_network_is_one_line_with_the_fix(isolated_env: Path) -> None:
    done = install("http://127.0.0.1:9")  # nothing listens there
    _one_line_failure(done, "cannot reach http://127.0.0.1:9")
    assert "HF_HUB_OFFLINE=1" in done.stderr


def test_a_model_that_does_not_fit_fails_before_any_download(hub: tuple[str, HubState],
                                                              isolated_env: Path) -> None:
    from gptoss_doctor.install.verdict import assess
    from gptoss_doctor.probe import snapshot

    if assess(snapshot()).verdict("120b").can_run:
        pytest.skip("this machine can run gpt-oss-120b")
    url, state = hub
    environ = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_TELEMETRY": "1"}
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "install", "--model",
                           "120b", "--yes"], capture_output=True, text=True, env=environ,
                          timeout=120, check=False)
    _one_line_failure(done, "gpt-oss-120b does not fit this machine")
    assert not any("gpt-oss-120b" in request for request in state.requests)


def test_unknown_model_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "install", "--model", "7b"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "'7b' is not one of" in done.stderr
