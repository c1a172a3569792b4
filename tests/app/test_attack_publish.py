"""``publish --no-redact`` keeps paths and hosts but never publishes an access token
(docs/sharing.md): that holds for keys too. A load level's ``errors`` maps each server's
error message to its count, so a message that echoes a token is a key. The record is the
recorded tests/fixtures/results/endpoint-load-sweep-zero.json with such an error planted."""

from __future__ import annotations

import json
from pathlib import Path

from gptoss_doctor.app import publish
from gptoss_doctor.app.feedback import Silent

from conftest import FIXTURES

TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWx12"


def test_no_redact_replaces_a_token_in_a_key(tmp_path: Path) -> None:
    record = json.loads((FIXTURES / "results" / "endpoint-load-sweep-zero.json").read_text())
    record["load"]["levels"][0]["total"]["errors"] = {f"401: bad token {TOKEN}": 3}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(record))
    collected = publish.collect(publish.PublishOptions((path,), tmp_path / "site",
                                                       redact=False), Silent())
    published = json.dumps([run.record for run in collected.runs])
    assert TOKEN not in published
    assert "401: bad token" in published  # the message itself is kept
