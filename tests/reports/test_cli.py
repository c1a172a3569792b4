"""The command line as a user and a script see it: real processes, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from gptoss_doctor.probe import serialize
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.reports.doctor_view import schema
from gptoss_doctor.settings import current

from conftest import MACHINES


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def _saved(machine: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{machine}.json"
    serialize.save(snapshot(ReplaySources(MACHINES / machine), current({"HOME": "/h"})), path)
    return path


def _assert_one_line_error(done: subprocess.CompletedProcess[str], code: int,
                           text: str) -> None:
    assert done.returncode == code
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gptoss-doctor: error:")
    assert text in lines[0]
    assert "Traceback" not in done.stderr


def test_default_command_on_this_machine_prints_checks_verdicts_and_next_step() -> None:
    done = run()
    assert done.returncode in (0, 1)
    out = done.stdout
    for piece in ("[✓] os:", "cpu:", "ram:", "disk:", "Verdict", "gpt-oss-20b:",
                  "gpt-oss-120b:"):
        assert piece in out
    if done.returncode == 0:
        assert "Next: gptoss-doctor install --model" in out


def test_json_output_validates_against_the_documented_schema() -> None:
    done = run("--json")
    envelope = json.loads(done.stdout)
    jsonschema.validate(envelope, schema())
    assert envelope["exit_code"] == done.returncode
    assert envelope["kind"] == "gptoss-doctor/doctor" and envelope["schema_version"] == 1


@pytest.mark.parametrize("machine", sorted(p.name for p in MACHINES.iterdir()))
def test_saved_snapshots_of_every_machine_validate_and_exit_zero(machine: str,
                                                                 tmp_path: Path) -> None:
    done = run("--snapshot", str(_saved(machine, tmp_path)), "--json")
    envelope = json.loads(done.stdout)
    jsonschema.validate(envelope, schema())
    assert done.returncode == 0  # gpt-oss-20b runs on every recorded machine


def test_human_report_of_an_rtx_4090(tmp_path: Path) -> None:
    done = run("--snapshot", str(_saved("rtx4090-24gb", tmp_path)))
    assert done.returncode == 0
    assert "NVIDIA GeForce RTX 4090 D: 24.0 GiB VRAM" in done.stdout
    assert "[✓] gpt-oss-20b: llama.cpp (CUDA), all layers on the GPU, 131072 context" \
        in done.stdout
    assert "GPU + experts of 24 layers on the CPU, 32768 context" in done.stdout
    assert "Next: gptoss-doctor install --model 120b" in done.stdout


def test_a_machine_where_nothing_fits_exits_one(tmp_path: Path) -> None:
    data = json.loads(_saved("cpu-only-16gb", tmp_path).read_text())
    data["memory"].update(ram_total_bytes=4 * 1024**3, ram_available_bytes=3 * 1024**3)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    done = run("--snapshot", str(path))
    assert done.returncode == 1
    assert "[✗] gpt-oss-20b: does not fit on this machine" in done.stdout
    assert "would run with at least" in done.stdout
    assert "No gpt-oss model fits this machine" in done.stdout


def test_probe_save_writes_a_snapshot_the_doctor_can_evaluate(tmp_path: Path) -> None:
    target = tmp_path / "me.json"
    done = run("probe", "--save", str(target))
    assert done.returncode == 0 and f"snapshot saved to {target}" in done.stderr
    assert serialize.load(target).os.system  # valid and loadable
    # A live run measures host bandwidth by default where no module figure is readable (a
    # saved snapshot never does): compare like with like.
    live = json.loads(run("--json", "--no-measure-bandwidth").stdout)
    replayed = json.loads(run("--snapshot", str(target), "--json").stdout)
    assert [v["status"] for v in replayed["verdicts"]] == [v["status"] for v in live["verdicts"]]


def test_probe_without_save_prints_the_snapshot_json() -> None:
    done = run("probe")
    assert done.returncode == 0
    assert json.loads(done.stdout)["schema_version"] == 1


@pytest.mark.parametrize(("content", "message"), [
    pytest.param("{oops", "not valid JSON", id="corrupt JSON"),
    pytest.param('{"os": {}}', "os.system: missing", id="incomplete snapshot"),
    pytest.param(None, "unknown field 'colour'", id="unknown field"),
    pytest.param(None, "must not be negative", id="negative size"),
])
def test_bad_snapshot_files_give_one_line_and_exit_two(tmp_path: Path, content: str | None,
                                                       message: str) -> None:
    path = tmp_path / "bad.json"
    if content is None:
        data = json.loads(_saved("h100-80gb", tmp_path).read_text())
        if "unknown" in message:
            data["colour"] = "blue"
        else:
            data["disk"]["free_bytes"] = -1
        content = json.dumps(data)
    path.write_text(content)
    _assert_one_line_error(run("--snapshot", str(path)), 2, message)


def test_missing_snapshot_file_and_bad_save_folder(tmp_path: Path) -> None:
    _assert_one_line_error(run("--snapshot", str(tmp_path / "nope.json")), 2, "cannot read")
    _assert_one_line_error(run("probe", "--save", str(tmp_path / "no" / "dir.json")), 2,
                           "does not exist")
    assert not (tmp_path / "no").exists()


def test_unknown_option_is_a_usage_error() -> None:
    _assert_one_line_error(run("--frobnicate"), 2, "No such option")
