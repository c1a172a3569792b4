"""What every command does with its result: save it, print it as text or ``--json``, and
exit with the documented code. Data goes to stdout, messages to stderr, through the
terminal-safe, secret-scrubbing text functions."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from gptoss_doctor.bench import results
from gptoss_doctor.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED
from gptoss_doctor.files import STDOUT, check_target
from gptoss_doctor.reports.progress import TerminalFeedback
from gptoss_doctor.reports.terminal_text import plain
from gptoss_doctor.secrets import scrub


def feedback() -> TerminalFeedback:
    return TerminalFeedback()


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def note(text: str) -> None:
    click.echo(plain(text), err=True)


def echo(text: str) -> None:
    """One line of data on stdout (made terminal-safe)."""
    click.echo(plain(text))


def echo_json(data: Any) -> None:
    click.echo(scrub(json.dumps(data, indent=2)))


def results_target(suite: str, output: Path | None) -> Path:
    """The results file to write (default: gptoss-bench-<suite>-<time>.json here),
    checked before any work starts."""
    target = output or Path(f"gptoss-bench-{suite}-{dt.datetime.now():%Y%m%d-%H%M%S}.json")
    return target if target == STDOUT else check_target(target)


def save_results(record: dict[str, Any], target: Path) -> None:
    if target == STDOUT:
        echo_json(record)
    else:
        results.save(record, target)


def show(record: dict[str, Any], as_json: bool, target: Path, table: Table,
         extra_lines: tuple[str | None, ...] = ()) -> None:
    """The record as JSON, or its table, extra lines and where it was saved."""
    if as_json:
        if target != STDOUT:
            echo_json(record)
        return
    if target == STDOUT:
        return
    stdout_console().print(table)
    for line in extra_lines:
        if line:
            echo(line)
    echo(f"results: {target}")


def finish(status: str, failed: int, first_error: str | None, what: str) -> None:
    """Exit 130 after Ctrl-C and 1 when some requests or attempts failed; else return."""
    if status == "interrupted":
        note(f"interrupted: finished {what} were kept")
        sys.exit(EXIT_INTERRUPTED)
    if failed:
        note(f"{failed} {what[:-1]}(s) failed (kept and marked in the results): "
             f"{first_error or ''}")
        sys.exit(EXIT_FAILED)

