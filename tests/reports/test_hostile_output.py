"""Hostile strings on the way out: secrets never leave, the terminal and the page show text
only, and nothing is written over a device node.

Each class is fixed at one choke point: ``secrets.scrub`` (every form of a registered
secret), ``reports.terminal_text`` (everything printed), ``reports.html.render`` (every
string on the page) and ``files.write_text`` (every file written).
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from gptoss_doctor import secrets
from gptoss_doctor.bench import results
from gptoss_doctor.files import write_text
from gptoss_doctor.reports.html import render
from gptoss_doctor.reports.terminal_text import plain, safe

from conftest import FIXTURES
from openai_server import ServerState, serve

KEY = "sk-live/9f+Ab=Z-hostile"  # a slash, a plus and an equals sign: JSON and URLs differ
ANSI = "\x1b[2J\x1b]0;pwned\x07"  # clear the screen, set the window title
MARKUP = "[bold red]x[/] [/]"
BIDI = "gpu\u202etxt.exe"


def _forms(secret: str) -> list[str]:
    return [secret, json.dumps(secret)[1:-1], json.dumps(secret)[1:-1].replace("/", "\\/"),
            urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)]


def _leaks(text: str, secret: str = KEY) -> list[str]:
    return [form for form in _forms(secret) if form in text]


@pytest.fixture
def registered() -> Iterator[str]:
    secrets.register(KEY)
    yield KEY
    secrets.forget_all()


@pytest.mark.parametrize("form", _forms(KEY), ids=["raw", "json", "json-solidus", "url",
                                                   "url-plus"])
def test_every_form_of_a_registered_secret_is_scrubbed(registered: str, form: str) -> None:
    text = f'{{"error": "invalid api key: Bearer {form}"}}'
    assert _leaks(secrets.scrub(text)) == []
    assert secrets.REDACTED in secrets.scrub(text)


def test_short_or_empty_secrets_are_not_registered() -> None:
    secrets.register("")
    secrets.register("abc")
    assert secrets.scrub("abc abc") == "abc abc"
    secrets.forget_all()


@pytest.mark.parametrize("hostile", [ANSI, MARKUP, BIDI, "\x00\x7f\x9b31m"],
                         ids=["escape sequences", "rich markup", "bidi override", "C0 C1"])
def test_printed_text_shows_no_control_sequence_and_no_markup(hostile: str) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system=None, width=200)
    console.print(f"[bold]GPU[/]: {safe(hostile)}")  # must not raise (MarkupError on "[/]")
    shown = buffer.getvalue()
    assert "\x1b]" not in shown and "\x1b[2J" not in shown and "\u202e" not in shown
    assert "\x00" not in plain(hostile) and "\x9b" not in plain(hostile)
    if hostile == MARKUP:
        assert "[bold red]x[/]" in shown  # shown as typed, not interpreted


def test_results_files_never_hold_a_registered_secret(registered: str, tmp_path: Path) -> None:
    record = json.loads((FIXTURES / "results" / "synthetic-tiny-cpu.json").read_text())
    record["model"]["name"] = f"model {KEY}"
    record["software"]["system_info"] = json.dumps(KEY)  # JSON-escaped once already
    target = tmp_path / "r.json"
    results.save(record, target)
    assert _leaks(target.read_text(encoding="utf-8")) == []


def test_the_html_page_neutralises_bidi_and_escape_and_holds_no_secret(registered: str
                                                                      ) -> None:
    record = results.load(FIXTURES / "results" / "synthetic-tiny-cpu.json")
    record["machine"]["gpus"] = [{**g, "name": BIDI + ANSI} for g in record["machine"]["gpus"]]
    record["machine"]["cpu"]["brand"] = f"CPU {KEY} {BIDI}"
    record["model"]["file_name"] = f"{BIDI}{ANSI}.gguf"
    page = render([record], baseline=0, verdicts=[[]])
    assert "\u202e" not in page and "\x1b" not in page and "\x07" not in page
    assert _leaks(page) == []
    assert "\\u202e" in page  # shown, visibly, instead


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_doctor", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_an_endpoint_key_echoed_by_the_server_never_reaches_stderr_or_files(
        tmp_path: Path) -> None:
    """The server answers 401 echoing the key JSON-escaped, names its model and a header
    after the key: neither the error line nor the results file nor the page holds it."""
    state = ServerState(api_key="the-right-key", model=f"gpt-oss-20b {KEY}",
                        extra_headers={"X-Echo": urllib.parse.quote(KEY, safe="")})
    with serve(state) as url:
        refused = _run("bench", "speed", "--endpoint", url, "--api-key-env", "MY_KEY",
                       env={"MY_KEY": KEY})
        state.api_key = KEY
        out = tmp_path / "speed.json"
        ran = _run("bench", "speed", "--endpoint", url, "--api-key-env", "MY_KEY", "--reps",
                   "1", "--tests", "pp16,tg4", "-o", str(out), env={"MY_KEY": KEY})
    assert refused.returncode != 0 and "401" in refused.stderr
    assert _leaks(refused.stdout + refused.stderr) == []
    assert ran.returncode == 0, ran.stderr
    assert _leaks(ran.stdout + ran.stderr + out.read_text(encoding="utf-8")) == []
    page = tmp_path / "page.html"
    assert _run("report", str(out), "-o", str(page)).returncode == 0
    assert _leaks(page.read_text(encoding="utf-8")) == []


def test_a_key_no_http_header_can_carry_is_a_usage_error() -> None:
    done = _run("bench", "speed", "--endpoint", "http://127.0.0.1:9/v1", "--api-key-env",
                "MY_KEY", env={"MY_KEY": "sk-é-\x1b[2J"})
    assert done.returncode == 2 and "cannot carry" in done.stderr
    assert "\x1b[2J" not in done.stderr and "sk-é" not in done.stderr


def test_a_hub_token_in_an_error_line_is_scrubbed(tmp_path: Path) -> None:
    """HF_TOKEN is registered at start-up: an error message echoing it is scrubbed."""
    token = "hf_" + "x" * 30
    done = _run("report", str(tmp_path / f"{token}.json"), env={"HF_TOKEN": token})
    assert done.returncode == 2
    assert token not in done.stderr and secrets.REDACTED in done.stderr


def _hostile_snapshot(tmp_path: Path) -> Path:
    probed = _run("probe")
    snapshot = json.loads(probed.stdout)
    snapshot["cpu"]["brand"] = f"CPU {ANSI}{MARKUP}{BIDI}"
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(snapshot), encoding="utf-8")
    return path


def test_the_doctor_prints_hostile_snapshot_strings_as_text(tmp_path: Path) -> None:
    done = _run("--snapshot", str(_hostile_snapshot(tmp_path)))
    assert done.returncode in (0, 1, 2), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    shown = done.stdout + done.stderr
    assert "\x1b" not in shown and "\u202e" not in shown


def _device_target() -> Path:
    target = Path("/dev/null")
    if not target.exists() or not stat.S_ISCHR(os.stat(target).st_mode):
        pytest.skip("no /dev/null character device here")
    return target


@pytest.mark.parametrize("args", [
    pytest.param(("report", str(FIXTURES / "results" / "synthetic-tiny-cpu.json"), "-o"),
                 id="report -o"),
    pytest.param(("probe", "--save"), id="probe --save"),
    pytest.param(("synth", "tiny", "-o"), id="synth -o"),
    pytest.param(("bench", "tools", "--regrade",
                  str(FIXTURES / "results" / "synthetic-tiny-tools.json"), "-o"),
                 id="bench tools --regrade -o"),
])
def test_device_nodes_are_refused_not_replaced(args: tuple[str, ...]) -> None:
    device = _device_target()
    done = _run(*args, str(device))
    assert done.returncode == 2, done.stderr
    assert "not a regular file" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_a_file_write_never_replaces_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(Exception, match="not a regular file"):
        write_text(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_report_dash_o_dash_writes_the_page_to_stdout() -> None:
    done = _run("report", str(FIXTURES / "results" / "synthetic-tiny-cpu.json"), "-o", "-")
    assert done.returncode == 0 and done.stdout.lstrip().startswith("<!DOCTYPE html>")
