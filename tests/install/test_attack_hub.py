"""A mirror's ``HF_ENDPOINT`` may carry ``user:password@``: the Hub's error lines name the
endpoint, and must not name the password (it is not a registered secret: only HF_TOKEN is).
Port 9 on loopback refuses connections, so each call fails at once with "cannot reach"."""

from __future__ import annotations

import pytest

from gptoss_doctor.install import hub

ENDPOINT = "http://alice:s3cretpass@127.0.0.1:9/mirror/?key=qs3cret"


def _said(error: hub.HubError) -> str:
    return f"{error.message} {error.hint or ''}"


def test_a_dataset_listing_error_hides_the_endpoints_credentials() -> None:
    with pytest.raises(hub.HubError) as caught:
        hub.dataset_files("owner/name", "runs", endpoint=ENDPOINT, token=None)
    said = _said(caught.value)
    assert "cannot reach http://127.0.0.1:9/mirror" in said
    assert "s3cretpass" not in said and "alice" not in said and "qs3cret" not in said


def test_a_model_listing_error_hides_the_endpoints_credentials() -> None:
    with pytest.raises(hub.HubError) as caught:
        hub.remote_files("openai/gpt-oss-20b", None, endpoint=ENDPOINT)
    said = _said(caught.value)
    assert "127.0.0.1:9" in said and "s3cretpass" not in said and "alice" not in said


@pytest.mark.parametrize(("endpoint", "shown"), [
    (None, None), ("https://huggingface.co/", "https://huggingface.co"),
    ("https://u:p@hf-mirror.example/", "https://hf-mirror.example"),
])
def test_shown_endpoint(endpoint: str | None, shown: str | None) -> None:
    assert hub.shown_endpoint(endpoint) == shown
