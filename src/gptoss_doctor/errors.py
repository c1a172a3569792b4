"""Error types shared by every layer.

Each layer raises its own subclass carrying a one-line ``message`` and an actionable
``hint``; the CLI turns them (and known third-party errors) into one line on stderr and an
exit code, never a traceback unless ``GPTOSS_DEBUG=1``.
"""

from __future__ import annotations


class DoctorError(Exception):
    """Base error: ``message`` says what went wrong, ``hint`` how to fix it."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(DoctorError):
    """Bad input from the user (a corrupt file, an impossible option): exit code 2."""

    exit_code = 2


class SnapshotError(UsageError):
    """A saved hardware snapshot cannot be read or does not validate."""


class ProbeError(DoctorError):
    """The probe could not run at all (individual readers only ever add notes)."""
