"""Pausing through an outage, for the processes that are not Quix Streams apps (the timers, the tracker): the
same call is tried again with backoff while `is_outage` says the world is down; the last outage propagates, and
`oms run` (`lifecycle.exit_on_outage`) ends the process with `OUTAGE_EXIT_CODE` for its supervisor to restart."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from processors.runtime.errors import is_outage
from processors.runtime.retries import RetryPolicy

logger = logging.getLogger(__name__)

T = TypeVar("T")

# About a minute of pauses: under the consumer's max.poll.interval.ms, so a paused member keeps its partitions.
OUTAGE_RETRY = RetryPolicy(attempts=12, first_delay_s=0.25, max_delay_s=8.0)


def through_outages(call: Callable[[], T], what: str, policy: RetryPolicy = OUTAGE_RETRY) -> T:
    """`call()`, tried again after each outage until `policy` runs out (the last outage propagates); any
    other failure propagates at once."""
    for delay in policy.delays():
        try:
            return call()
        except Exception as error:
            if not is_outage(error):
                raise
            logger.warning(
                "%s paused by an outage, trying again in %.2fs: %s: %s", what, delay, type(error).__name__, error
            )
            time.sleep(delay)
    return call()
