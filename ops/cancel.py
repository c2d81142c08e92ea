"""Cancel an order and wait for the saga's answer, for `oms cancel --wait` and the dashboard's Cancel button.

The answer to one `CancelOrder` is an `OrderCancellationRejected` naming it (`cancel_event_id`), or an
`OrderCancelled` for the order published after the command; the refunds are the order's `PaymentRefunded`
published meanwhile, one per tender given back. The topics are read from their ends as they were just before
the command was produced, so that nothing older counts as the answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from confluent_kafka import KafkaError, KafkaException

from ops.produce import produce_cancel
from ops.tables import assign_from_now
from processors.customer_messages import format_money
from processors.runtime.clients import end_reader
from processors.runtime.cloudevents import header, type_of
from schemas.models import (
    AvroRecord,
    CancelOrder,
    Money,
    OrderCancellationRejected,
    OrderCancelled,
    PaymentRefunded,
)
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.settings import Settings
from topology.topics import ORDERS_EVENTS, PAYMENTS_EVENTS

ANSWER_SLACK_S = 30.0
"""How much longer than the saga waits for an order it has not seen a caller waits for its answer: room for the
timer that ends that wait to fire, and for the answer to come back."""


def default_wait_s(settings: Settings) -> float:
    """Long enough for every answer, the saga's `unknown-order` after its whole wait included."""
    return settings.cancel_waits_for_order_s + ANSWER_SLACK_S


ANSWERING = (OrderCancelled, OrderCancellationRejected, PaymentRefunded)
ANSWERING_TYPES = {type_of(record.AVRO_NAME) for record in ANSWERING}


@dataclass(frozen=True)
class CancelAnswer:
    """What the saga answered to one CancelOrder."""

    outcome: Literal["cancelled", "rejected"]
    order_id: str
    reason: str = ""  # why it was rejected, in plain words
    code: str = ""  # why it was rejected, machine-readable
    refunded: Money | None = None  # what went back in all, when cancelled
    refunds: tuple[PaymentRefunded, ...] = ()  # one per tender given back

    @property
    def lines(self) -> list[str]:
        """The answer as an operator reads it."""
        if self.outcome == "rejected":
            code = f" ({self.code})" if self.code else ""
            return [f"cancellation of {self.order_id} rejected: {self.reason}{code}"]
        if self.refunded is None or self.refunded.amount_minor == 0:
            return [f"{self.order_id} cancelled; nothing had been charged, nothing refunded"]
        return [f"{self.order_id} cancelled; refunded {format_money(self.refunded)}"] + [
            f"  {format_money(refund.amount)} to {refund.method.value} (transaction {refund.transaction_id})"
            for refund in self.refunds
        ]

    def as_json(self) -> dict[str, object]:
        return {
            "outcome": self.outcome,
            "order_id": self.order_id,
            "reason": self.reason,
            "code": self.code,
            "refunded": format_money(self.refunded) if self.refunded else None,
            "refunds": [{"method": r.method.value, "amount": format_money(r.amount)} for r in self.refunds],
            "text": "\n".join(self.lines),
        }


def answer_to(command: CancelOrder, records: Iterable[AvroRecord]) -> CancelAnswer | None:
    """The saga's answer to `command` among the order's records published since it, once it is complete: a
    rejection naming it, or the order's cancellation with every refund that makes up what it gave back."""
    seen = [record for record in records if isinstance(record, ANSWERING) and record.order_id == command.order_id]
    for record in seen:
        if isinstance(record, OrderCancellationRejected) and record.cancel_event_id == command.event_id:
            return CancelAnswer("rejected", command.order_id, reason=record.reason, code=record.code)
    cancelled = next((record for record in seen if isinstance(record, OrderCancelled)), None)
    if cancelled is None:
        return None
    refunds = tuple(record for record in seen if isinstance(record, PaymentRefunded))
    if cancelled.refunded is not None and sum(r.amount.amount_minor for r in refunds) < cancelled.refunded.amount_minor:
        return None  # the refunds are on another topic: not all read yet
    return CancelAnswer("cancelled", command.order_id, refunded=cancelled.refunded, refunds=refunds)


@dataclass
class AnswerReader:
    """Reads the order's records on the topics that answer a cancellation, from their ends as they are now."""

    settings: Settings
    order_id: str
    records: list[AvroRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        registry = registry_client(self.settings)
        self._codecs = {topic.name: RecordCodec(registry, topic.name) for topic in (ORDERS_EVENTS, PAYMENTS_EVENTS)}
        self._consumer = end_reader(self.settings, "oms-cancel-wait")
        assign_from_now(self._consumer, self._codecs)

    def poll(self, seconds: float) -> None:
        key = self.order_id.encode()
        for message in self._consumer.consume(1000, seconds):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                continue
            if message.key() == key and header(message.headers(), "ce_type") in ANSWERING_TYPES:
                self.records.append(self._codecs[message.topic()].decode(message.value()))

    def close(self) -> None:
        self._consumer.close()


def cancel_and_wait(
    settings: Settings, order_id: str, reason: str, timeout_s: float, requested_by: str = "customer"
) -> tuple[CancelOrder, CancelAnswer | None]:
    """Ask for the order's cancellation and wait up to `timeout_s` (`default_wait_s`) for the answer; None when
    none came."""
    reader = AnswerReader(settings, order_id)  # before producing: the answer cannot come earlier
    try:
        command = produce_cancel(settings, order_id, reason, requested_by)
        deadline = time.monotonic() + timeout_s
        while (answer := answer_to(command, reader.records)) is None and time.monotonic() < deadline:
            reader.poll(min(0.5, max(0.0, deadline - time.monotonic())))
        return command, answer
    finally:
        reader.close()
