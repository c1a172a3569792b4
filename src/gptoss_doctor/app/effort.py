"""The ``bench effort`` service: is reasoning effort honoured, per engine and API?

Tool-use results files of one model run at different ``--reasoning`` efforts (in-process,
``--endpoint`` with Chat Completions' ``reasoning_effort`` or the Responses API's
``reasoning.effort``) are grouped and compared by ``bench.effort``: analysis tokens per
attempt and effort, one-sided Mann–Whitney and permutation tests between efforts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gptoss_doctor.bench import effort, results
from gptoss_doctor.errors import UsageError

KIND = "gptoss-doctor/effort"


def compare(files: tuple[Path, ...]) -> dict[str, Any]:
    """Every file loaded (tool-use results only, or one clear line) and compared."""
    if not files:
        raise UsageError("give tool-use results files",
                         "gptoss-doctor bench effort low.json medium.json high.json")
    records = [results.load(path) for path in files]
    for path, record in zip(files, records, strict=True):
        if record["suite"] != "tools":
            raise UsageError(f"{path} holds {record['suite']} results, not tool-use results")
    return {"kind": KIND, "files": [str(p) for p in files], "alpha": effort.ALPHA,
            "groups": effort.compare(records)}
