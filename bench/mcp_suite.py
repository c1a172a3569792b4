"""The ``mcp`` category's tools: per attempt, the reference MCP server with the case's
starting state, plus the servers of the user's MCP configuration when asked for.

``McpToolbox.attempt(case)`` (a ``tool_run.Toolbox``) writes the case's ``setup`` to a
file, starts the reference server (``bench.mcp_reference``, over stdio, in a fresh
temporary folder) and every configured server, offers the model the reference server's
tools that the case names plus every tool of the configured servers (names made unique by
``mcp_client``: the reference server's keep theirs), and stops them all when the attempt
ends. Starting them for every attempt keeps attempts independent: no state, and no crash,
carries over. A server that fails gives one line through ``note`` and fails the attempt.

The MCP SDK is optional (the ``mcp`` extra): ``toolbox`` says how to install it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from gptoss_doctor.bench.mcp_config import REFERENCE, ServerSpec, reference
from gptoss_doctor.bench.tool_suite import Case
from gptoss_doctor.errors import DoctorError, UsageError
from gptoss_doctor.files import write_text

TIMEOUT_S = 30.0  # as mcp_client.TIMEOUT_S, which cannot be imported without the SDK
REFERENCE_TIMEOUT_S = 30.0
"""The reference server's bound whatever ``timeout_s`` says: it is ours and answers in
milliseconds, but starting Python with the SDK can take seconds on a busy machine, and a
short ``--mcp-timeout`` is meant for the user's servers."""


class McpToolbox:
    """Where the ``mcp`` cases' tools come from (``tool_run.Toolbox``)."""

    def __init__(self, servers: Sequence[ServerSpec] = (), timeout_s: float = TIMEOUT_S,
                 note: Callable[[str], None] | None = None) -> None:
        self.servers = tuple(servers)
        self.timeout_s = timeout_s
        self.note = note or (lambda text: None)

    @contextmanager
    def attempt(self, case: Case) -> Iterator[Any]:
        from gptoss_doctor.bench import mcp_client

        with tempfile.TemporaryDirectory(prefix="gptoss-mcp-") as folder:
            setup = write_text(Path(folder) / "setup.json", json.dumps(case.setup or {}))
            own = replace(reference(setup, Path(folder) / "work"),
                          timeout_s=max(self.timeout_s, REFERENCE_TIMEOUT_S))
            servers = [own, *self.servers]
            keep = {REFERENCE: frozenset(t.name for t in case.tools)}
            try:
                with mcp_client.connect(servers, self.timeout_s, keep) as live:
                    yield live
            except DoctorError as exc:
                self.note(f"{case.id}: {exc.message}")
                raise


def toolbox(servers: Sequence[ServerSpec] = (), timeout_s: float = TIMEOUT_S,
            note: Callable[[str], None] | None = None) -> McpToolbox:
    """An ``McpToolbox``, or ``UsageError`` saying how to install the MCP SDK."""
    try:
        from gptoss_doctor.bench import mcp_client  # noqa: F401  (is the SDK installed?)
    except ImportError:
        raise UsageError("the mcp category needs the MCP Python SDK",
                         "pip install 'gptoss-doctor[mcp]'") from None
    return McpToolbox(servers, timeout_s, note)
