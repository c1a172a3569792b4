"""Sharing results through a Hugging Face dataset: ``share`` uploads runs, ``fetch_collection``
downloads a dataset's runs for ``publish --from`` (docs/sharing.md).

A run is stored as ``runs/<sha256>.json``: the results file loaded (and so validated and
upgraded to the current schema), redacted unless asked not to, scrubbed of every registered
secret, and written as canonical JSON (keys sorted, one-space indent, UTF-8, a final
newline); the name is the sha256 of exactly those bytes. Many people can add to one
collection without conflicts, sharing the same run twice adds nothing, and a downloader
checks every file against its name.

The token comes from ``HF_TOKEN`` only (huggingface_hub's stored login is not used): it is
registered with ``secrets`` before anything is printed, and never stored. A dataset is
hostile input: its listing is checked name by name (``install.hub.check_name``), only
``runs/<sha256>.json`` entries are taken, each at most ``MAX_RUN_BYTES`` and at most
``MAX_RUNS`` of them, and each is written as ``<sha256>.json`` in the folder given, the
name built from the checked digest, never from the listing.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gptoss_doctor import secrets, settings
from gptoss_doctor.app.feedback import Feedback
from gptoss_doctor.bench import results
from gptoss_doctor.errors import UsageError
from gptoss_doctor.files import write_text
from gptoss_doctor.install import download, hub
from gptoss_doctor.redact import redact

SPEC = re.compile(r"hf://datasets/(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
                  r"/[A-Za-z0-9][A-Za-z0-9._-]{0,95})/?")
SPEC_HINT = "give --to hf://datasets/OWNER/NAME (a dataset on the Hugging Face Hub)"
RUNS = "runs"
RUN_NAME = re.compile(r"runs/(?P<digest>[0-9a-f]{64})\.json")
MAX_RUNS = 10_000  # runs one collection may hold; a longer listing is refused
MAX_RUN_BYTES = results.LIMITS.max_bytes  # what the results loader reads at most
MAX_TOTAL_BYTES = 4 * 1024**3


class ShareError(UsageError):
    """A bad ``hf://`` spec, no token, or a results file that cannot be shared (exit 2)."""


@dataclass(frozen=True, slots=True)
class ShareOptions:
    files: tuple[Path, ...]
    to: str  # hf://datasets/OWNER/NAME
    redact: bool = True


@dataclass(frozen=True, slots=True)
class SharedRun:
    source: str  # the local file
    path: str  # runs/<sha256>.json in the dataset
    removed: tuple[str, ...]  # what redaction removed (empty with --no-redact)
    uploaded: bool  # False: the dataset already had this run


@dataclass(frozen=True, slots=True)
class Shared:
    repo: str
    url: str
    redacted: bool
    runs: tuple[SharedRun, ...]
    commit: str | None  # None when nothing was new


