"""What the dashboard's actions do on Kafka, and the audit of who asked for each.

Each action names who asked: a cancellation and a retry carry it in their command's `requested_by`
(`operator:<user>`), and every action, done or refused, is a line of the `ops.dashboard.audit` log.
"""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

from ops.cancel import CancelAnswer, cancel_and_wait, default_wait_s
from ops.dashboard.access import Caller
from ops.deadletters import matching, redrive
from ops.produce import produce_records
from processors.runtime.logs import TEXT_FORMAT, JsonFormatter
from processors.runtime.records import utc_now
from schemas.models import CancelOrder, RetrySaga
from topology.settings import Settings
from topology.topics import ORDERS_COMMANDS

AUDIT = logging.getLogger("ops.dashboard.audit")
MAX_REQUESTED_BY = 200


class Operations(Protocol):
    """The actions, as the dashboard's handler asks for them."""

    def retry(self, order_id: str, requested_by: str) -> RetrySaga: ...

    def redrive(self, order_id: str, topics: tuple[str, ...]) -> list[str]: ...

    def cancel(
        self, order_id: str, reason: str, requested_by: str
    ) -> tuple[CancelOrder, CancelAnswer | None, float]: ...


class KafkaOperations:
    """The actions on the platform `settings` name."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def retry(self, order_id: str, requested_by: str) -> RetrySaga:
        command = RetrySaga(event_id=uuid.uuid4(), order_id=order_id, occurred_at=utc_now(), requested_by=requested_by)
        produce_records(self._settings, ORDERS_COMMANDS, [(order_id, command)], progress=False)
        return command

    def redrive(self, order_id: str, topics: tuple[str, ...]) -> list[str]:
        """The originals sent back, of the order's dead letters on `topics`."""
        return [
            letter.original for topic in topics for letter in redrive(self._settings, topic, matching(key=order_id))
        ]

    def cancel(self, order_id: str, reason: str, requested_by: str) -> tuple[CancelOrder, CancelAnswer | None, float]:
        """The cancellation sent, the saga's answer (None: none in time) and how long it was waited for."""
        wait_s = default_wait_s(self._settings)
        command, answer = cancel_and_wait(self._settings, order_id, reason, wait_s, requested_by=requested_by)
        return command, answer, wait_s


def requested_by(caller: Caller) -> str:
    """Who asked, as a command's `requested_by` records it."""
    return f"operator:{caller.user}"[:MAX_REQUESTED_BY]


def audit(caller: Caller, action: str, order_id: str, status: int, outcome: str) -> None:
    """One line for an action asked for: who (and how they were recognized), what, on which order, and what came
    of it."""
    AUDIT.info("%s (%s) asked to %s order %r: %d %s", caller.user, caller.via, action, order_id, status, outcome[:300])


def audit_log(settings: Settings) -> None:
    """Write the audit to standard error, whatever else the process logs (`OMS_LOG_FORMAT` chooses text or JSON):
    once per process."""
    if AUDIT.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter("dashboard") if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    AUDIT.addHandler(handler)
    AUDIT.setLevel(logging.INFO)
    AUDIT.propagate = False
