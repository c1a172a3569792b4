"""Redaction leaks found by reading the rules as an attacker: a Windows network path names
its file server (``\\\\fs01\\models\\…``), which says as much about who shared a run as a
URL's host does. Paths as Windows writes them for a model on a network share."""

from __future__ import annotations

import json

import pytest

from gptoss_doctor.redact import Context, redact

CONTEXT = Context(users=("alice",), homes=("/home/alice",), hostnames=("alicebox",))


@pytest.mark.parametrize(("text", "expected"), [
    ("\\\\acme-nas01\\models\\gpt-oss-20b.gguf", "\\\\<host>\\models\\gpt-oss-20b.gguf"),
    ("\\\\10.1.2.3\\share\\x.gguf", "\\\\<private-ip>\\share\\x.gguf"),
    ("loaded from \\\\FS01.corp\\m\\x", "loaded from \\\\<host>\\m\\x"),
    ("\\\\?\\C:\\models\\x.gguf", "\\\\?\\C:\\models\\x.gguf"),  # a device path, no host
    ("\\\\.\\pipe\\llama", "\\\\.\\pipe\\llama"),
])
def test_a_unc_paths_server_is_removed(text: str, expected: str) -> None:
    redaction = redact({"model": {"path": text}}, CONTEXT)
    assert redaction.document["model"]["path"] == expected
    assert redact(redaction.document, CONTEXT).removed == ()  # idempotent


def test_a_unc_path_inside_json_text_is_removed_too() -> None:
    inner = json.dumps({"path": "\\\\acme-nas01\\models\\x.gguf"})  # backslashes doubled
    document = redact({"error": f"server said {inner}"}, CONTEXT).document
    assert "acme-nas01" not in json.dumps(document)


@pytest.mark.parametrize(("text", "expected"), [
    ("usage: server --api-key sk_live_1234567890abcdef12345 --port 8080",
     "usage: server --api-key <secret> --port 8080"),
    ("mcp-server --token abcdefgh1234", "mcp-server --token <secret>"),
    ("db --password hunter2hunter2", "db --password <secret>"),  # low entropy, still a secret
    ("--client-secret    Zx9-Qq", "--client-secret    <secret>"),
    ("--max-tokens 131072 --tokenizer o200k", "--max-tokens 131072 --tokenizer o200k"),
    ("--api-key --verbose", "--api-key --verbose"),  # no value: the next flag
])
def test_a_secret_flags_value_after_a_space_is_removed(text: str, expected: str) -> None:
    """``--api-key=X`` was removed (a key and ``=``); ``--api-key X`` as a command line
    writes it (an MCP or llama-server usage line quoted in an error) was not."""
    redaction = redact({"error": text}, CONTEXT)
    assert redaction.document["error"] == expected
    assert redact(redaction.document, CONTEXT).removed == ()
