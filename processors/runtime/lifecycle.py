"""How a processor's run starts and ends.

A stop asked for while a processor starts is kept. Quix Streams 3.28 installs its SIGTERM/SIGINT handlers
early in `Application.run` but marks itself running only once it has subscribed and begun its first
transaction, which on a fresh broker can take seconds (the transaction coordinator starts up). A signal in
between sets the run flag to false, and the start sets it back to true: the process then runs on and ignores
the stop it was sent (a supervisor or test waits for it in vain). `stop_survives_startup` remembers a stop
from the moment the run begins. It wraps methods of the run tracker, a private attribute of the pinned
version; `tests/unit/test_lifecycle.py` checks it is there.

An outage that outlasts the retries of a processor's stage ends its run with an exit status of its own
(`exit_on_outage`), which tells its supervisor that the world failed, not the processor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from quixstreams import Application

from processors.runtime.errors import OUTAGE_EXIT_CODE, is_outage

logger = logging.getLogger(__name__)


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


def exit_on_outage(name: str, run: Callable[[], None]) -> None:
    """Run a processor; if an outage ended it, say so in one line and exit with `OUTAGE_EXIT_CODE`, so that
    its supervisor restarts it with backoff instead of counting a crash of its own."""
    try:
        run()
    except Exception as error:
        if not is_outage(error):
            raise
        logger.error("oms run %s: stopped by an outage: %s: %s", name, type(error).__name__, _one_line(error))
        raise SystemExit(OUTAGE_EXIT_CODE) from None


def _one_line(error: BaseException) -> str:
    return " ".join((str(error) or repr(error)).split())
