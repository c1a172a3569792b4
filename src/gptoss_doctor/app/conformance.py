"""The ``bench conformance`` service: how well an OpenAI-compatible server speaks harmony.

Discovery as for every endpoint run (``app.endpoint.connect``), then the probes and checks
of ``bench.conformance``, and a results file (suite ``conformance``) in the endpoint
envelope: the server, its model, and one verdict per check with its method and evidence.
``--engine llama-server`` serves the model first (``app.served.conformance``) and records
what was served. The exit status is 1 when a check failed (docs/conformance.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gptoss_doctor import __version__, catalog
from gptoss_doctor.app.endpoint import EndpointRun, connect
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.app.options import EndpointOptions
from gptoss_doctor.app.records import now
from gptoss_doctor.bench import conformance, conformance_probes, results
from gptoss_doctor.bench import endpoint as ep
from gptoss_doctor.bench.records import EngineConfig, ModelFacts
from gptoss_doctor.probe import snapshot as take_snapshot
from gptoss_doctor.probe.serialize import to_dict
from gptoss_doctor.serde import to_json

SUITE = "conformance"


def _model(model_id: str, facts: ModelFacts | None) -> dict[str, Any]:
    if facts is not None:
        return {**to_json(facts), "id": model_id}
    return {"path": None, "file_name": Path(model_id).name or model_id, "name": model_id,
            "id": model_id, "size_bytes": None, "architecture": None, "file_type": None,
            "synthetic": None, "sha256": None, "format": None,
            "gpt_oss": catalog.match_name(model_id)}


def run(options: EndpointOptions, feedback: Feedback, facts: ModelFacts | None = None,
        force: bool = True) -> EndpointRun:
    """Every probe against the server, every check judged; the results record. ``force``
    False: plain requests (``--unforced``, for a real model)."""
    endpoint, info, model_id, key = connect(options)
    feedback.note(f"{endpoint.base_url} ({info.host_class}) serves {model_id}; "
                  "probing its harmony handling")
    with feedback.task("conformance", 4) as task:
        probes = conformance_probes.run_probes(endpoint, model_id, lambda label: task.update(
            description=label, advance=1), force)
    verdicts = conformance.evaluate(probes)
    snap = take_snapshot()
    record: dict[str, Any] = {
        "kind": results.RESULTS_KIND, "schema_version": results.SCHEMA_VERSION,
        "tool_version": __version__, "created_at": now(), "suite": SUITE,
        "status": "complete", "machine": to_dict(snap),
        "software": {"python": snap.os.python_version, "client": ep.client_version(),
                     "server": info.headers.get("server"), "backends": []},
        "model": _model(model_id, facts),
        "endpoint": {"url": endpoint.base_url, "host_class": info.host_class,
                     "api": "chat.completions", "model_id": model_id,
                     "models": list(info.models), "headers": info.headers,
                     "lmstudio": info.lmstudio, "is_lmstudio": info.is_lmstudio,
                     "lmstudio_version": None, **key},
        "config": {**to_json(EngineConfig(engine="endpoint",
                                          settings_source="the server's own settings")),
                   "timeout_s": options.timeout_s, "checks": list(conformance.CHECKS)},
        "conformance": {"checks": [v.as_json() for v in verdicts],
                        "counts": conformance.counts(verdicts),
                        "rendered_prompt": probes.rendered, "forced": probes.forced}}
    record["key_properties"] = results.key_properties(record)
    failed = [v for v in verdicts if v.status == "fail"]
    return EndpointRun(record, "complete", len(failed),
                       f"{failed[0].check}: {failed[0].evidence}" if failed else None)
