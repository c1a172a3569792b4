"""A hostile or flaky Hub: unsafe listed names, credentials on redirects, transient failures
and bodies longer than the listed size, against the local Hub-protocol server (loopback only).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from gptoss_doctor.errors import DoctorError
from gptoss_doctor.install import download, execute, hub
from gptoss_doctor.install.install_plan import FileStep, InstallPlan

from hub_server import HubServer, HubState, Repo

REPO = "org/hostile"
TOKEN = "Bearer hf_not_a_real_token_1234567890"
MIB = 1024 * 1024


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    """A 1 MiB "weights" file (LFS on the server)."""
    path = tmp_path / "served" / "model.gguf"
    path.parent.mkdir()
    path.write_bytes(hashlib.sha256(b"seed").digest() * (MIB // 32))
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A small config (a regular git file on the server)."""
    path = tmp_path / "served" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text('{"model_type": "gpt_oss"}\n')
    return path


@pytest.fixture
def hub_url(blob: Path, small: Path) -> Iterator[tuple[str, HubState]]:
    state = HubState(repos={REPO: Repo({"model.gguf": blob, "config.json": small},
                                       plain=frozenset({"config.json"}))})
    with HubServer(state) as url:
        yield url, state


def _url(base: str, state: HubState, name: str) -> str:
    return f"{base}/{REPO}/resolve/{state.repos[REPO].commit}/{name}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- 1. Listed names never become paths outside the models folder --------------------------

UNSAFE_NAMES = [
    pytest.param("../escape.json", id="a parent-folder part"),
    pytest.param("sub/../../escape.json", id="a parent-folder part further in"),
    pytest.param("/tmp/escape.json", id="an absolute path"),
    pytest.param("..\\escape.json", id="a backslash"),
    pytest.param("C:escape.json", id="a drive letter"),
    pytest.param("sub/D:/escape.json", id="a drive letter further in"),
    pytest.param("evil\nname.json", id="a newline"),
    pytest.param("\x1b[31mred.json", id="a terminal escape"),
    pytest.param("gnp.\u202eexe", id="a right-to-left override"),
    pytest.param("sub//escape.json", id="an empty part"),
    pytest.param("./escape.json", id="a dot part"),
    pytest.param("sub/", id="a trailing slash"),
    pytest.param("x" * 300, id="a part longer than a file name can be"),
]


@pytest.mark.parametrize("wanted", [pytest.param(None, id="MLX (every file)"),
                                    pytest.param(("model.gguf",), id="GGUF (one file)")])
@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_a_listing_with_an_unsafe_name_is_one_clear_error(
        name: str, wanted: tuple[str, ...] | None, blob: Path, small: Path) -> None:
    state = HubState(repos={REPO: Repo({"model.gguf": blob, name: small},
                                       plain=frozenset({name}))})
    with HubServer(state) as url, pytest.raises(hub.HubError) as info:
        hub.remote_files(REPO, wanted, endpoint=url)
    assert "unsafe file name" in info.value.message and info.value.hint
    assert info.value.message.isprintable()  # the hostile name is shown escaped
    assert not any(r.startswith("GET /org/hostile/resolve") for r in state.requests)


def test_ordinary_names_pass(blob: Path, small: Path) -> None:
    names = ("config.json", "sub/dir/tokenizer.json", "name with spaces (1).json", "ünï.json")
    state = HubState(repos={REPO: Repo({name: small for name in names},
                                       plain=frozenset(names))})
    with HubServer(state) as url:
        assert {r.path for r in hub.remote_files(REPO, None, endpoint=url)} == set(names)


@pytest.mark.parametrize("field, value", [
    pytest.param("sha256", "../../../escape", id="an LFS sha256 that is a path"),
    pytest.param("sha256", "AB" * 32, id="an LFS sha256 in capitals"),
])
def test_a_malformed_checksum_is_refused(field: str, value: str, blob: Path) -> None:
    # The sha256 names the partial file (<models>/.partial/<sha256>.part).
    state = HubState(repos={REPO: Repo({"model.gguf": blob}, sha256={"model.gguf": value})})
    with HubServer(state) as url, pytest.raises(hub.HubError, match="malformed checksum"):
        hub.remote_files(REPO, None, endpoint=url)


