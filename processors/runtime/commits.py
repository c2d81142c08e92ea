"""What happens around a Quix Streams commit: deferred effects are written first, and a processor that has
caught up commits at once, not only when its commit interval is over.

Effects adapters defer (`processors/runtime/deferred.py`) are flushed before every commit, whatever starts
it (the interval, catching up, a rebalance, a stop), so a transaction never publishes what has not happened.

A record a processor emits is readable downstream only once the transaction that wrote it commits. Quix
Streams commits on a timer, so every hop of an order waits, on average, half the interval for that; an
order crosses a dozen hops. Under load a processor never catches up, its commits stay on the timer and
batch as many messages as before; when it has read everything there is, what it processed is committed at
once (at most every `min_interval_s`), and the next hop can read it a commit round trip later.

Quix Streams 3.28 has no public hook for either: `wrap_commits` wraps its processing context's commit step,
the call its run loop makes after every poll and its rebalance and stop make, and asks the run tracker whether
that poll returned a message. Both are private attributes of the pinned version; `tests/unit/test_commits.py`
checks that they are there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from quixstreams import Application

from processors.runtime.deferred import flush_deferred


class _Checkpoint(Protocol):
    def empty(self) -> bool: ...

    def expired(self) -> bool: ...


class _ProcessingContext(Protocol):
    @property
    def checkpoint(self) -> _Checkpoint: ...

    def commit_checkpoint(self, force: bool = False, revoking: bool = False) -> None: ...


class _RunTracker(Protocol):
    _message_consumed: bool


def wrap_commits(
    app: Application, min_interval_s: float | None, before_commit: Callable[[], None] = flush_deferred
) -> None:
    """Make `app` call `before_commit` before it commits, and, unless `min_interval_s` is None, commit when its
    last poll found nothing to read and the checkpoint holds work (at most every `min_interval_s`)."""
    context: _ProcessingContext = app._processing_context
    tracker: _RunTracker = app._run_tracker
    quix_commit = context.commit_checkpoint
    last_commit = time.monotonic()

    def commit_checkpoint(force: bool = False, revoking: bool = False, **options: Any) -> None:
        nonlocal last_commit
        now = time.monotonic()
        holds_work = not context.checkpoint.empty()
        if min_interval_s is not None and holds_work:
            caught_up = not tracker._message_consumed and now - last_commit >= min_interval_s
            force = force or caught_up
        if force:
            last_commit = now
        if holds_work and (force or context.checkpoint.expired()):
            before_commit()
        quix_commit(force=force, revoking=revoking, **options)

    context.commit_checkpoint = commit_checkpoint  # type: ignore[method-assign]
