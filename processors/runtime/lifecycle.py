"""A stop asked for while a processor starts is kept.

Quix Streams 3.28 installs its SIGTERM/SIGINT handlers early in `Application.run` but marks itself running
only once it has subscribed and begun its first transaction, which on a fresh broker can take seconds (the
transaction coordinator starts up). A signal in between sets the run flag to false, and the start sets it
back to true: the process then runs on and ignores the stop it was sent (a supervisor or test waits for it
in vain). `stop_survives_startup` remembers a stop from the moment the run begins. It wraps methods of the
run tracker, a private attribute of the pinned version; `tests/unit/test_lifecycle.py` checks it is there.
"""

from __future__ import annotations

from quixstreams import Application


def stop_survives_startup(app: Application) -> None:
    tracker = app._run_tracker
    reset, stop, set_as_running = tracker.reset, tracker.stop, tracker.set_as_running
    stop_asked = False

    def resetting() -> None:
        nonlocal stop_asked
        stop_asked = False  # a new run: what stopped the last one is done with
        reset()

    def stopping() -> None:
        nonlocal stop_asked
        stop_asked = True
        stop()

    def starting() -> None:
        set_as_running()
        if stop_asked:
            stop()

    tracker.reset, tracker.stop, tracker.set_as_running = resetting, stopping, starting  # type: ignore[method-assign]
