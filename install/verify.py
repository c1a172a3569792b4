"""sha256 of large files, remembered by (path, size, mtime) so a re-run does not re-read 12 GB."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from gptoss_doctor.files import write_text


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done)
    return digest.hexdigest()


def _key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _load(cache_file: Path) -> dict[str, str]:
    try:
        data = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember(path: Path, digest: str, cache_file: Path) -> None:
    cache = _load(cache_file)
    cache[_key(path)] = digest
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    write_text(cache_file, json.dumps(cache))


def known_sha256(path: Path, cache_file: Path) -> str | None:
    """The digest recorded for this exact file (same size and mtime), if any."""
    return _load(cache_file).get(_key(path))


def cached_sha256(path: Path, cache_file: Path,
                  progress: Callable[[int], None] | None = None) -> str:
    known = known_sha256(path, cache_file)
    if known is not None:
        return known
    digest = sha256_file(path, progress)
    remember(path, digest, cache_file)
    return digest
