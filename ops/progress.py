"""Progress bars for long commands (`bench`, `produce orders`, `replay topic`, `dlq redrive`), drawn with rich.

Drawn on stderr, and only while stderr is a terminal: a pipe, a log or a test sees none of them, and what a
command prints on stdout stays its only output. A function that does long work takes `progress`: a `Bars`
already drawing (one display per command, whatever calls what), True or False to draw or not, or None for
"when stderr is a terminal".
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ops.terminal import raw


class Bar:
    """One line of a `Bars`: a count towards a total, or (no total) a spinner until `done`."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress = progress
        self._task = task

    @property
    def drawn(self) -> bool:
        """Whether anything is drawn: a caller may skip counting for a bar nobody sees."""
        return self._progress is not None

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def update(self, completed: int, total: int | None = None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed, total=total)

    def done(self) -> None:
        """The work is over: a bar fills up, a spinner stops."""
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[self._task]
            total = task.total if task.total is not None else 1
            self._progress.update(self._task, total=total, completed=total)


class Bars:
    """The progress bars of one command, drawn while it is entered (`with Bars() as bars:`)."""

    def __init__(self, shown: bool | None = None, console: Console | None = None) -> None:
        self.shown = sys.stderr.isatty() if shown is None else shown
        self._progress = (
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=console or Console(file=raw(sys.stderr)),
            )
            if self.shown
            else None
        )

    def __enter__(self) -> Bars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def bar(self, description: str, total: int | None = None) -> Bar:
        """A new line, below those already there."""
        if self._progress is None:
            return Bar()
        return Bar(self._progress, self._progress.add_task(description, total=total))


@contextmanager
def bars_for(progress: Bars | bool | None) -> Iterator[Bars]:
    """The `Bars` a function draws on: the caller's, or its own for the time of the `with`."""
    if isinstance(progress, Bars):
        yield progress
        return
    with Bars(progress) as own:
        yield own
