"""Committing as soon as a processor has caught up (processors/runtime/commits.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from quixstreams import Application

from processors.runtime.app import make_application
from processors.runtime.commits import commit_when_caught_up
from topology.settings import Settings


@dataclass
class FakeCheckpoint:
    holds_work: bool = True

    def empty(self) -> bool:
        return not self.holds_work


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


def wrapped(min_interval_s: float = 0.0) -> FakeApp:
    app = FakeApp()
    commit_when_caught_up(cast(Application, app), min_interval_s)
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


def test_the_quix_streams_internals_it_relies_on_are_there(tmp_path: Any) -> None:
    settings = Settings(run_dir=tmp_path, commit_when_caught_up=True)
    app = make_application("oms.test-commits", settings)
    context = app._processing_context
    assert context.commit_checkpoint.__name__ == "commit_checkpoint"
    assert context.commit_checkpoint.__module__ == "processors.runtime.commits"
    assert isinstance(app._run_tracker._message_consumed, bool)
    assert callable(type(context).commit_checkpoint)
