"""Around a commit (processors/runtime/commits.py): deferred effects are written first, and a processor that has
caught up commits at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from quixstreams import Application
from quixstreams.checkpointing import Checkpoint

from processors.runtime.app import make_application
from processors.runtime.commits import wrap_commits
from topology.settings import Settings


@dataclass
class FakeCheckpoint:
    holds_work: bool = True
    is_expired: bool = False

    def empty(self) -> bool:
        return not self.holds_work

    def expired(self) -> bool:
        return self.is_expired


@dataclass
class FakeContext:
    checkpoint: FakeCheckpoint = field(default_factory=FakeCheckpoint)
    forced: list[bool] = field(default_factory=list)

    def commit_checkpoint(self, force: bool = False, revoking: bool = False) -> None:
        self.forced.append(force)


@dataclass
class FakeTracker:
    _message_consumed: bool = True


@dataclass
class FakeApp:
    _processing_context: FakeContext = field(default_factory=FakeContext)
    _run_tracker: FakeTracker = field(default_factory=FakeTracker)
    flushed: int = 0
    commits_before_flush: list[int] = field(default_factory=list)

    def flush(self) -> None:
        self.flushed += 1
        self.commits_before_flush.append(len(self._processing_context.forced))


def wrapped(min_interval_s: float | None = 0.0) -> FakeApp:
    app = FakeApp()
    wrap_commits(cast(Application, app), min_interval_s, before_commit=app.flush)
    return app


def test_a_processor_that_read_nothing_commits_its_work_at_once() -> None:
    app = wrapped()
    app._run_tracker._message_consumed = False
    app._processing_context.commit_checkpoint()
    assert app._processing_context.forced == [True]


def test_a_processor_still_reading_leaves_commits_to_the_interval() -> None:
    app = wrapped()
    app._processing_context.commit_checkpoint()
    assert app._processing_context.forced == [False]


def test_nothing_processed_means_nothing_to_commit() -> None:
    app = wrapped()
    app._run_tracker._message_consumed = False
    app._processing_context.checkpoint.holds_work = False
    app._processing_context.commit_checkpoint()
    assert app._processing_context.forced == [False]


def test_caught_up_commits_are_spaced_by_the_minimum_interval() -> None:
    app = wrapped(min_interval_s=3600)
    app._run_tracker._message_consumed = False
    app._processing_context.commit_checkpoint()
    assert app._processing_context.forced == [False]  # the last commit (at wrapping) was just now


def test_a_forced_commit_stays_forced() -> None:
    app = wrapped(min_interval_s=3600)
    app._processing_context.commit_checkpoint(force=True)
    assert app._processing_context.forced == [True]


def test_deferred_effects_are_written_before_every_commit_and_only_then() -> None:
    app = wrapped(min_interval_s=None)
    context = app._processing_context

    context.commit_checkpoint()  # neither expired nor forced: Quix Streams will not commit
    assert app.flushed == 0
    context.checkpoint.is_expired = True
    context.commit_checkpoint()
    assert app.flushed == 1
    context.checkpoint.is_expired = False
    context.commit_checkpoint(force=True, revoking=True)  # a rebalance
    assert app.flushed == 2
    context.checkpoint.holds_work = False
    context.commit_checkpoint(force=True)  # nothing processed: nothing to commit
    assert app.flushed == 2


def test_without_a_minimum_interval_commits_are_left_to_quix_streams() -> None:
    app = wrapped(min_interval_s=None)
    app._run_tracker._message_consumed = False
    app._processing_context.commit_checkpoint()
    assert app._processing_context.forced == [False]


def test_a_caught_up_commit_writes_deferred_effects_first() -> None:
    app = wrapped()
    app._run_tracker._message_consumed = False
    app._processing_context.commit_checkpoint()
    assert (app._processing_context.forced, app.commits_before_flush) == ([True], [0])


def test_the_quix_streams_internals_it_relies_on_are_there(tmp_path: Any) -> None:
    settings = Settings(run_dir=tmp_path, commit_when_caught_up=True)
    app = make_application("oms.test-commits", settings)
    context = app._processing_context
    assert context.commit_checkpoint.__name__ == "commit_checkpoint"
    assert context.commit_checkpoint.__module__ == "processors.runtime.commits"
    assert isinstance(app._run_tracker._message_consumed, bool)
    assert callable(Checkpoint.expired) and callable(Checkpoint.empty)
    assert callable(type(context).commit_checkpoint)
