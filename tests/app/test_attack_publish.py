"""``publish --no-redact`` keeps paths and hosts but never publishes an access token
(docs/sharing.md): that holds for keys too. A load level's ``errors`` maps each server's
error message to its count, so a message that echoes a token is a key. The record is the
recorded tests/fixtures/results-publish/endpoint-load-sweep-zero.json with such an error planted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_doctor.app import publish
from gptoss_doctor.app.feedback import Silent

from conftest import FIXTURES

TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWx12"


def test_no_redact_replaces_a_token_in_a_key(tmp_path: Path) -> None:
    sweep = FIXTURES / "results-publish" / "endpoint-load-sweep-zero.json"
    record = json.loads(sweep.read_text())
    record["load"]["levels"][0]["total"]["errors"] = {f"401: bad token {TOKEN}": 3}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(record))
    collected = publish.collect(publish.PublishOptions((path,), tmp_path / "site",
                                                       redact=False), Silent())
    published = json.dumps([run.record for run in collected.runs])
    assert TOKEN not in published
    assert "401: bad token" in published  # the message itself is kept


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_destination_whose_index_is_a_named_pipe_is_refused_not_waited_on(
        tmp_path: Path) -> None:
    """``-o`` names a folder that holds something: it is replaced only if its index.json says
    it is a site. Reading a named pipe there waited for a writer for ever."""
    site = tmp_path / "site"
    site.mkdir()
    os.mkfifo(site / "index.json")
    run = FIXTURES / "results-publish" / "endpoint-load-sweep-zero.json"
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "publish", str(run), "-o",
                           str(site)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert "holds something else than a published site" in done.stderr
    assert "Traceback" not in done.stderr
