"""Resumable, verified downloads of large weight files.

The partial file is ``<models>/.partial/<sha256>.part``: named by content, so a later run
(after a dropped connection, Ctrl-C or a kill) asks for ``Range: bytes=<have>-`` and carries
on. The digest is computed while writing (the prefix already on disk is hashed first), the
finished file must match the Hub's LFS sha256 and size, and only then is it renamed into
place. A mismatch deletes the partial file: nothing corrupt is ever left where it would be
used.

The server is not trusted either (huggingface_hub's own downloader keeps the same hygiene):

- credentials (``Authorization``, cookies) are dropped on a redirect to another scheme, host
  or port, as requests and huggingface_hub do; urllib's stock handler keeps them;
- transient failures (connection refused or reset, a body cut short, 408, 429, 5xx) are
  retried with exponential backoff (``Retry-After`` honoured, up to a bound), each retry
  resuming from the bytes already written; ``RETRIES`` in a row that get nowhere, or
  ``MAX_ATTEMPTS`` in all, end the run with an error that says the next run resumes;
- never more than the listed size is written: reading stops there, a response whose
  ``Content-Length`` or ``Content-Range`` disagrees with the listing is refused before a byte
  is written, and a body that runs on past the listed size is an error.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

from gptoss_doctor import files
from gptoss_doctor.errors import DoctorError

CHUNK_BYTES = 1 << 20
GIB = 1024**3
TIMEOUT_S = 60.0
MAX_SMALL_BYTES = 64 << 20  # a non-LFS file read into memory; the Hub's own limit is 10 MB
RETRIES = 4  # retries in a row that get no further; the next run resumes anyway
MAX_ATTEMPTS = 100  # per file and run, however much each attempt got
BACKOFF_S = 1.0  # the first wait; doubled for each further retry
MAX_BACKOFF_S = 8.0  # no wait is longer, whatever Retry-After asks (huggingface_hub's bound)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_T = TypeVar("_T")

Opener = Callable[..., Any]  # urlopen's shape: (request, timeout=...) -> response
Sleep = Callable[[float], None]


class DownloadError(DoctorError):
    """A download did not complete; ``resumable`` says whether the next run continues it,
    ``transient`` whether trying again in a moment may succeed (``retry_after_s``: the
    server's own ``Retry-After``)."""

    def __init__(self, message: str, hint: str | None = None, resumable: bool = False,
                 transient: bool = False, retry_after_s: float | None = None) -> None:
        super().__init__(message, hint)
        self.resumable = resumable
        self.transient = transient
        self.retry_after_s = retry_after_s


class CredentialSafeRedirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirect handling (at most 10 hops), minus the credentials when a redirect
    leaves the origin (scheme, host, port), and only to http(s)."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int,
                         msg: str, headers: http.client.HTTPMessage, newurl: str,
                         ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.URLError("refused a redirect to a non-HTTP(S) address")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        # The stock handler copies every header but the body's (unredirected ones it drops).
        if new is not None and origin(new.full_url) != origin(req.full_url):
            for name in [n for n in new.headers if n.lower() in CREDENTIAL_HEADERS]:
                del new.headers[name]
        return new


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1  # unparsable: never the same origin as a valid URL
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


def open_url(request: urllib.request.Request, timeout: float) -> Any:
    """``urlopen`` with ``CredentialSafeRedirects`` (the environment's proxies still apply)."""
    return urllib.request.build_opener(CredentialSafeRedirects).open(request, timeout=timeout)


def backoff_s(retry: int, retry_after_s: float | None = None) -> float:
    """The wait before retry number ``retry`` (0-based): 1, 2, 4, … s, or the server's
    ``Retry-After``; never more than ``MAX_BACKOFF_S``."""
    wait = retry_after_s if retry_after_s is not None else BACKOFF_S * 2**retry
    return min(max(wait, 0.0), MAX_BACKOFF_S)


def _retrying(attempt: Callable[[], _T], sleep: Sleep, retries: int,
              written: Callable[[], int] = lambda: 0) -> _T:
    """``attempt()``, tried again after a transient ``DownloadError``: up to ``retries`` times
    in a row without progress (``written()``, the bytes kept so far, grows: the count starts
    over, as in huggingface_hub's own downloader), and ``MAX_ATTEMPTS`` times in all."""
    failures = 0
    for _ in range(MAX_ATTEMPTS - 1):
        before = written()
        try:
            return attempt()
        except DownloadError as exc:
            if written() > before:
                failures = 0
            if not exc.transient or failures >= retries:
                raise
            sleep(backoff_s(failures, exc.retry_after_s))
            failures += 1
    return attempt()


def partial_path(partial_dir: Path, sha256: str) -> Path:
    if not _SHA256.fullmatch(sha256):  # it names a file: never a path from outside
        raise DownloadError(f"not a sha256: {sha256[:80]!r}", "the Hub listing is malformed")
    return partial_dir / f"{sha256}.part"


@dataclass
class _Partial:
    """The partial file and the digest of what it holds so far (updated while writing)."""

    path: Path
    digest: Any
    have: int

    @classmethod
    def load(cls, path: Path) -> _Partial:
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
        return cls(path, digest, size)

    def restart(self) -> None:
        self.path.unlink(missing_ok=True)
        self.digest, self.have = hashlib.sha256(), 0


def _retry_after(headers: Message | None) -> float | None:
    value = (headers.get("Retry-After") if headers is not None else None) or ""
    return float(value) if value.strip().isdigit() else None  # HTTP dates: our own backoff


def _open(opener: Opener, request: urllib.request.Request, name: str) -> Any:
    """The response, or a ``DownloadError`` that says whether a retry may help."""
    try:
        return opener(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(f"the server answered {exc.code} for {name}",
                            "run the command again later", resumable=True,
                            transient=exc.code in TRANSIENT_STATUS,
                            retry_after_s=_retry_after(exc.headers)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        # Refused, reset, timed out or closed early: worth another try. A name that does not
        # resolve, a bad certificate or a refused redirect is not.
        transient = isinstance(reason, (ConnectionError, TimeoutError,
                                        http.client.HTTPException))
        raise DownloadError(f"cannot reach the server for {name} ({_brief(reason)})",
                            "check the connection and run again to resume", resumable=True,
                            transient=transient) from None


def _brief(reason: object) -> str:
    """An error's text, escaped when it carries what a server sent (a bad status line)."""
    text = str(reason)
    return (text if text.isprintable() else repr(text))[:160]


def _read(stream: Any, limit: int, have: int, size: int, name: str) -> bytes:
    """Up to ``limit`` (and ``CHUNK_BYTES``) bytes of the body; a network failure is a
    transient ``DownloadError`` (the bytes so far stay and the retry resumes after them)."""
    try:
        chunk: bytes = stream.read(min(CHUNK_BYTES, limit))
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"the download of {name} broke off at {have / GIB:.2f} of "
                            f"{size / GIB:.2f} GiB ({_brief(exc)})",
                            "run again: it resumes where it stopped", resumable=True,
                            transient=True) from None
    return chunk[:limit]  # a stream may hand back more than asked


def _refuse(name: str, what: str) -> DownloadError:
    return DownloadError(f"refused {name}: {what}; nothing past the listed size was written",
                         "run again later; if it persists, the server is not serving the file "
                         "the Hub lists", resumable=True)


def _runs_on(stream: Any) -> bool:
    """Whether the body goes on past the listed size (failing to read past it is an end)."""
    try:
        return bool(stream.read(1))
    except (OSError, http.client.HTTPException):
        return False


def _check_response(stream: Any, have: int, size: int, name: str) -> bool:
    """Refuse, before a byte is written, a response that is not bytes ``have``..``size`` of
    the file. True when it is the whole file instead (the server ignored the range)."""
    headers = getattr(stream, "headers", None) or {}
    ranged = getattr(stream, "status", 200) == 206
    start = have if ranged else 0
    if ranged and headers.get("Content-Range"):
        got = _CONTENT_RANGE.fullmatch(headers["Content-Range"].strip())
        if got is None or int(got[1]) != start or int(got[2]) != size - 1 \
                or got[3] not in ("*", str(size)):
            raise _refuse(name, f"the server's Content-Range ({_brief(headers['Content-Range'])})"
                                f" disagrees with the bytes {start}-{size - 1}/{size} asked")
    length = headers.get("Content-Length")
    if length is not None and length.strip() != str(size - start):
        raise _refuse(name, f"the server's Content-Length ({_brief(length)}) disagrees with "
                            f"the {size - start} bytes left of the listed {size}")
    return not ranged


def _copy(stream: Any, part: _Partial, size: int, name: str,
          progress: Callable[[int, int], None] | None) -> None:
    """Append the body to the partial file, never past ``size`` bytes."""
    try:
        with open(part.path, "ab") as out:
            while part.have < size and (chunk := _read(stream, size - part.have, part.have,
                                                       size, name)):
                out.write(chunk)
                part.digest.update(chunk)
                part.have += len(chunk)
                if progress is not None:
                    progress(part.have, size)
    except OSError as exc:  # writing: reading failures arrive as DownloadError
        if exc.errno == errno.ENOSPC:
            raise DownloadError(
                f"the disk filled up after {part.have / GIB:.2f} GiB of {name}",
                "free some space and run again: the download resumes", resumable=True) from None
        raise DownloadError(f"cannot write {part.path} ({exc.strerror or exc})",
                            "check the folder's permissions", resumable=True) from None
    if part.have == size and _runs_on(stream):
        raise _refuse(name, f"the server sent more than the listed {size} bytes")
    if part.have < size:
        raise DownloadError(f"the download of {name} broke off at {part.have} of {size} bytes",
                            "run again: it resumes where it stopped", resumable=True,
                            transient=True)


def fetch(url: str, headers: dict[str, str], dest: Path, size: int, sha256: str,
          partial_dir: Path, progress: Callable[[int, int], None] | None = None,
          opener: Opener = open_url, sleep: Sleep = time.sleep, retries: int = RETRIES) -> None:
    """Download ``url`` to ``dest`` (``size`` bytes, ``sha256``), resuming a partial file;
    transient failures are retried (``retries`` times, waiting with ``sleep``)."""
    partial_dir.mkdir(parents=True, exist_ok=True)
    path = partial_path(partial_dir, sha256)
    if path.exists() and path.stat().st_size > size:
        path.unlink()  # longer than the file can be: not ours to continue
    part = _Partial.load(path)
    if progress is not None:
        progress(part.have, size)

    def attempt() -> None:
        request = urllib.request.Request(url, headers={**headers,
                                                       "Range": f"bytes={part.have}-"})
        with _open(opener, request, dest.name) as stream:
            if _check_response(stream, part.have, size, dest.name) and part.have:
                part.restart()  # the server ignored the range: start over, not append a copy
            _copy(stream, part, size, dest.name, progress)

    if part.have < size:
        _retrying(attempt, sleep, retries, lambda: part.have)
    if part.digest.hexdigest() != sha256:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{dest.name} does not match the Hub's sha256 "
                            f"(got {part.digest.hexdigest()[:12]}…, expected {sha256[:12]}…); "
                            "the bad file was removed", "run again to download it afresh")
    dest.parent.mkdir(parents=True, exist_ok=True)
    path.replace(dest)


def git_blob_sha1(data: bytes) -> str:
    """Git's object id of a file's content: what the Hub publishes for non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def fetch_small(url: str, headers: dict[str, str], dest: Path, size: int, git_sha1: str,
                opener: Opener = open_url, sleep: Sleep = time.sleep,
                retries: int = RETRIES) -> None:
    """Download a small non-LFS file (a config, a tokenizer) whole, check its git object id
    (the Hub publishes no sha256 for such files), then rename it into place. At most
    ``size`` bytes are kept; transient failures are retried as in ``fetch``."""
    if size > MAX_SMALL_BYTES:  # the Hub keeps anything bigger in LFS, with a sha256
        raise DownloadError(f"the Hub lists {dest.name} as a {size}-byte regular file",
                            "the repository listing is not trustworthy")

    def attempt() -> bytes:
        with _open(opener, urllib.request.Request(url, headers=headers), dest.name) as stream:
            _check_response(stream, 0, size, dest.name)
            return _read_small(stream, size, dest.name)

    data = _retrying(attempt, sleep, retries)
    if git_blob_sha1(data) != git_sha1:
        raise DownloadError(f"{dest.name} does not match the Hub's git object id "
                            f"({len(data)} of {size} bytes); nothing was written",
                            "run again to download it afresh")
    dest.parent.mkdir(parents=True, exist_ok=True)
    files.write_bytes(dest, data)


def _read_small(stream: Any, size: int, name: str) -> bytes:
    """The whole body, which must be exactly ``size`` bytes (never more is kept)."""
    data = b""
    while len(data) < size and (chunk := _read(stream, size - len(data), len(data), size,
                                               name)):
        data += chunk
    if len(data) == size and _runs_on(stream):
        raise _refuse(name, f"the server sent more than the listed {size} bytes")
    if len(data) < size:
        raise DownloadError(f"the download of {name} broke off at {len(data)} of {size} bytes",
                            "run again", transient=True)
    return data
