"""Reading mcp.json (LM Studio's and Cursor's notation) without the MCP SDK.

The example servers are the ones LM Studio's documentation shows (lmstudio.ai/docs/app/mcp:
the Hugging Face server by ``url`` with an ``Authorization`` header) and the usual stdio
form (``command``, ``args``, ``env``) that the same notation uses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gptoss_doctor import secrets
from gptoss_doctor.bench import mcp_config
from gptoss_doctor.errors import UsageError


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_stdio_and_http_servers_as_lm_studio_documents_them(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {
        "hf-mcp-server": {"url": "https://huggingface.co/mcp",
                          "headers": {"Authorization": "Bearer hf_abcdefgh"}},
        "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"],
                   "env": {"MEMORY_FILE_PATH": "/tmp/memory.json", "API_KEY": "k-123456"},
                   "icon": "x"},
        "off": {"command": "npx", "disabled": True},
        "remote": {"url": "https://u:pw-987654@mcp.example/mcp?token=tk-24680"}}})
    try:
        hf, memory, remote = mcp_config.read_config(path)
        assert remote.url == "https://u:pw-987654@mcp.example/mcp?token=tk-24680"
        assert (hf.name, hf.transport, hf.url) == ("hf-mcp-server", "streamable-http",
                                                   "https://huggingface.co/mcp")
        assert dict(hf.headers) == {"Authorization": "Bearer hf_abcdefgh"}
        assert (memory.transport, memory.command, memory.args) == (
            "stdio", "npx", ("-y", "@modelcontextprotocol/server-memory"))
        assert memory.source == str(path)
        # header values and secret-named env values are scrubbed; other env values are not
        said = secrets.scrub("Bearer hf_abcdefgh k-123456 /tmp/memory.json "
                             f"{remote.url}")
        assert "hf_abcdefgh" not in said and "k-123456" not in said
        assert "pw-987654" not in said and "tk-24680" not in said
        assert "/tmp/memory.json" in said
    finally:
        secrets.forget_all()


def test_the_reference_server_runs_with_this_python(tmp_path: Path) -> None:
    spec = mcp_config.reference(tmp_path / "setup.json", tmp_path / "work")
    assert spec.name == mcp_config.REFERENCE and spec.command == sys.executable
    assert spec.args == ("-m", "gptoss_doctor.bench.mcp_reference", "--root",
                         str(tmp_path / "work"), "--setup", str(tmp_path / "setup.json"))
    assert mcp_config.default_path(tmp_path) == tmp_path / "mcp.json"


@pytest.mark.parametrize(("data", "says"), [
    pytest.param([1], "no \"mcpServers\" object", id="a list"),
    pytest.param({"mcpServers": []}, "no \"mcpServers\" object", id="servers as a list"),
    pytest.param({"mcpServers": {"a": "npx"}}, "is not an object", id="a server as text"),
    pytest.param({"mcpServers": {"a": {"command": ""}}}, "must be a program name",
                 id="an empty command"),
    pytest.param({"mcpServers": {"a": {"command": "x", "env": {"A": 1}}}},
                 "\"env\" must map names to strings", id="an env value that is a number"),
    pytest.param({"mcpServers": {"a": {"command": "x", "cwd": 3}}}, "\"cwd\"",
                 id="a cwd that is a number"),
    pytest.param({"mcpServers": {"a": {"url": "http://h/mcp", "headers": ["x"]}}},
                 "\"headers\" must map", id="headers as a list"),
    pytest.param({"mcpServers": {mcp_config.REFERENCE: {"command": "x"}}},
                 "cannot be used", id="the reference server's name"),
    pytest.param({"mcpServers": {f"s{i}": {"command": "x"} for i in range(33)}},
                 "at most 32", id="too many servers"),
])
def test_hostile_configurations_are_refused_with_one_line(tmp_path: Path, data: object,
                                                           says: str) -> None:
    with pytest.raises(UsageError) as caught:
        mcp_config.read_config(write(tmp_path, data))
    assert says in caught.value.message and "\n" not in caught.value.message


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"mcp\.json"):
        mcp_config.read_config(tmp_path / "mcp.json")
    with pytest.raises(UsageError):
        mcp_config.read_config(tmp_path)  # a folder
