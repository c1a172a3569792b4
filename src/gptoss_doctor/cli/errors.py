"""One table that turns known errors into one actionable line and an exit code.

Tracebacks are shown only with ``GPTOSS_DEBUG=1``.
"""

from __future__ import annotations

import errno

import click

from gptoss_doctor.errors import DoctorError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def explain(exc: BaseException) -> tuple[str, str | None, int]:
    """(message, hint, exit code) for ``exc``."""
    if isinstance(exc, DoctorError):
        return exc.message, exc.hint, exc.exit_code
    if isinstance(exc, click.exceptions.UsageError):
        return exc.format_message(), "see `gptoss-doctor --help`", EXIT_USAGE
    if isinstance(exc, click.exceptions.ClickException):
        return exc.format_message(), None, EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", None, EXIT_INTERRUPTED
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the disk is full", "free some space and run the command again", EXIT_FAILED
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename}", None, EXIT_FAILED
    return (f"internal error: {type(exc).__name__}: {exc}",
            "set GPTOSS_DEBUG=1 for the traceback and report it", EXIT_FAILED)
