"""``share`` as text for people and as the ``--json`` envelope: each run, where it went
(or that the dataset had it), and what redaction removed from it."""

from __future__ import annotations

from typing import Any

from gptoss_doctor.app.share import Shared
from gptoss_doctor.serde import to_json

ENVELOPE_KIND = "gptoss-doctor/share"


def envelope(shared: Shared) -> dict[str, Any]:
    return {"kind": ENVELOPE_KIND, "schema_version": 1, **to_json(shared)}


def lines(shared: Shared) -> list[str]:
    uploaded = sum(run.uploaded for run in shared.runs)
    out = []
    for run in shared.runs:
        state = "uploaded" if run.uploaded else "already there"
        out.append(f"{run.source} -> {run.path} ({state})")
        if not shared.redacted:
            out.append("  not redacted (--no-redact)")
        elif run.removed:
            out.extend(f"  removed {line}" for line in run.removed)
        else:
            out.append("  nothing to redact")
    if shared.commit is None:
        out.append(f"{shared.url}: already has every run; nothing uploaded")
    else:
        out.append(f"{shared.url}: {uploaded} run(s) added in commit {shared.commit[:12]}")
    return out
