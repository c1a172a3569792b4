"""The terminal's ``Feedback``: rich progress bars and notes on stderr, markup-safe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from gptoss_doctor.app.feedback import Task
from gptoss_doctor.reports.terminal_text import safe


class _RichTask:
    def __init__(self, bar: Progress, task_id: object) -> None:
        self.bar, self.task_id = bar, task_id

    def update(self, *, completed: int | None = None, total: int | None = None,
               description: str | None = None, advance: int | None = None) -> None:
        self.bar.update(self.task_id,  # type: ignore[arg-type]
                        completed=completed, total=total, advance=advance,
                        description=None if description is None else safe(description))


class TerminalFeedback:
    """Progress on stderr; transient bars vanish when their work is done."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        self.console.print(safe(text))

    def task(self, label: str, total: int | None = None, *, size: bool = False
             ) -> AbstractContextManager[Task]:
        return self._task(label, total, size)

    @contextmanager
    def _task(self, label: str, total: int | None, size: bool) -> Iterator[Task]:
        columns = (("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TimeRemainingColumn()) if size else ())
        with Progress(*columns, console=self.console, transient=True) as bar:
            yield _RichTask(bar, bar.add_task(safe(label), total=total))
