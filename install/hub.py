"""The Hugging Face Hub: the only module that imports ``huggingface_hub``.

huggingface_hub gives us repository metadata (sizes and the LFS sha256 of every file),
download URLs, the user's token, offline mode and the cache of earlier downloads. The byte
transfer itself is ours (``install.download``): the client never checks content hashes and
cannot resume across processes (each attempt writes a process-unique temporary file that is
deleted or orphaned; docs/design.md, "Hub protocol and client behaviour"), and a 12 GB
download must do both.

For ``share`` and ``publish --from`` it also lists a dataset's files and commits new ones
(``dataset_files``, ``commit_files``), with the token given from ``HF_TOKEN`` only, never
the login huggingface_hub would find on its own (docs/sharing.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gptoss_doctor.errors import DoctorError

MAX_NAME_CHARS = 1024
MAX_PART_BYTES = 255  # NAME_MAX on Linux and macOS
_DRIVE = re.compile(r"[A-Za-z]:")  # "C:x" would leave the folder on Windows
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1, or SHA-256 object format
_LISTING_HINT = "the repository listing is not trustworthy; report it to the repository owner"


class HubError(DoctorError):
    """The Hub could not tell us about a repository, or told us something unsafe."""


@dataclass(frozen=True, slots=True)
class RemoteFile:
    repo: str
    path: str
    size_bytes: int
    sha256: str | None  # None for small non-LFS files
    commit: str
    git_sha1: str | None = None  # the git object id of a non-LFS file (its only checksum)


def remote_files(repo: str, wanted: tuple[str, ...] | None, *, endpoint: str | None,
                 revision: str = "main") -> tuple[RemoteFile, ...]:
    """Metadata of ``wanted`` files (all files when None) at ``revision``.

    Every name, size and checksum in the listing is checked (``check_name``) before anything
    is planned: one unsafe entry fails the whole listing, for GGUF and MLX repositories alike.
    """
    info = _model_info(repo, revision, endpoint)
    commit = str(info.sha)
    siblings: dict[str, RemoteFile] = {}
    for sibling in info.siblings or []:
        remote = _remote_file(repo, commit, sibling)
        siblings[remote.path] = remote
    names = wanted if wanted is not None else tuple(sorted(siblings))
    missing = [name for name in names if name not in siblings]
    if missing:
        raise HubError(f"{repo} has no file {_shown(missing[0])}")
    return tuple(siblings[name] for name in names)


def _model_info(repo: str, revision: str, endpoint: str | None) -> Any:
    """``model_info`` with file metadata; the client's errors become one ``HubError``."""
    import huggingface_hub
    from huggingface_hub import errors

    api = huggingface_hub.HfApi(endpoint=endpoint)
    where = shown_endpoint(endpoint) or "huggingface.co"
    try:
        return api.model_info(repo, revision=revision, files_metadata=True)
    except errors.GatedRepoError:
        raise HubError(f"{repo} is gated", f"accept its terms at https://huggingface.co/{repo}"
                       " and set HF_TOKEN") from None
    except errors.RepositoryNotFoundError:
        raise HubError(f"repository {repo} not found on {where}",
                       "check the name; private repositories need HF_TOKEN") from None
    except errors.RevisionNotFoundError:
        raise HubError(f"revision {revision} of {repo} not found") from None
    except errors.OfflineModeIsEnabled:
        raise HubError("HF_HUB_OFFLINE=1 and these weights are not on disk",
                       "connect and unset HF_HUB_OFFLINE, or give --model-path") from None
    except errors.HfHubHTTPError as exc:
        raise HubError(f"the Hub answered an error for {repo}: {exc}") from None
    # network errors escape as httpx2.* (docs/design.md, "Hub protocol and client behaviour")
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("httpx2", "httpx", "httpcore", "requests"):
            raise HubError(f"cannot reach {where} ({type(exc).__name__})",
                           "check the connection, or set HF_HUB_OFFLINE=1 to use files "
                           "already on disk") from None
        raise


