"""The Hugging Face Hub: the only module that imports ``huggingface_hub``.

huggingface_hub gives us repository metadata (sizes and the LFS sha256 of every file),
download URLs, the user's token, offline mode and the cache of earlier downloads. The byte
transfer itself is ours (``install.download``): the client never checks content hashes and
cannot resume across processes (each attempt writes a process-unique temporary file that is
deleted or orphaned; DESIGN.md appendix), and a 12 GB download must do both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gptoss_doctor.errors import DoctorError


class HubError(DoctorError):
    """The Hub could not tell us about a repository."""


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
    """Metadata of ``wanted`` files (all files when None) at ``revision``."""
    import huggingface_hub
    from huggingface_hub import errors

    api = huggingface_hub.HfApi(endpoint=endpoint)
    where = endpoint or "huggingface.co"
    try:
        info = api.model_info(repo, revision=revision, files_metadata=True)
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
    except Exception as exc:  # network errors escape as httpx2.* (DESIGN.md appendix)
        if type(exc).__module__.split(".")[0] in ("httpx2", "httpx", "httpcore", "requests"):
            raise HubError(f"cannot reach {where} ({type(exc).__name__})",
                           "check the connection, or set HF_HUB_OFFLINE=1 to use files "
                           "already on disk") from None
        raise
    siblings = {s.rfilename: s for s in info.siblings or []}
    names = wanted if wanted is not None else tuple(sorted(siblings))
    missing = [name for name in names if name not in siblings]
    if missing:
        raise HubError(f"{repo} has no file {missing[0]}")
    commit = str(info.sha)
    files = []
    for name in names:
        sibling = siblings[name]
        lfs = sibling.lfs
        files.append(RemoteFile(repo, name, int(sibling.size or (lfs.size if lfs else 0)),
                                lfs.sha256 if lfs else None, commit,
                                None if lfs else getattr(sibling, "blob_id", None)))
    return tuple(files)


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