def test_install_mlx_refuses_a_listing_that_would_write_outside_the_models_folder(
        small: Path, isolated_env: Path) -> None:
    # The reported case: every file of the MLX repository is installed, under its listed name.
    mlx_repo = "mlx-community/gpt-oss-20b-MXFP4-Q8"
    names = ("config.json", "../../../escape.json")
    state = HubState(repos={mlx_repo: Repo({n: small for n in names}, plain=frozenset(names))})
    with HubServer(state) as url:
        done = subprocess.run(
            [sys.executable, "-m", "gptoss_doctor", "install", "--model", "20b", "--engine",
             "mlx", "--dry-run"], capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_TELEMETRY": "1"})
    assert done.returncode == 1, done.stderr
    (error,) = [ln for ln in done.stderr.splitlines() if ln.startswith("gptoss-doctor: error:")]
    assert "unsafe file name '../../../escape.json'" in error and "Traceback" not in done.stderr
    assert "escape.json ->" not in done.stderr  # no plan was shown, let alone carried out


def _plan(*steps: FileStep) -> InstallPlan:
    # fetch_files reads only the plan's files; the verdict and engine step do not matter here.
    return InstallPlan("gpt-oss-20b", "20b", cast(Any, None), cast(Any, None), steps, 0, 0,
                       None, None, ())


def _small_step(state: HubState, small: Path, name: str, target: Path) -> FileStep:
    """A step as ``plan_install`` builds it: ``<target folder>/<remote name>``."""
    data = small.read_bytes()
    return FileStep(REPO, name, len(data), None, "download", "hub", f"{target}/{name}", 0,
                    state.repos[REPO].commit, download.git_blob_sha1(data))


def test_a_step_whose_name_leaves_the_target_folder_writes_nothing(
        hub_url: tuple[str, HubState], small: Path, tmp_path: Path) -> None:
    url, state = hub_url
    target = tmp_path / "models" / "org--hostile"
    state.repos[REPO] = Repo({"../escape.json": small}, plain=frozenset({"../escape.json"}))
    step = _small_step(state, small, "../escape.json", target)
    with pytest.raises(DoctorError):
        execute.fetch_files(_plan(step), url, tmp_path / "partial", tmp_path / "hashes.json")
    assert not (target.parent / "escape.json").exists()
    assert state.ranges == []  # refused before any request


def test_a_symlinked_folder_inside_the_target_is_not_followed(
        hub_url: tuple[str, HubState], small: Path, tmp_path: Path) -> None:
    url, state = hub_url
    target = tmp_path / "models" / "org--hostile"
    outside = tmp_path / "outside"
    outside.mkdir()
    target.mkdir(parents=True)
    (target / "sub").symlink_to(outside)
    state.repos[REPO] = Repo({"sub/config.json": small}, plain=frozenset({"sub/config.json"}))
    step = _small_step(state, small, "sub/config.json", target)
    with pytest.raises(DoctorError, match="outside"):
        execute.fetch_files(_plan(step), url, tmp_path / "partial", tmp_path / "hashes.json")
    assert list(outside.iterdir()) == []


# --- 2. Credentials stay with their host; transient failures are retried ---------------------

@pytest.mark.parametrize("host", [pytest.param("127.0.0.2", id="another address"),
                                  pytest.param("127.0.0.1", id="the same address, another port")])
@pytest.mark.parametrize("name", ["model.gguf", "config.json"])
def test_a_redirect_to_another_host_drops_the_token(
        host: str, name: str, hub_url: tuple[str, HubState], blob: Path, small: Path,
        tmp_path: Path) -> None:
    url, state = hub_url
    mirror = HubState(repos=state.repos)
    dest = tmp_path / "got" / name
    with HubServer(mirror, host=host) as mirror_url:
        state.redirect_to = mirror_url
        if name == "model.gguf":
            download.fetch(_url(url, state, name), {"Authorization": TOKEN}, dest, MIB,
                           _sha256(blob), tmp_path / "partial")
        else:
            data = small.read_bytes()
            download.fetch_small(_url(url, state, name), {"Authorization": TOKEN}, dest,
                                 len(data), download.git_blob_sha1(data))
    assert state.authorizations == [TOKEN]
    assert mirror.authorizations == [None]
    assert dest.read_bytes() == state.repos[REPO].files[name].read_bytes()


def test_a_redirect_on_the_same_host_keeps_the_token(hub_url: tuple[str, HubState],
                                                      blob: Path, tmp_path: Path) -> None:
    url, state = hub_url
    state.redirect_to = url
    download.fetch(_url(url, state, "model.gguf"), {"Authorization": TOKEN},
                   tmp_path / "model.gguf", MIB, _sha256(blob), tmp_path / "partial")
    assert state.authorizations == [TOKEN, TOKEN]


def test_transient_failures_are_retried_with_backoff_resuming_from_what_was_written(
        hub_url: tuple[str, HubState], blob: Path, tmp_path: Path) -> None:
    url, state = hub_url
    state.faults = [503, 429, "reset", "cut", 502]
    sleeps: list[float] = []
    dest = tmp_path / "model.gguf"
    download.fetch(_url(url, state, "model.gguf"), {}, dest, MIB, _sha256(blob),
                   tmp_path / "partial", sleep=sleeps.append)
    assert dest.read_bytes() == blob.read_bytes()
    assert sleeps == [1.0, 2.0, 4.0, 1.0, 2.0]  # doubling; bytes written start it over
    cut = state.cut_bytes
    assert state.ranges == ["bytes=0-"] * 4 + [f"bytes={cut}-"] * 2
    assert state.bytes_served == MIB  # nothing sent twice


@pytest.mark.parametrize("header, wait", [pytest.param("3", 3.0, id="Retry-After is honoured"),
                                          pytest.param("86400", download.MAX_BACKOFF_S,
                                                       id="up to a bound")])
def test_retry_after(header: str, wait: float, hub_url: tuple[str, HubState], blob: Path,
                     tmp_path: Path) -> None:
    url, state = hub_url
    state.faults, state.retry_after = [429], header
    sleeps: list[float] = []
    download.fetch(_url(url, state, "model.gguf"), {}, tmp_path / "model.gguf", MIB,
                   _sha256(blob), tmp_path / "partial", sleep=sleeps.append)
    assert sleeps == [wait]


def test_a_server_that_keeps_failing_is_given_up_on_and_the_next_run_resumes(
        hub_url: tuple[str, HubState], blob: Path, tmp_path: Path) -> None:
    url, state = hub_url
    state.faults = ["cut"] + [503] * download.RETRIES
    sleeps: list[float] = []
    dest = tmp_path / "model.gguf"
    with pytest.raises(download.DownloadError) as info:
        download.fetch(_url(url, state, "model.gguf"), {}, dest, MIB, _sha256(blob),
                       tmp_path / "partial", sleep=sleeps.append)
    assert info.value.resumable and "later" in (info.value.hint or "")
    assert sleeps == [1.0, 2.0, 4.0, 8.0] and len(state.ranges) == download.RETRIES + 1
    (partial,) = (tmp_path / "partial").glob("*.part")
    assert partial.stat().st_size == state.cut_bytes and not dest.exists()
    download.fetch(_url(url, state, "model.gguf"), {}, dest, MIB, _sha256(blob),
                   tmp_path / "partial", sleep=sleeps.append)
    assert state.ranges[-1] == f"bytes={state.cut_bytes}-"
    assert dest.read_bytes() == blob.read_bytes()


def test_a_server_that_trickles_is_given_up_on_after_a_bounded_number_of_attempts(
        hub_url: tuple[str, HubState], blob: Path, tmp_path: Path) -> None:
    url, state = hub_url
    state.faults = ["cut"] * (MIB // state.cut_bytes)  # 4 KiB per connection, every time
    sleeps: list[float] = []
    with pytest.raises(download.DownloadError, match="broke off"):
        download.fetch(_url(url, state, "model.gguf"), {}, tmp_path / "model.gguf", MIB,
                       _sha256(blob), tmp_path / "partial", sleep=sleeps.append)
    assert len(state.ranges) == download.MAX_ATTEMPTS
    assert set(sleeps) == {1.0}  # each attempt got further: never a longer wait


@pytest.mark.parametrize("fault", [404, 403, 416])
def test_a_permanent_error_is_not_retried(fault: int, hub_url: tuple[str, HubState],
                                          blob: Path, tmp_path: Path) -> None:
    url, state = hub_url
    state.faults = [fault]
    sleeps: list[float] = []
    with pytest.raises(download.DownloadError, match=f"answered {fault}"):
        download.fetch(_url(url, state, "model.gguf"), {}, tmp_path / "model.gguf", MIB,
                       _sha256(blob), tmp_path / "partial", sleep=sleeps.append)
    assert sleeps == [] and len(state.ranges) == 1


def test_a_small_file_is_retried_too(hub_url: tuple[str, HubState], small: Path,
                                     tmp_path: Path) -> None:
    url, state = hub_url
    state.faults = [502, "reset"]
    sleeps: list[float] = []
    data = small.read_bytes()
    dest = tmp_path / "config.json"
    download.fetch_small(_url(url, state, "config.json"), {}, dest, len(data),
                         download.git_blob_sha1(data), sleep=sleeps.append)
    assert dest.read_bytes() == data and sleeps == [1.0, 2.0]


# --- 3. Never more bytes than the listed size ------------------------------------------------

@pytest.mark.parametrize("omit_length", [
    pytest.param(False, id="a Content-Length larger than listed"),
    pytest.param(True, id="no Content-Length, the body runs on")])
@pytest.mark.parametrize("have", [pytest.param(0, id="fresh"),
                                  pytest.param(4096, id="resumed")])
def test_a_body_longer_than_the_listed_size_is_never_written(
        omit_length: bool, have: int, hub_url: tuple[str, HubState], blob: Path,
        tmp_path: Path) -> None:
    url, state = hub_url
    state.extra_bytes, state.omit_length = 16 * MIB, omit_length
    partial_dir = tmp_path / "partial"
    partial_dir.mkdir()
    part = download.partial_path(partial_dir, _sha256(blob))
    part.write_bytes(blob.read_bytes()[:have])
    dest = tmp_path / "model.gguf"
    with pytest.raises(download.DownloadError, match=r"more than|disagrees"):
        download.fetch(_url(url, state, "model.gguf"), {}, dest, MIB, _sha256(blob),
                       partial_dir)
    assert part.stat().st_size <= MIB and not dest.exists()
    assert len(state.ranges) == 1  # not retried: the server is wrong, not flaky


def test_a_content_range_that_disagrees_is_refused(hub_url: tuple[str, HubState], blob: Path,
                                                   tmp_path: Path) -> None:
    url, state = hub_url
    state.content_range = f"bytes 0-{MIB - 1}/{MIB}"  # the whole file, though 4096 were asked
    partial_dir = tmp_path / "partial"
    partial_dir.mkdir()
    part = download.partial_path(partial_dir, _sha256(blob))
    part.write_bytes(blob.read_bytes()[:4096])
    with pytest.raises(download.DownloadError, match="Content-Range"):
        download.fetch(_url(url, state, "model.gguf"), {}, tmp_path / "model.gguf", MIB,
                       _sha256(blob), partial_dir)
    assert part.read_bytes() == blob.read_bytes()[:4096]  # nothing appended


@pytest.mark.parametrize("omit_length", [False, True])
def test_a_small_file_longer_than_listed_is_refused(omit_length: bool,
                                                    hub_url: tuple[str, HubState],
                                                    small: Path, tmp_path: Path) -> None:
    url, state = hub_url
    state.extra_bytes, state.omit_length = 16 * MIB, omit_length
    data = small.read_bytes()
    dest = tmp_path / "config.json"
    with pytest.raises(download.DownloadError, match=r"more than|disagrees"):
        download.fetch_small(_url(url, state, "config.json"), {}, dest, len(data),
                             download.git_blob_sha1(data))
    assert not dest.exists() and list(tmp_path.glob(".config.json*")) == []