def shown_endpoint(endpoint: str | None) -> str | None:
    """``HF_ENDPOINT`` as messages may show it: without the ``user:password@`` a mirror's
    URL may carry (never printed), the query and a trailing slash."""
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path.rstrip('/')}"


def _remote_file(repo: str, commit: str, sibling: Any) -> RemoteFile:
    """One listed file, checked: its name becomes a local path, its sha256 a file name."""
    name = check_name(sibling.rfilename, repo)
    lfs = sibling.lfs
    size = sibling.size if sibling.size is not None else (lfs.size if lfs else 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise HubError(f"the Hub lists an impossible size for {name} in {repo}",
                       _LISTING_HINT)
    sha256 = _checksum(lfs.sha256 if lfs else None, _SHA256, name, repo)
    git_sha1 = None if lfs else _checksum(getattr(sibling, "blob_id", None), _GIT_OID, name,
                                          repo)
    return RemoteFile(repo, name, size, sha256, commit, git_sha1)


def _checksum(value: object, pattern: re.Pattern[str], name: str, repo: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise HubError(f"the Hub lists a malformed checksum for {name} in {repo}",
                       _LISTING_HINT)
    return value


def check_name(name: object, repo: str) -> str:
    """``name`` when it is a safe relative file name inside a repository; else ``HubError``.

    A listed name becomes a path under the models folder, so it must be relative POSIX with
    no empty, ``.`` or ``..`` part, no backslash, no drive (``C:``), no control or other
    non-printable character, and bounded in length (a part at most 255 bytes, as on disk).
    """
    if not isinstance(name, str) or not name:
        raise HubError(f"the Hub lists a file without a name in {repo}", _LISTING_HINT)
    parts = name.split("/")
    unsafe = (
        len(name) > MAX_NAME_CHARS
        or "\\" in name
        or not name.isprintable()
        or any(part in ("", ".", "..") or _DRIVE.match(part)
               or len(part.encode("utf-8", "surrogatepass")) > MAX_PART_BYTES
               for part in parts))
    if unsafe:
        raise HubError(f"the Hub lists an unsafe file name {_shown(name)} in {repo}; refused",
                       _LISTING_HINT)
    return name


def _shown(name: str) -> str:
    """A hostile name made safe to print: escaped (``repr``) and shortened."""
    return repr(name if len(name) <= 80 else name[:80] + "…")


def cached_file(repo: str, path: str, cache_dir: Path) -> Path | None:
    """A copy already in the Hugging Face cache (any revision the cache knows as main)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, path, cache_dir=str(cache_dir))
    return Path(found) if isinstance(found, str) else None


def file_url(remote: RemoteFile, endpoint: str | None) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(remote.repo, remote.path, revision=remote.commit, endpoint=endpoint)


def request_headers() -> dict[str, str]:
    """User agent plus the user's token when there is one (never printed or stored)."""
    # Documented public API, not re-exported in a way mypy sees.
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    headers: dict[str, str] = build_hf_headers()
    return headers


# --- datasets: shared results (``gptoss-doctor share`` and ``publish --from``) ---

MAX_LISTED = 20_000  # entries of one dataset folder read before the listing is refused


@dataclass(frozen=True, slots=True)
class DatasetFile:
    """One file of a dataset as its listing gives it (name checked, not yet trusted)."""

    path: str
    size_bytes: int
    sha256: str | None  # LFS files only
    git_sha1: str | None  # regular files only
    commit: str


def dataset_files(repo: str, folder: str, *, endpoint: str | None,
                  token: str | None) -> tuple[DatasetFile, ...]:
    """Every file under ``folder`` of dataset ``repo`` at its current commit (none when the
    folder does not exist yet). The dataset must exist; names are checked (``check_name``),
    and a listing longer than ``MAX_LISTED`` is refused."""
    import huggingface_hub

    api = huggingface_hub.HfApi(endpoint=endpoint)
    with _dataset_errors(repo, endpoint, "read"):
        commit = str(api.dataset_info(repo, token=token or False).sha)
        found: list[DatasetFile] = []
        try:
            for entry in api.list_repo_tree(repo, folder, recursive=True, repo_type="dataset",
                                            revision=commit, token=token or False):
                if len(found) >= MAX_LISTED:
                    raise HubError(f"dataset {repo} lists more than {MAX_LISTED} files under "
                                   f"{folder}/; refused", _LISTING_HINT)
                if isinstance(entry, huggingface_hub.RepoFile):
                    found.append(_dataset_file(repo, commit, entry))
        except huggingface_hub.errors.EntryNotFoundError:
            return ()  # nothing shared yet
    return tuple(found)


def _dataset_file(repo: str, commit: str, entry: Any) -> DatasetFile:
    name = check_name(entry.path, repo)
    size = entry.size
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise HubError(f"the Hub lists an impossible size for {_shown(name)} in {repo}",
                       _LISTING_HINT)
    lfs = entry.lfs
    sha256 = _checksum(lfs.sha256 if lfs else None, _SHA256, name, repo)
    git_sha1 = None if lfs else _checksum(entry.blob_id, _GIT_OID, name, repo)
    return DatasetFile(name, size, sha256, git_sha1, commit)


def commit_files(repo: str, contents: dict[str, bytes], message: str, *,
                 endpoint: str | None, token: str) -> str:
    """Add ``contents`` (path in the repository -> bytes) to dataset ``repo`` in one commit;
    the commit's id."""
    import huggingface_hub

    api = huggingface_hub.HfApi(endpoint=endpoint)
    operations = [huggingface_hub.CommitOperationAdd(path_in_repo=path, path_or_fileobj=data)
                  for path, data in contents.items()]
    with _dataset_errors(repo, endpoint, "write to"):
        info = api.create_commit(repo, operations, commit_message=message, repo_type="dataset",
                                 token=token)
    return str(info.oid)


def dataset_file_url(repo: str, remote: DatasetFile, endpoint: str | None) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo, remote.path, repo_type="dataset", revision=remote.commit,
                      endpoint=endpoint)


def token_headers(token: str | None) -> dict[str, str]:
    """User agent, plus ``token`` when given (never the token huggingface_hub finds itself)."""
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    headers: dict[str, str] = build_hf_headers(token=token or False)
    return headers


@contextmanager
def _dataset_errors(repo: str, endpoint: str | None, doing: str) -> Iterator[None]:
    """The client's errors about dataset ``repo`` as one ``HubError`` line each (the token
    never appears: the client's messages are not repeated)."""
    from huggingface_hub import errors

    where = shown_endpoint(endpoint) or "https://huggingface.co"
    try:
        yield
    except errors.RepositoryNotFoundError:
        raise HubError(f"dataset {repo} not found on {where} (or the token cannot see it)",
                       f"create it at {where}/new-dataset, or check the name and HF_TOKEN"
                       ) from None
    except errors.OfflineModeIsEnabled:
        raise HubError(f"HF_HUB_OFFLINE is set: cannot {doing} dataset {repo}",
                       "unset HF_HUB_OFFLINE") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a malformed answer
        raise HubError(f"{where} answered about dataset {repo} in a form the client cannot "
                       f"read ({type(exc).__name__})", _LISTING_HINT) from None
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise HubError(f"the Hub refused to let this token {doing} dataset {repo} "
                           f"(HTTP {status})", "set HF_TOKEN to a token with write access "
                           "to it (huggingface.co/settings/tokens)") from None
        raise HubError(f"the Hub answered HTTP {status} for dataset {repo}") from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("httpx2", "httpx", "httpcore", "requests"):
            raise HubError(f"cannot reach {where} ({type(exc).__name__})",
                           "check the connection and HF_ENDPOINT") from None
        raise
