"""The ``publish`` service: many results files → the runs of a static site, and the site
written as one folder, atomically.

Files are loaded (migrated) by ``bench.results.load``. A file of a newer results schema
stops the whole build (exit 2, "upgrade gptoss-doctor": a site silently missing runs would
mislead); any other unreadable or invalid file is reported in one line and skipped, and the
command then exits 1 with the site written. A valid run of a suite the pages cannot show
yet (``SHOWN_SUITES``) is left out with a note. Every record is redacted (``redact.redact``)
unless the caller opts out (even then credential-shaped strings are replaced: an access
token is never published), and named by the sha256 of its published content, so the same
run given twice (or fetched twice from a collection) appears once.

``write_site`` builds the folder beside the destination and renames it into place: a
reader sees the old site or the new one, never half of one. The destination must be absent,
empty, or a site this command wrote (it has our ``index.json``): ``-o ~/Documents`` is
refused rather than replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from gptoss_doctor import secrets
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.bench import results
from gptoss_doctor.errors import UsageError
from gptoss_doctor.jsonin import MIB, Limits, read_json
from gptoss_doctor.redact import redact

SITE_KIND = "gptoss-doctor/site"
SITE_SCHEMA_VERSION = 1
# Suites the pages can show (the report's templates); a run of any other suite is left out
# with a note (exit 0).
SHOWN_SUITES = ("speed", "tools", "conformance")
INDEX_LIMITS = Limits(max_bytes=256 * MIB, max_depth=8, max_text=MIB)  # a site's index.json
ID_HEX = 16  # 64 bits of the content hash: unique among any collection people will build


@dataclass(frozen=True, slots=True)
class PublishOptions:
    files: tuple[Path, ...]
    destination: Path
    redact: bool = True
    source: str | None = None  # hf://datasets/OWNER/NAME: a shared collection to add


@dataclass(frozen=True, slots=True)
class PublishedRun:
    """One run on the site: its id (content hash), the record as published, its summary."""

    id: str
    record: dict[str, Any]
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Collected:
    runs: tuple[PublishedRun, ...]
    duplicates: int
    skipped: tuple[str, ...]  # one line per unreadable file (for the terminal, not the site)
    redacted: bool
    left_out: tuple[str, ...] = ()  # valid runs of a suite the pages cannot show yet
    removed: dict[str, int] = field(default_factory=dict)  # what redaction took: line → runs


def content_id(record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:ID_HEX]


def collect(options: PublishOptions, feedback: Feedback) -> Collected:
    """Every run to publish, redacted, deduplicated, newest first."""
    if options.source is not None:
        with tempfile.TemporaryDirectory(prefix="gptoss-publish-") as folder:
            from gptoss_doctor.app.share import fetch_collection

            fetched = fetch_collection(options.source, Path(folder), feedback.note)
            return _collect((*options.files, *fetched), options.redact, feedback)
    return _collect(options.files, options.redact, feedback)


def _collect(files: tuple[Path, ...], redacting: bool, feedback: Feedback) -> Collected:
    if not files:
        raise UsageError("give at least one results file (or --from a collection)",
                         "gptoss-doctor publish run.json -o site")
    runs: dict[str, PublishedRun] = {}
    skipped: list[str] = []
    left_out: list[str] = []
    removed: Counter[str] = Counter()
    duplicates = 0
    with feedback.task("reading results", total=len(files)) as task:
        for path in files:
            task.update(advance=1)
            read = _shown_record(path, skipped, left_out, feedback)
            if read is None:
                continue
            record = _publishable(read, redacting, removed)
            run_id = content_id(record)
            if run_id in runs:
                duplicates += 1
                continue
            runs[run_id] = PublishedRun(run_id, record, summary(record))
    if not runs:
        first = next(iter(skipped + left_out), None)
        raise UsageError("none of the results files could be read or shown", first)
    ordered = sorted(runs.values(), key=lambda r: (str(r.summary["date"] or ""), r.id),
                     reverse=True)
    return Collected(tuple(ordered), duplicates, tuple(skipped), redacting,
                     removed=dict(removed), left_out=tuple(left_out))


def _shown_record(path: Path, skipped: list[str], left_out: list[str], feedback: Feedback
                  ) -> dict[str, Any] | None:
    """The results file at ``path`` when the site shows its suite; else None, and why in
    ``skipped`` (it could not be read) or ``left_out`` (another suite), with a note.
    A file from a newer version of this tool ends the run."""
    try:
        record = results.load(path)
    except results.NewerSchemaError:
        raise
    except results.ResultsError as exc:
        skipped.append(exc.message)
        feedback.note(f"skipped: {exc.message}")
        return None
    if record["suite"] not in SHOWN_SUITES:
        left_out.append(f"{path.name}: a {record['suite']} run (the site shows "
                        f"{' and '.join(SHOWN_SUITES)} runs)")
        feedback.note(f"left out: {left_out[-1]}")
        return None
    return record


def _publishable(record: dict[str, Any], redacting: bool, removed: Counter[str]
                 ) -> dict[str, Any]:
    """``record`` as the site keeps it: every comparability key, then redacted (what was
    removed counted in ``removed``) or, without redaction, still without tokens."""
    # Files of older writers lack some comparability keys; the same function fills
    # them in that the writers use (stored values win).
    record = {**record, "key_properties": {**results.key_properties(record),
                                           **record["key_properties"]}}
    if redacting:
        redaction = redact(record)
        removed.update(set(redaction.removed))
        kept: dict[str, Any] = redaction.document
    else:
        kept = _without_tokens(record)
    return kept


def _without_tokens(value: Any) -> Any:
    """``value`` with every credential-shaped string (``secrets.TOKEN_PATTERNS``) replaced,
    keys included (a level's ``errors`` is keyed by the server's messages): ``--no-redact``
    publishes paths and hosts as recorded, never an access token."""
    if isinstance(value, dict):
        return {_without_tokens(key): _without_tokens(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_tokens(item) for item in value]
    if isinstance(value, str):
        for pattern in secrets.TOKEN_PATTERNS:
            value = pattern.sub(secrets.REDACTED, value)
    return value


def _first(tests: list[dict[str, Any]], kind: str) -> float | None:
    for test in tests:
        if test.get("kind") == kind and not test.get("depth") and test.get("mean_ts"):
            return float(test["mean_ts"])
    return None


def _ttft(record: dict[str, Any]) -> float | None:
    chat = record.get("chat") or {}
    if chat.get("ttft_mean_s") is not None:
        return float(chat["ttft_mean_s"])
    levels = [level for level in record.get("concurrency") or []
              if level.get("ttft_p50_s") is not None]
    return float(min(levels, key=lambda lv: lv["streams"])["ttft_p50_s"]) if levels else None


def _build(record: dict[str, Any]) -> str:
    software, engine = record.get("software") or {}, record["config"].get("engine")
    if engine == "mlx":
        return f"mlx {software.get('mlx') or '?'}, mlx-lm {software.get('mlx_lm') or '?'}"
    if "endpoint" in record:
        server = (record["endpoint"].get("headers") or {}).get("server")
        return str(server or software.get("server") or "server not named")
    if software.get("server"):
        return str(software["server"])
    return f"llama-cpp-python {software.get('llama_cpp_python') or '?'}"


def _settings(config: dict[str, Any]) -> str:
    names = (("n_gpu_layers", "ngl"), ("n_cpu_moe", "cpu-moe"), ("flash_attn", "fa"),
             ("threads", "threads"), ("n_ctx", "ctx"), ("n_batch", "batch"),
             ("prefill_step_size", "prefill step"), ("concurrency", "streams"))
    shown = []
    for key, name in names:
        value = config.get(key)
        if value is None or value == []:
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        shown.append(f"{name} {str(value).lower() if isinstance(value, bool) else value}")
    return ", ".join(shown)


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What the index shows of a run (and ``index.json`` holds): plain values only."""
    machine, model, config = record["machine"], record["model"], record["config"]
    gpus = machine.get("gpus") or []
    vram = [g.get("vram_total_bytes") for g in gpus if g.get("vram_total_bytes")]
    scores = (record.get("scores") or {}).get("overall") or {}
    roofline = record.get("roofline") or {}
    tg = _first(record.get("tests") or [], "tg")
    predicted = roofline.get("predicted_tokens_per_s")
    cond = record.get("conditions") or {}
    key_model = (record.get("key_properties") or {}).get("model")
    return {
        "date": record.get("created_at"), "suite": record["suite"], "status": record["status"],
        "cpu": (machine.get("cpu") or {}).get("brand"),
        "accelerators": [g.get("name") for g in gpus],
        "accelerator_memory_bytes": sum(vram) if vram else None,
        "unified_memory": any(g.get("unified_memory") for g in gpus),
        "ram_bytes": (machine.get("memory") or {}).get("ram_total_bytes"),
        "model": key_model or model.get("name") or model.get("file_name"),
        "synthetic": bool(model.get("synthetic")),
        "engine": config.get("engine"), "build": _build(record),
        "method": "endpoint" if "endpoint" in record else "in-process",
        "settings": _settings(config),
        "tg_ts": tg, "pp_ts": _first(record.get("tests") or [], "pp"), "ttft_s": _ttft(record),
        "pass_at_k": scores.get("pass_at_k"), "pass_hat_k": scores.get("pass_hat_k"),
        "k": config.get("repeats"),
        "bandwidth_bytes_per_s": roofline.get("bandwidth_bytes_per_s"),
        "predicted_tg_ts": predicted,
        "measured_over_predicted": round(tg / predicted, 3) if tg and predicted else None,
        "unclean": [n for n in ("throttled", "contended") if cond.get(n) is True],
        "conformance_checks": _check_counts(record),
    }


