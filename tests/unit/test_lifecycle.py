"""A stop asked for while a processor starts is kept (processors/runtime/lifecycle.py)."""

from __future__ import annotations

from pathlib import Path

from processors.runtime.app import make_application
from topology.settings import Settings


def test_a_stop_between_the_signal_handlers_and_the_start_of_processing_is_kept(tmp_path: Path) -> None:
    app = make_application("oms.test-lifecycle", Settings(run_dir=tmp_path))
    tracker = app._run_tracker
    tracker.reset()  # as Application.run does before it installs its signal handlers

    app.stop()  # what its SIGTERM handler calls
    tracker.set_as_running()  # Quix marks itself running once subscribed

    assert tracker.running is False


def test_a_new_run_forgets_the_stop_of_the_last_one(tmp_path: Path) -> None:
    app = make_application("oms.test-lifecycle", Settings(run_dir=tmp_path))
    tracker = app._run_tracker
    tracker.reset()
    app.stop()

    tracker.reset()
    tracker.set_as_running()

    assert tracker.running is True
