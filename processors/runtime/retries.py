"""Retrying a call that leaves the process (a gateway, a carrier, a channel): the one retry level.

A processor's stage retries nothing; what a call still fails after its policy's attempts is the caller's to
turn into an outcome (a refused tender, a faulted step) or, raised, the message's dead letter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure that may pass if the same message is tried again (a flaky gateway, a timeout)."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_delay_s: float = 0.05
    max_delay_s: float = 1.0

    def delays(self) -> Iterable[float]:
        """Pauses between attempts: exponential backoff, bounded."""
        delay = self.first_delay_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay_s)


def retrying(
    call: Callable[[], Any],
    policy: RetryPolicy,
    retry_on: type[Exception] | tuple[type[Exception], ...] = TransientError,
) -> Any:
    """Call until it stops raising `retry_on` or attempts run out (the last error propagates)."""
    for delay in policy.delays():
        try:
            return call()
        except retry_on as error:
            logger.info("transient failure, retrying in %.2fs: %s", delay, error)
            time.sleep(delay)
    return call()