def _check_counts(record: dict[str, Any]) -> dict[str, int] | None:
    """A conformance run's checks counted by status ({"pass": 9, "fail": 2, ...})."""
    checks = (record.get("conformance") or {}).get("checks")
    if not isinstance(checks, list):
        return None
    return dict(Counter(str(c.get("status")) for c in checks if isinstance(c, dict)))


def check_destination(path: Path) -> Path:
    """``path`` resolved, if a site may be written there; one line otherwise."""
    target = path.resolve()
    if not target.parent.is_dir():
        raise UsageError(f"folder {path.parent} does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {path.parent}: permission denied")
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"{path} exists and is not a folder; give a new folder name")
    if target.is_dir() and any(target.iterdir()) and not _is_site(target):
        raise UsageError(f"{path} is a folder that holds something else than a published site",
                         "give a new or empty folder: publish replaces the whole folder")
    return target


def _is_site(folder: Path) -> bool:
    """Whether ``folder`` holds our ``index.json`` (read as hostile: a regular file of
    bounded size; a named pipe there would block a plain read for ever)."""
    try:
        index = read_json(folder / "index.json", INDEX_LIMITS)
    except UsageError:
        return False
    return isinstance(index, dict) and index.get("kind") == SITE_KIND


def write_site(destination: Path, pages: Mapping[str, str], feedback: Feedback) -> Path:
    """Write ``pages`` (relative POSIX path → text) as the folder ``destination``, atomically:
    built in a temporary folder beside it, then renamed over the old site."""
    target = check_destination(destination)
    try:
        building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp",
                                         dir=target.parent))
    except OSError as exc:  # a read-only or virtual file system (/proc)
        raise UsageError(f"cannot write in {destination.parent}: {exc.strerror or exc}") from None
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    try:
        with feedback.task("writing the site", total=len(pages)) as task:
            for name, text in pages.items():
                relative = PurePosixPath(name)
                if relative.is_absolute() or ".." in relative.parts:
                    raise ValueError(f"page outside the site: {name}")  # a bug, not input
                page = building.joinpath(*relative.parts)
                page.parent.mkdir(parents=True, exist_ok=True)
                page.write_text(text, encoding="utf-8")
                task.update(advance=1)
        building.chmod(0o755)  # mkdtemp's folder is private; a site is for reading
        if target.exists():
            target.rename(old)
        building.rename(target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        if old.exists() and not target.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target
