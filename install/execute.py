"""Carrying out an ``InstallPlan``: the engine build and the weight files.

Only this module (and ``download``) touches the disk or the network for an install. Every
failure ends in a ``DoctorError`` with one line and a fix; nothing half-written is left where
it would be used (downloads are renamed into place only once verified; pip's own log is kept).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from gptoss_doctor.errors import DoctorError
from gptoss_doctor.install import download, hub, verify
from gptoss_doctor.install.install_plan import EngineStep, FileStep, InstallPlan

LOG_TAIL_LINES = 12


class EngineInstallError(DoctorError):
    """pip could not install or build the engine."""


class PlacementError(DoctorError):
    """A file would be written outside its target folder."""


def run_engine_step(step: EngineStep, log_dir: Path,
                    runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
                    ) -> Path | None:
    """Run the pip command (if any); the full log is kept, its tail shown on failure."""
    if step.action == "keep":
        return None
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"engine-{dt.datetime.now():%Y%m%d-%H%M%S}.log"
    env = {**os.environ, **dict(step.env)}
    done = runner(list(step.command), capture_output=True, text=True, env=env, check=False)
    log.write_text(f"$ {' '.join(step.command)}\n{done.stdout}\n{done.stderr}")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-LOG_TAIL_LINES:])
        raise EngineInstallError(
            f"installing {step.engine} failed (pip exit {done.returncode}); last lines:\n{tail}",
            f"full log: {log}")
    return log


def fetch_files(plan: InstallPlan, endpoint: str | None, partial_dir: Path, hash_cache: Path,
                progress: Callable[[str, int, int], None] | None = None) -> list[Path]:
    """Download or resume what the plan says; returns every file's local path, in order.

    The one place downloaded files are placed: every destination is checked to lie inside
    its target folder (``placed_path``) before any byte of any file is fetched.
    """
    paths = [Path(s.local_path) if s.action == "reuse" else placed_path(s) for s in plan.files]
    headers = hub.request_headers() if any(f.action != "reuse" for f in plan.files) else {}
    for step, target in zip(plan.files, paths, strict=True):
        if step.action != "reuse" and step.sha256 is None and step.git_sha1:
            remote = hub.RemoteFile(step.repo, step.path, step.size_bytes, None, step.commit,
                                    step.git_sha1)
            download.fetch_small(hub.file_url(remote, endpoint), headers, target,
                                 step.size_bytes, step.git_sha1)
        elif step.action != "reuse":
            if step.sha256 is None:
                raise download.DownloadError(f"the Hub publishes no checksum for {step.path}",
                                             "this file cannot be verified")
            remote = hub.RemoteFile(step.repo, step.path, step.size_bytes, step.sha256,
                                    step.commit)
            download.fetch(hub.file_url(remote, endpoint), headers, target, step.size_bytes,
                           step.sha256, partial_dir, _per_file(progress, step.path))
            verify.remember(target, step.sha256, hash_cache)
    return paths


def placed_path(step: FileStep) -> Path:
    """Where a download of ``step`` may be written: its ``local_path``, which the plan built
    as ``<target folder>/<remote name>``, once the name is safe (``hub.check_name``) and the
    path, symbolic links resolved, stays inside that folder. Defence in depth: the Hub
    listing was checked when it was read."""
    name = hub.check_name(step.path, step.repo)
    parts = PurePosixPath(name).parts
    path = Path(step.local_path)
    if len(path.parts) <= len(parts) or path.parts[-len(parts):] != parts:
        raise PlacementError(f"the plan puts {step.path} at {step.local_path}, not under "
                             "its own name", "this is a bug; please report it")
    folder = path.parents[len(parts) - 1]
    # The file itself is replaced, never followed: resolve the folder it lands in.
    landing = path.parent.resolve() / path.name
    if not landing.is_relative_to(folder.resolve()):
        raise PlacementError(f"{step.path} would be written outside {folder} (to {landing})",
                             "a link inside the models folder leads elsewhere; remove it")
    return path


def _per_file(progress: Callable[[str, int, int], None] | None,
              name: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        progress(name, done, total)

    return report

