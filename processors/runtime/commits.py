"""Commit as soon as a processor has caught up, not only when its commit interval is over.

A record a processor emits is readable downstream only once the transaction that wrote it commits. Quix
Streams commits on a timer, so every hop of an order waits, on average, half the interval for that; an
order crosses a dozen hops. Under load a processor never catches up, its commits stay on the timer and
batch as many messages as before; when it has read everything there is, what it processed is committed at
once (at most every `min_interval_s`), and the next hop can read it a commit round trip later.

Quix Streams 3.28 has no public hook for this: `commit_when_caught_up` wraps its processing context's
commit step, the call its run loop makes after every poll, and asks the run tracker whether that poll
returned a message. Both are private attributes of the pinned version; `tests/unit/test_commits.py` checks
that they are there.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from quixstreams import Application


class _Checkpoint(Protocol):
    def empty(self) -> bool: ...


class _ProcessingContext(Protocol):
    @property
    def checkpoint(self) -> _Checkpoint: ...

    def commit_checkpoint(self, force: bool = False, revoking: bool = False) -> None: ...


class _RunTracker(Protocol):
    _message_consumed: bool


def commit_when_caught_up(app: Application, min_interval_s: float) -> None:
    """Make `app` commit when its last poll found nothing to read and the checkpoint holds work."""
    context: _ProcessingContext = app._processing_context
    tracker: _RunTracker = app._run_tracker
    timed_commit = context.commit_checkpoint
    last_commit = time.monotonic()

    def commit_checkpoint(force: bool = False, revoking: bool = False, **options: Any) -> None:
        nonlocal last_commit
        now = time.monotonic()
        caught_up = not tracker._message_consumed and now - last_commit >= min_interval_s
        if caught_up and not context.checkpoint.empty():
            force = True
        if force:
            last_commit = now
        timed_commit(force=force, revoking=revoking, **options)

    context.commit_checkpoint = commit_checkpoint  # type: ignore[method-assign]
