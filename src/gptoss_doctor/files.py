"""Writing files the user named: atomically, and never over something that is not a file.

Every file the tool writes (results, reports, snapshots, recipes, hash caches, small
downloads) goes through ``write_text`` or ``write_bytes``: a temporary file beside the
target, then a rename, so a failure never leaves a half-written file. An existing target that
is not a regular file (``/dev/null``, a FIFO, a socket, a folder) is refused with one line:
renaming over a device node would replace it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gptoss_doctor.errors import UsageError

STDOUT = Path("-")


def check_target(path: Path) -> Path:
    """``path`` resolved, after checking it may be written: its folder exists and it is a
    regular file or absent. ``UsageError`` (one line) otherwise."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise UsageError(f"{path} is {kind}; give a file name",
                         "use -o - to write to standard output" if kind != "a folder"
                         else None)
    resolved = path.resolve()
    if not resolved.parent.is_dir():
        raise UsageError(f"folder {path.parent} does not exist")
    return resolved


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; the resolved path written."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; the resolved path written."""
    target = check_target(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
