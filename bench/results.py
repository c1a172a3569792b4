"""Results files: one versioned JSON per run, written atomically, loaded with migrations.

Layout (``schema_version`` 1)::

    kind, schema_version, tool_version, created_at, suite ("speed"), status
    machine        the probe's snapshot
    software       python, llama-cpp-python and the embedded llama.cpp build, backends
    model          path, file, sha256, size, architecture, file type, synthetic
    config         engine settings, threads, reps, tests, seed
    load_buffers   MiB per buffer kind as llama.cpp reported them at load
    tests          every test with samples, mean, stddev, status, reason
    chat           TTFT and generation through a harmony prompt (or why it was skipped)
    memory         peak RSS; roofline           bytes per token, bandwidth, % for tg tests
    key_properties what must match for two runs to be compared

MLX runs (``config.engine`` "mlx") carry the model folder's digest, Metal's working set and
the wired limit, and mlx-lm's peak memory instead of llama.cpp's load buffers.

Runs against an OpenAI-compatible server (``config.engine`` "endpoint") keep the same
layout with what the client can know: an ``endpoint`` section (URL, host class, served
model id, identity headers, LM Studio's view, the API key's variable name — never the
key), ``concurrency`` (every request of every level) for speed, and ``status`` "partial"
when some requests failed; their model facts and engine settings may be null.

The ``tools`` suite shares the envelope (machine, software, model, config with the renderer,
reasoning effort, sampling and the suite's hash) and adds ``attempts`` (every raw completion
as token ids and text, the tool results fed back, the grade) and ``scores`` (pass@k, pass^k
and failure categories, overall and per category).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gptoss_doctor.errors import UsageError
from gptoss_doctor.files import write_text
from gptoss_doctor.jsonin import MIB, Limits, read_json, shown
from gptoss_doctor.secrets import scrub

RESULTS_KIND = "gptoss-doctor/results"
SCHEMA_VERSION = 2
# Version 2 (typed records): every engine setting, model fact and memory figure is present
# in every record, null where an engine or a model has none; in-process runs always carry
# ``load_buffers`` (null for MLX) and ``overridden_tensors``.
V2_CONFIG = ("threads", "n_ctx", "n_batch", "n_ubatch", "n_gpu_layers", "n_cpu_moe",
             "flash_attn", "swa_full", "use_mmap", "prefill_step_size", "device",
             "working_set_bytes", "wired_limit_bytes")
V2_MODEL = ("path", "name", "size_bytes", "architecture", "file_type", "synthetic", "sha256",
            "format", "gpt_oss", "n_tensors", "n_layers", "n_experts", "quantization", "dtype",
            "is_gpt_oss", "id")
V2_MEMORY = ("gpu_used_by_model_bytes", "gpu_note", "mlx_peak_memory_bytes")


def _v1_to_v2(record: dict[str, Any]) -> dict[str, Any]:
    """Fill in the keys version 2 always has (null where a version-1 writer left them out)."""
    def filled(section: Any, keys: tuple[str, ...]) -> Any:
        return {**{k: None for k in keys}, **section} if isinstance(section, dict) else section

    upgraded = {**record, "schema_version": 2,
                "config": filled(record.get("config"), V2_CONFIG),
                "model": filled(record.get("model"), V2_MODEL)}
    if "memory" in record:
        upgraded["memory"] = filled(record["memory"], V2_MEMORY)
    if "endpoint" not in record:
        upgraded.setdefault("load_buffers", None)
        upgraded.setdefault("overridden_tensors", {})
    return upgraded


# version -> function that upgrades a record of that version to the next one
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}
REQUIRED = ("kind", "schema_version", "suite", "machine", "software", "model", "config",
            "key_properties")
REQUIRED_BY_SUITE = {"speed": ("tests",), "tools": ("attempts", "scores"),
                     "conformance": ("conformance", "endpoint")}


class ResultsError(UsageError):
    """A results file that cannot be read, or belongs to something else."""


class NewerSchemaError(ResultsError):
    """A results file written by a newer gptoss-doctor (its schema version is higher)."""


def schema() -> dict[str, Any]:
    """The JSON Schema of results files (shipped with the package)."""
    from importlib import resources

    text = resources.files("gptoss_doctor.bench").joinpath(
        "schemas/results.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def key_properties(record: dict[str, Any]) -> dict[str, Any]:
    """The facts that decide whether two runs measure the same thing."""
    machine, model, config = record["machine"], record["model"], record["config"]
    common: dict[str, Any] = {
        "cpu": machine["cpu"]["brand"],
        "gpus": [g["name"] for g in machine["gpus"]],
        "engine": config["engine"],
        "backends": record["software"].get("backends", []),
        "model": f"gpt-oss-{model['gpt_oss']}" if model.get("gpt_oss")
        else model.get("name") or model.get("file_name"),
        "model_format": model.get("format", "gguf"),
        "model_sha256": model.get("sha256"),
        "model_file": model.get("file_name"),
        "synthetic": model.get("synthetic"),
        "threads": config.get("threads"),
        "n_gpu_layers": config.get("n_gpu_layers"),
        "n_cpu_moe": config.get("n_cpu_moe"),
        "flash_attn": config.get("flash_attn"),
        "n_batch": config.get("n_batch"),
        "n_ubatch": config.get("n_ubatch"),
    }
    if config["engine"] == "mlx":
        common["prefill_step_size"] = config.get("prefill_step_size")
    endpoint = record.get("endpoint")
    common["method"] = "endpoint" if endpoint else "in-process"
    if endpoint:
        common.update({"host_class": endpoint["host_class"], "model_id": endpoint["model_id"],
                       "server": endpoint["headers"].get("server"), "api": endpoint["api"]})
        if endpoint["host_class"] != "local":  # the snapshot is the client's, not the server's
            common.update({"cpu": None, "gpus": []})
        if record["suite"] == "speed":
            common["concurrency"] = config["concurrency"]
    if record["suite"] == "conformance":
        return {**common, "tests": [c["check"] for c in record["conformance"]["checks"]]}
    if record["suite"] == "tools":
        return {**common, "renderer": config["renderer"], "reasoning": config["reasoning"],
                "sampling": config["sampling"], "max_tokens": config["max_tokens"],
                "suite_sha256": config["suite"]["sha256"],
                "reasoning_back": reasoning_back(record),
                "tests": sorted({a["case"] for a in record["attempts"]})}
    return {**common, "tests": [t["name"] for t in record["tests"]]}


def reasoning_back(record: dict[str, Any]) -> bool:
    """Whether a tool-use run kept each turn's reasoning between tool calls: its config
    says so (in-process), else its turns do (over HTTP: a turn with reasoning that was not
    sent back)."""
    if "reasoning_back" in record["config"]:
        return bool(record["config"]["reasoning_back"])
    return not any(turn.get("reasoning_sent_back") is False
                   and (turn.get("message") or {}).get("reasoning")
                   for attempt in record["attempts"] for turn in attempt.get("turns") or ())


def save(record: dict[str, Any], path: Path) -> None:
    """Write atomically (a temporary file beside the target, then rename), with every
    registered secret scrubbed from every string, in any encoding JSON gives it."""
    write_text(path, scrub(json.dumps(record, indent=2)) + "\n")


# A results file keeps every raw completion of a tool-use run: the whole suite, five
# attempts of 4096-token turns, is about 30 MB. 64 MiB leaves room and still parses in
# seconds; one text (a completion, a tool result, a server's header) holds at most 1 MiB.
LIMITS = Limits(max_bytes=64 * MIB, max_depth=32, max_text=1 * MIB)
INVALID_HINT = "was it written by this version of gptoss-doctor?"


def load(path: Path) -> dict[str, Any]:
    """Read a results file, upgrading older schema versions; newer ones are refused.

    Results files are shared, so a file is hostile input: it is read through
    ``gptoss_doctor.jsonin`` (``LIMITS``) and checked against the JSON Schema, whose
    ``machine`` is the probe's snapshot, closed, complete and with text bounded as in
    snapshot files. Anything wrong is a ``ResultsError`` of one line; what is returned
    renders (``tests/bench/test_results_fuzz.py``).
    """
    data = read_json(path, LIMITS, kind="a JSON results file", error=ResultsError)
    if not isinstance(data, dict) or data.get("kind") != RESULTS_KIND:
        raise ResultsError(f"{path} is not a gptoss-doctor results file")
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise ResultsError(f"{path} has no valid schema_version")
    if version > SCHEMA_VERSION:
        raise NewerSchemaError(f"{path} uses results schema {version}; this gptoss-doctor "
                               f"reads up to {SCHEMA_VERSION}", "upgrade gptoss-doctor")
    record: dict[str, Any] = data
    while version < SCHEMA_VERSION:
        record = MIGRATIONS[version](record)
        version = record["schema_version"]
    suite_keys = REQUIRED_BY_SUITE.get(str(record.get("suite")), ())
    missing = [key for key in (*REQUIRED, *suite_keys) if key not in record]
    if missing:
        raise ResultsError(f"{path} lacks {', '.join(missing)}")
    problem = _problem(record)
    if problem is not None:
        raise ResultsError(f"{path} is not a valid results file: {problem}", INVALID_HINT)
    return record


@cache
def _validator() -> Any:
    """The schema's validator, the schema checked once: ``jsonschema.validate`` checks the
    schema against its meta-schema on every call, which took 95% of loading a file."""
    import jsonschema

    document = schema()
    validator = jsonschema.validators.validator_for(document)
    validator.check_schema(document)
    return validator(document)


def _problem(record: dict[str, Any]) -> str | None:
    """Where ``record`` breaks the schema, or what a schema cannot say; None if nowhere."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(record))
    if error is not None:  # the error jsonschema.validate would raise
        where = "/".join(str(part) for part in error.absolute_path) or "the top level"
        return f"{shown(where)}: {shown(error.message)}"
    if "endpoint" in record:
        try:  # the report shows the URL's host
            urlsplit(record["endpoint"]["url"])
        except ValueError as exc:
            return f"endpoint/url: {shown(str(exc))}"
    return None

