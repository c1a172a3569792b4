"""Resumable, verified downloads of large weight files.

The partial file is ``<models>/.partial/<sha256>.part``: named by content, so a later run
(after a dropped connection, Ctrl-C or a kill) asks for ``Range: bytes=<have>-`` and carries
on. The digest is computed while writing (the prefix already on disk is hashed first), the
finished file must match the Hub's LFS sha256 and size, and only then is it renamed into
place. A mismatch deletes the partial file: nothing corrupt is ever left where it would be
used.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gptoss_doctor.errors import DoctorError

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0


class DownloadError(DoctorError):
    """A download did not complete; ``resumable`` says whether the next run continues it."""

    def __init__(self, message: str, hint: str | None = None, resumable: bool = False) -> None:
        super().__init__(message, hint)
        self.resumable = resumable


def partial_path(partial_dir: Path, sha256: str) -> Path:
    return partial_dir / f"{sha256}.part"


def _prefix_digest(path: Path) -> tuple[hashlib._Hash, int]:
    """Hash what an earlier run left (exactly its recorded size)."""
    digest = hashlib.sha256()
    size = 0
    if path.exists():
        remaining = path.stat().st_size
        with open(path, "rb") as handle:
            while remaining and (block := handle.read(min(8 << 20, remaining))):
                digest.update(block)
                size += len(block)
                remaining -= len(block)
    return digest, size


def fetch(url: str, headers: dict[str, str], dest: Path, size: int, sha256: str,
          partial_dir: Path, progress: Callable[[int, int], None] | None = None,
          opener: Callable[..., object] = urllib.request.urlopen) -> None:
    """Download ``url`` to ``dest`` (``size`` bytes, ``sha256``), resuming a partial file."""
    partial_dir.mkdir(parents=True, exist_ok=True)
    part = partial_path(partial_dir, sha256)
    if part.exists() and part.stat().st_size > size:
        part.unlink()  # longer than the file can be: not ours to continue
    digest, have = _prefix_digest(part)
    if progress is not None:
        progress(have, size)
    if have < size:
        request = urllib.request.Request(url, headers={**headers, "Range": f"bytes={have}-"})
        try:
            response = opener(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"the server answered {exc.code} for {dest.name}",
                                "run the command again later", resumable=True) from None
        except (urllib.error.URLError, OSError) as exc:
            raise DownloadError(f"cannot reach the server for {dest.name} ({exc})",
                                "check the connection and run again to resume",
                                resumable=True) from None
        with response as stream:  # type: ignore[attr-defined]
            if getattr(stream, "status", 200) == 200 and have:
                # The server ignored the range: start over rather than append a second copy.
                digest, have = hashlib.sha256(), 0
                part.unlink(missing_ok=True)
            try:
                with open(part, "ab") as out:
                    while chunk := stream.read(CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        have += len(chunk)
                        if progress is not None:
                            progress(have, size)
            except (OSError, http.client.HTTPException) as exc:
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    raise DownloadError(
                        f"the disk filled up after {have / 1024**3:.2f} GiB of {dest.name}",
                        "free some space and run again: the download resumes",
                        resumable=True) from None
                raise DownloadError(f"the download of {dest.name} broke off at "
                                    f"{have / 1024**3:.2f} of {size / 1024**3:.2f} GiB ({exc})",
                                    "run again: it resumes where it stopped",
                                    resumable=True) from None
    if have != size:
        raise DownloadError(f"the download of {dest.name} broke off at {have} of {size} bytes",
                            "run again: it resumes where it stopped", resumable=True)
    if digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{dest.name} does not match the Hub's sha256 "
                            f"(got {digest.hexdigest()[:12]}…, expected {sha256[:12]}…); "
                            "the bad file was removed", "run again to download it afresh")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part.replace(dest)


def git_blob_sha1(data: bytes) -> str:
    """Git's object id of a file's content: what the Hub publishes for non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def fetch_small(url: str, headers: dict[str, str], dest: Path, size: int, git_sha1: str,
                opener: Callable[..., object] = urllib.request.urlopen) -> None:
    """Download a small non-LFS file (a config, a tokenizer) whole, check its git object id
    (the Hub publishes no sha256 for such files), then rename it into place."""
    try:
        with opener(urllib.request.Request(url, headers=headers),  # type: ignore[attr-defined]
                    timeout=TIMEOUT_S) as stream:
            data = stream.read()
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"the server answered {exc.code} for {dest.name}",
                            "run the command again later") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"cannot download {dest.name} ({exc})",
                            "check the connection and run again") from None
    if len(data) != size or git_blob_sha1(data) != git_sha1:
        raise DownloadError(f"{dest.name} does not match the Hub's git object id "
                            f"({len(data)} of {size} bytes); nothing was written",
                            "run again to download it afresh")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)

