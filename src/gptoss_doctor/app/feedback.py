"""How services report progress without knowing the terminal: the ``Feedback`` interface.

The CLI passes a rich implementation (``reports.progress``); tests pass ``Silent``.
Every label may hold text from outside (file names, server ids): implementations escape it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Task(Protocol):
    """One progress bar."""

    def update(self, *, completed: int | None = None, total: int | None = None,
               description: str | None = None, advance: int | None = None) -> None: ...


class Feedback(Protocol):
    """Notes and progress bars on stderr."""

    def note(self, text: str) -> None:
        """One line for the user (not data)."""
        ...

    def task(self, label: str, total: int | None = None, *, size: bool = False
             ) -> AbstractContextManager[Task]:
        """A progress bar for the duration of a ``with`` block (``size``: bytes)."""
        ...


class _NoTask:
    def update(self, *, completed: int | None = None, total: int | None = None,
               description: str | None = None, advance: int | None = None) -> None:
        return None


class Silent:
    """Feedback that shows nothing: for tests and ``--json`` pipelines that want quiet."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def task(self, label: str, total: int | None = None, *, size: bool = False
             ) -> AbstractContextManager[Task]:
        return _quiet()


@contextmanager
def _quiet() -> Iterator[Task]:
    yield _NoTask()