def parse_spec(spec: str) -> str:
    """``OWNER/NAME`` from ``hf://datasets/OWNER/NAME``; ``ShareError`` otherwise."""
    match = SPEC.fullmatch(spec)
    if match is None or ".." in match["repo"] or "--" in match["repo"]:
        raise ShareError(f"{spec[:100]!r} is not a Hugging Face dataset", SPEC_HINT)
    return match["repo"]


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a run is stored as (and named by)."""
    text = json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return secrets.scrub(text).encode("utf-8")


def run_path(data: bytes) -> str:
    return f"{RUNS}/{hashlib.sha256(data).hexdigest()}.json"


def prepare(path: Path, redacting: bool) -> tuple[bytes, tuple[str, ...]]:
    """The stored form of the results file at ``path`` and what redaction removed."""
    record = results.load(path)  # one line for a bad file, or one of a newer schema
    removed: tuple[str, ...] = ()
    if redacting:
        redaction = redact(record)
        record, removed = redaction.document, redaction.removed
    data = canonical(record)
    _check_loads(data, path)
    return data, removed


def _check_loads(data: bytes, source: Path) -> None:
    """What is uploaded must load as a results file again (``publish`` reads it so)."""
    with tempfile.TemporaryDirectory(prefix="gptoss-share-") as folder:
        target = Path(folder) / "run.json"
        write_text(target, data.decode("utf-8"))
        try:
            results.load(target)
        except results.ResultsError as exc:
            raise ShareError(f"{source}: the redacted copy no longer loads ("
                             f"{exc.message.replace(str(target), 'run')})",
                             "report it; --no-redact shares the file as it is") from None


def share(options: ShareOptions, feedback: Feedback) -> Shared:
    """Upload every file of ``options`` (redacted unless told not to) that the dataset does
    not have yet, in one commit."""
    repo = parse_spec(options.to)
    if not options.files:
        raise ShareError("no results files given", "gptoss-doctor share RESULTS.json... --to "
                         "hf://datasets/OWNER/NAME")
    token = secrets.hub_token()
    if token is None:
        raise ShareError("no Hugging Face token: set HF_TOKEN to a token that can write to "
                         f"{repo}", "create one at https://huggingface.co/settings/tokens")
    stored: dict[str, bytes] = {}
    runs: list[tuple[Path, str, tuple[str, ...]]] = []
    with feedback.task("checking and redacting" if options.redact else "checking",
                       total=len(options.files)) as task:
        for path in options.files:
            data, removed = prepare(path, options.redact)
            name = run_path(data)
            stored[name] = data
            runs.append((path, name, removed))
            task.update(advance=1)
    endpoint = settings.current().hf_endpoint
    with feedback.task(f"listing {repo}"):
        present = {f.path for f in hub.dataset_files(repo, RUNS, endpoint=endpoint,
                                                     token=token)}
    new = {name: data for name, data in stored.items() if name not in present}
    commit = None
    if new:
        message = f"Add {len(new)} gptoss-doctor run{'s' if len(new) > 1 else ''}"
        with feedback.task(f"uploading {len(new)} run(s) to {repo}"):
            commit = hub.commit_files(repo, new, message, endpoint=endpoint, token=token)
    shared = tuple(SharedRun(str(path), name, removed, name in new)
                   for path, name, removed in runs)
    return Shared(repo, dataset_url(endpoint, repo), options.redact, shared, commit)


def dataset_url(endpoint: str | None, repo: str) -> str:
    """The dataset's page, without any credentials a mirror's ``HF_ENDPOINT`` may carry."""
    parts = urlsplit(endpoint or "https://huggingface.co")
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}/datasets/{repo}"


def fetch_collection(spec: str, folder: Path,
                     progress: Callable[[str], None] | None = None) -> list[Path]:
    """Download every ``runs/<sha256>.json`` of the dataset ``spec`` names into ``folder``
    (created if missing); the local paths, sorted. A file already there with the right
    content is not downloaded again; one whose content does not match its name is skipped
    (and said)."""
    say = progress or (lambda _text: None)
    repo = parse_spec(spec)
    token = secrets.hub_token()  # only needed for a private dataset
    endpoint = settings.current().hf_endpoint
    listed = hub.dataset_files(repo, RUNS, endpoint=endpoint, token=token)
    runs = _runs(listed, repo, say)
    folder.mkdir(parents=True, exist_ok=True)
    headers = hub.token_headers(token)
    paths = []
    for number, remote in enumerate(runs, 1):
        digest = RUN_NAME.fullmatch(remote.path)["digest"]  # type: ignore[index]
        dest = folder / f"{digest}.json"
        if not (dest.is_file() and _sha256(dest) == digest):
            say(f"downloading run {number} of {len(runs)} from {repo}")
            url = hub.dataset_file_url(repo, remote, endpoint)
            if remote.sha256 is not None:
                download.fetch(url, headers, dest, remote.size_bytes, remote.sha256,
                               partial_dir=folder / ".partial")
            else:
                download.fetch_small(url, headers, dest, remote.size_bytes,
                                     remote.git_sha1 or "")
        if _sha256(dest) != digest:
            dest.unlink()
            say(f"skipped {remote.path}: its content does not match its name")
            continue
        paths.append(dest)
    return sorted(paths)


def _runs(listed: tuple[hub.DatasetFile, ...], repo: str, say: Callable[[str], None]
          ) -> list[hub.DatasetFile]:
    """The listed runs that may be downloaded: named by a digest, within the limits."""
    runs = [f for f in listed if RUN_NAME.fullmatch(f.path)]
    if len(listed) > len(runs):
        say(f"skipped {len(listed) - len(runs)} file(s) in {repo} not named "
            f"{RUNS}/<sha256>.json")
    if len(runs) > MAX_RUNS:
        raise ShareError(f"dataset {repo} holds {len(runs)} runs; at most {MAX_RUNS} are read")
    large = [f for f in runs if f.size_bytes > MAX_RUN_BYTES]
    if large:
        say(f"skipped {len(large)} run(s) in {repo} larger than {MAX_RUN_BYTES >> 20} MiB")
        runs = [f for f in runs if f.size_bytes <= MAX_RUN_BYTES]
    if sum(f.size_bytes for f in runs) > MAX_TOTAL_BYTES:
        raise ShareError(f"dataset {repo} holds more than {MAX_TOTAL_BYTES >> 30} GiB of runs;"
                         " refused")
    return runs


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
