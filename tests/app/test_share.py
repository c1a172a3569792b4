"""``share`` and ``fetch_collection`` through the local Hub-protocol server (tests/hub_server.py)
with the real huggingface_hub: uploads, re-sharing, redaction of what leaves, the token's
hygiene, one-line errors, and a hostile collection."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor import secrets
from gptoss_doctor.app import share
from gptoss_doctor.app.feedback import Silent
from gptoss_doctor.bench import results
from gptoss_doctor.cli import main
from gptoss_doctor.errors import DoctorError
from gptoss_doctor.install.hub import HubError

from conftest import FIXTURES
from hub_server import Dataset, HubServer, HubState

WRITE = "hf_" + "W1rite" * 6  # a write token the server knows
READ = "hf_" + "R3ad00" * 6
REPO = "zqowner/gptoss-runs"
SPEC = f"hf://datasets/{REPO}"
LMSTUDIO = FIXTURES / "results" / "endpoint-lmstudio-fake.json"
CPU = FIXTURES / "results" / "synthetic-tiny-cpu.json"
TOOLS = FIXTURES / "results" / "synthetic-tiny-tools.json"
# Planted where a real run records them: the models folder in the user's home, a private
# server with its port, a GPU's UUID and a token pasted into a note.
PLANTED = ("zqalice", "zqlab.lan", "10.20.30.40", ":41234", "4b2c9e8a-1d3f-4e6a-9b7c-0f1e2d3c4b5a",
           "hf_zqSecretTokenValue1234567890ab")


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    secrets.forget_all()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubState]:
    state = HubState(datasets={REPO: Dataset()}, tokens={WRITE: "write", READ: "read"})
    with HubServer(state) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_TOKEN", WRITE)
        yield state


def _planted(tmp_path: Path) -> Path:
    """The LM Studio fixture with sensitive values where runs record them."""
    record = json.loads(LMSTUDIO.read_text())
    record["machine"]["disk"]["path"] = "/home/zqalice/.cache/gptoss-doctor/models"
    record["endpoint"]["url"] = "http://zqlab.lan:41234/v1"
    record["machine"]["notes"][0]["message"] = (
        "GPU-4b2c9e8a-1d3f-4e6a-9b7c-0f1e2d3c4b5a at 10.20.30.40 with "
        "hf_zqSecretTokenValue1234567890ab")
    path = tmp_path / "planted.json"
    path.write_text(json.dumps(record))
    results.load(path)  # still a valid results file
    return path


def _left(state: HubState) -> str:
    """Everything that reached the server: raw bodies, decoded files, commit messages."""
    return "\n".join([*(b.decode("utf-8", "replace") for b in state.bodies),
                      *(data.decode() for _, _, data in state.uploads),
                      *state.commit_messages, *state.requests])


def _share(*files: Path, redacting: bool = True) -> share.Shared:
    return share.share(share.ShareOptions(files, SPEC, redacting), Silent())


def test_share_then_fetch_round_trips_and_nothing_planted_leaves(hub: HubState,
                                                                  tmp_path: Path) -> None:
    shared = _share(_planted(tmp_path), CPU, TOOLS)
    assert [run.uploaded for run in shared.runs] == [True, True, True]
    assert len(hub.datasets[REPO].commits) == 1
    assert sorted(hub.datasets[REPO].files) == sorted(run.path for run in shared.runs)
    left = _left(hub)
    assert [value for value in PLANTED if value in left] == []
    assert "machine.disk.path: home directory" in shared.runs[0].removed
    fetched = share.fetch_collection(SPEC, tmp_path / "collection")
    assert sorted(p.name for p in fetched) == sorted(run.path[5:] for run in shared.runs)
    for path in fetched:
        record = results.load(path)
        assert record["kind"] == results.RESULTS_KIND
    by_name = {p.name: results.load(p) for p in fetched}
    tools = by_name[shared.runs[2].path[5:]]
    assert tools["scores"] == results.load(TOOLS)["scores"]


def test_sharing_a_run_again_adds_nothing(hub: HubState) -> None:
    first = _share(CPU)
    again = _share(CPU)
    assert again.commit is None and not again.runs[0].uploaded
    assert again.runs[0].path == first.runs[0].path
    assert len(hub.datasets[REPO].commits) == 1


def test_the_file_name_is_the_sha256_of_what_was_stored(hub: HubState) -> None:
    shared = _share(CPU)
    data = hub.datasets[REPO].files[shared.runs[0].path]
    assert share.run_path(data) == shared.runs[0].path


def test_no_redact_uploads_paths_but_never_the_token(hub: HubState, tmp_path: Path) -> None:
    record = json.loads(CPU.read_text())
    record["model"]["path"] = f"/home/zqbob/{WRITE}/m.gguf"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(record))
    shared = _share(path, redacting=False)
    stored = hub.datasets[REPO].files[shared.runs[0].path].decode()
    assert "/home/zqbob/" in stored and WRITE not in stored and shared.runs[0].removed == ()


@pytest.mark.parametrize(("endpoint", "url"), [
    pytest.param(None, f"https://huggingface.co/datasets/{REPO}", id="the Hub"),
    pytest.param("https://u:pw@mirror.example/hub/", f"https://mirror.example/hub/datasets/{REPO}",
                 id="a mirror with credentials and a trailing slash"),
])
def test_the_dataset_url_shown_holds_no_credentials(endpoint: str | None, url: str) -> None:
    assert share.dataset_url(endpoint, REPO) == url


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["share", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return int(exited.value.code or 0), out, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("gptoss-doctor: error:")]
    assert len(lines) == 1
    return lines[0]


def test_the_command_prints_what_was_removed_and_json_says_the_same(
        hub: HubState, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planted = _planted(tmp_path)
    code, out, err = _cli(capsys, str(planted), "--to", SPEC)
    assert code == 0
    assert "removed machine.disk.path: home directory" in out
    assert "removed endpoint.url: host name and port" in out
    assert "1 run(s) added" in out
    assert WRITE not in out + err
    code, out, _ = _cli(capsys, str(planted), "--to", SPEC, "--json")
    envelope = json.loads(out)
    assert code == 0 and envelope["kind"] == "gptoss-doctor/share"
    assert envelope["commit"] is None and envelope["runs"][0]["uploaded"] is False
    assert "machine.disk.path: home directory" in envelope["runs"][0]["removed"]


@pytest.mark.parametrize(("setup", "code", "text"), [
    pytest.param({"HF_TOKEN": None}, 2, "no Hugging Face token", id="no token"),
    pytest.param({"HF_TOKEN": "hf_" + "Unknown1" * 4}, 1, "HTTP 401", id="a token the Hub "
                 "does not know"),
    pytest.param({"HF_TOKEN": READ}, 1, "HTTP 403", id="a read-only token"),
    pytest.param({"--to": "hf://datasets/zqowner/missing"}, 1, "dataset zqowner/missing not "
                 "found", id="a dataset that does not exist"),
    pytest.param({"HF_HUB_OFFLINE": "1"}, 1, "HF_HUB_OFFLINE is set", id="offline mode"),
    pytest.param({"--to": "hf://models/openai/gpt-oss-20b"}, 2, "is not a Hugging Face "
                 "dataset", id="a model instead of a dataset"),
    pytest.param({"--to": "hf://datasets/a/../b"}, 2, "is not a Hugging Face dataset",
                 id="a spec with a parent folder"),
])
def test_errors_are_one_line_without_the_token(
        hub: HubState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        setup: dict[str, Any], code: int, text: str) -> None:
    if "HF_TOKEN" in setup:
        if setup["HF_TOKEN"] is None:
            monkeypatch.delenv("HF_TOKEN")
        else:
            monkeypatch.setenv("HF_TOKEN", setup["HF_TOKEN"])
    if "HF_HUB_OFFLINE" in setup:
        monkeypatch.setenv("HF_HUB_OFFLINE", setup["HF_HUB_OFFLINE"])
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    got, out, err = _cli(capsys, str(CPU), "--to", setup.get("--to", SPEC))
    assert (got, out) == (code, "")
    assert text in _error_line(err)
    for token in (WRITE, READ, setup.get("HF_TOKEN") or WRITE):
        assert token not in err
    assert hub.uploads == []


def test_network_down_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_TOKEN", WRITE)
    code, out, err = _cli(capsys, str(CPU), "--to", SPEC)
    assert (code, out) == (1, "")
    assert "cannot reach" in _error_line(err) and WRITE not in err


@pytest.mark.parametrize("answer", [
    pytest.param({"files": "none"}, id="an object"),
    pytest.param([{"type": "file"}], id="entries without names"),
    pytest.param([{"type": "file", "path": "runs/x.json", "size": "big", "oid": "z"}],
                 id="a size that is not a number"),
])
def test_a_malformed_answer_from_the_hub_is_one_line(
        hub: HubState, capsys: pytest.CaptureFixture[str], answer: object) -> None:
    hub.datasets[REPO].malformed = answer
    code, out, err = _cli(capsys, str(CPU), "--to", SPEC)
    assert (code, out) == (1, "")
    line = _error_line(err)
    assert "form the client cannot read" in line or "impossible size" in line
    assert hub.uploads == []


def test_a_newer_schema_version_is_refused_with_one_line(
        hub: HubState, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads(CPU.read_text())
    record["schema_version"] = results.SCHEMA_VERSION + 1
    path = tmp_path / "future.json"
    path.write_text(json.dumps(record))
    code, out, err = _cli(capsys, str(path), "--to", SPEC)
    assert (code, out) == (2, "")
    assert f"uses results schema {results.SCHEMA_VERSION + 1}" in _error_line(err)
    assert hub.bodies == []


# --- a hostile collection ---

def _listed(hub: HubState, entries: dict[str, bytes]) -> None:
    hub.datasets[REPO].listed.update({path: (len(data), data) for path, data in entries.items()})


def test_only_runs_named_by_their_digest_are_fetched_and_checked(hub: HubState,
                                                                 tmp_path: Path) -> None:
    good = _share(CPU).runs[0].path
    liar = share.run_path(b"something else")
    _listed(hub, {"runs/readme.json": b"{}", "notes.txt": b"x", "runs/sub/" + good[5:]: b"{}",
                  liar: b'{"kind": "not what the name says"}'})
    said: list[str] = []
    fetched = share.fetch_collection(SPEC, tmp_path / "c", said.append)
    assert [p.name for p in fetched] == [good[5:]]
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [good[5:]]
    assert any("not named runs/<sha256>.json" in line for line in said)
    assert any("does not match its name" in line for line in said)


@pytest.mark.parametrize("name", ["runs/../../escape.json", "runs/..", "/etc/passwd",
                                  "runs\\..\\x.json", "runs/\x1b[2Jx.json"])
def test_an_unsafe_name_in_the_listing_refuses_it_and_writes_nothing(
        hub: HubState, tmp_path: Path, name: str) -> None:
    _listed(hub, {name: b"{}"})
    with pytest.raises(HubError, match=r"unsafe file name|without a name"):
        share.fetch_collection(SPEC, tmp_path / "c")
    assert not (tmp_path / "c").exists() or list((tmp_path / "c").iterdir()) == []
    assert not (tmp_path / "escape.json").exists()


def test_limits_on_count_and_size(hub: HubState, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = {share.run_path(bytes([i])): bytes([i]) for i in range(3)}
    _listed(hub, data)
    monkeypatch.setattr(share, "MAX_RUNS", 2)
    with pytest.raises(share.ShareError, match="holds 3 runs; at most 2"):
        share.fetch_collection(SPEC, tmp_path / "c")
    monkeypatch.setattr(share, "MAX_RUNS", 10)
    monkeypatch.setattr(share, "MAX_RUN_BYTES", 0)
    said: list[str] = []
    assert share.fetch_collection(SPEC, tmp_path / "c", said.append) == []
    assert any("larger than" in line for line in said)


def test_a_body_longer_than_listed_is_refused(hub: HubState, tmp_path: Path) -> None:
    _share(CPU)
    hub.extra_bytes = 100
    with pytest.raises(DoctorError, match=r"disagrees with the \d+ bytes"):
        share.fetch_collection(SPEC, tmp_path / "c")
    assert list((tmp_path / "c").glob("*.json")) == []


def test_listings_are_followed_across_pages(hub: HubState, tmp_path: Path) -> None:
    data = {share.run_path(b"%d" % i): b"%d" % i for i in range(7)}
    hub.datasets[REPO].files.update(data)
    hub.tree_page = 3
    fetched = share.fetch_collection(SPEC, tmp_path / "c")
    assert sorted(p.name for p in fetched) == sorted(name[5:] for name in data)
    assert sum("cursor=" in r for r in hub.requests) >= 2


def test_runs_stored_in_lfs_are_fetched_and_checked_by_their_sha256(
        hub: HubState, tmp_path: Path) -> None:
    """On the Hub a run over 10 MB (a tools run keeps every completion) is an LFS file,
    listed with its sha256 instead of a git object id."""
    shared = _share(TOOLS).runs[0].path
    hub.datasets[REPO].lfs = frozenset({shared})
    fetched = share.fetch_collection(SPEC, tmp_path / "c")
    assert [p.name for p in fetched] == [shared[5:]]
    assert fetched[0].read_bytes() == hub.datasets[REPO].files[shared]
    assert hub.ranges == ["bytes=0-"]  # the resumable LFS download, not the small-file one


def test_an_empty_collection_fetches_nothing(hub: HubState, tmp_path: Path) -> None:
    assert share.fetch_collection(SPEC, tmp_path / "c") == []


@pytest.mark.parametrize("share_redacted", [
    pytest.param(True, id="shared redacted"),
    pytest.param(False, id="shared with --no-redact, redacted by publish"),
])
def test_share_then_publish_from_the_collection(
        hub: HubState, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        share_redacted: bool) -> None:
    shared = _share(_planted(tmp_path), CPU, TOOLS, redacting=share_redacted)
    site = tmp_path / "site"
    with pytest.raises(SystemExit) as exited:
        main(["publish", "--from", SPEC, "-o", str(site), "--json"])
    out, err = capsys.readouterr()
    assert exited.value.code in (0, None), err
    index = json.loads((site / "index.json").read_text())
    assert len(index["runs"]) == len(shared.runs) == 3
    written = "\n".join(p.read_text(errors="replace") for p in site.rglob("*") if p.is_file())
    assert [value for value in PLANTED if value in written + out] == []
    assert WRITE not in written + out + err
