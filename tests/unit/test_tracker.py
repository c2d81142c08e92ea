"""What the tracker folds into the view: only records declared for their topic and keyed by their order; and
a rebuild that meets a record under a key no order has passes over it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

import pytest
from confluent_kafka import Message
from prometheus_client import REGISTRY

from processors.runtime.contract import BreachOfContract, TopicContract
from processors.runtime.inprocess import memory_registry
from processors.runtime.metrics import ACTIVITY_SECONDS
from processors.tracking.tracker import OTHER_ACTIVITY, observe, stored, usable
from schemas.models import (
    AvroRecord,
    Money,
    OrderTimeline,
    PaymentProcessed,
    RetrySaga,
    RoutingSlipActivityCompleted,
)
from schemas.serde import RecordCodec
from tests.factories import NOW, a_valid_order
from topology.topics import ORDERS_COMMANDS, PAYMENTS_EVENTS, TRACKING_ORDERS, TopicSpec


def charged(order_id: str) -> PaymentProcessed:
    return PaymentProcessed(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        amount=Money(amount_minor=100, currency="EUR"),
        charges=[],
    )


def refusal(topic: TopicSpec, key: bytes | None, record: AvroRecord) -> str | None:
    """Why the tracker's contract for `topic` refuses `record` under `key`; None when it may fold it."""
    try:
        TopicContract(topic).check(record.AVRO_NAME, key, [], record)
    except BreachOfContract as breach:
        return str(breach)
    return None


def test_a_record_declared_for_its_topic_and_keyed_by_its_order_is_folded() -> None:
    placed = a_valid_order(order_id="o-1")

    assert refusal(ORDERS_COMMANDS, b"o-1", placed) is None


def test_a_record_of_a_type_not_declared_for_its_topic_is_refused() -> None:
    payment = charged("o-1")

    assert refusal(ORDERS_COMMANDS, b"o-1", payment) == (
        "oms.payments.PaymentProcessed is not a record type of oms.orders.commands"
    )
    assert refusal(PAYMENTS_EVENTS, b"o-1", payment) is None


def test_a_record_keyed_other_than_by_its_order_is_refused() -> None:
    placed = a_valid_order(order_id="o-1")

    assert "key 'o-2', where oms.orders.commands is keyed by" in str(refusal(ORDERS_COMMANDS, b"o-2", placed))
    assert "key '\ufffd'" in str(refusal(ORDERS_COMMANDS, b"\xff", placed))
    assert "no key" in str(refusal(ORDERS_COMMANDS, None, placed))


@dataclass
class ViewMessage:
    """What a rebuild reads of a message of the view."""

    key_bytes: bytes | None
    value_bytes: bytes | None

    def key(self) -> bytes | None:
        return self.key_bytes

    def value(self) -> bytes | None:
        return self.value_bytes

    def headers(self) -> list[tuple[str, bytes]]:
        return [("oms-status", b"in-flight")]

    def topic(self) -> str:
        return TRACKING_ORDERS.name

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


def test_a_record_of_the_view_under_a_key_that_is_not_utf8_is_passed_over_by_a_rebuild() -> None:
    assert stored(cast(Message, ViewMessage(b"\xff\xfe", b"..."))) is None

    kept = stored(cast(Message, ViewMessage(b"o-1", b"...")))
    assert kept is not None and kept.order_id == "o-1" and kept.status == "in-flight"


def completed(activity: str) -> RoutingSlipActivityCompleted:
    return RoutingSlipActivityCompleted(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=NOW,
        tracking_number=uuid.uuid4(),
        activity=activity,
        duration_ms=1200,
    )


def test_a_made_up_activity_is_timed_under_one_label_not_a_label_of_its_own() -> None:
    timeline = OrderTimeline(
        event_id=uuid.uuid4(), order_id="o-1", occurred_at=NOW, status="in-flight", last_progress_at=NOW, steps=[]
    )
    made_up = [f"made-up-{index}" for index in range(50)]
    before = ACTIVITY_SECONDS.labels(OTHER_ACTIVITY)._sum.get()

    for activity in ["pick", *made_up]:
        observe(completed(activity), timeline, timeline)

    labels = {sample.labels.get("activity") for metric in REGISTRY.collect() for sample in metric.samples}
    assert "pick" in labels and OTHER_ACTIVITY in labels
    assert not labels & set(made_up)
    assert ACTIVITY_SECONDS.labels(OTHER_ACTIVITY)._sum.get() == pytest.approx(before + 50 * 1.2)


@dataclass
class CommandMessage:
    """A message of the orders' commands as the tracker reads it."""

    key_bytes: bytes
    value_bytes: bytes
    header_items: list[tuple[str, bytes]]

    def key(self) -> bytes:
        return self.key_bytes

    def value(self) -> bytes:
        return self.value_bytes

    def headers(self) -> list[tuple[str, bytes]]:
        return self.header_items


def test_a_command_is_passed_over_by_the_schema_it_was_written_with_and_a_header_claiming_one_is_refused() -> None:
    codec, contract = RecordCodec(memory_registry(), ORDERS_COMMANDS.name), TopicContract(ORDERS_COMMANDS)
    placed = a_valid_order(order_id="o-1")
    retry = RetrySaga(event_id=uuid.uuid4(), order_id="o-1", occurred_at=NOW)
    claiming = [("ce_type", b"oms.RetrySaga")]

    disguised = CommandMessage(b"o-1", codec.encode(placed), claiming)
    genuine = CommandMessage(b"o-1", codec.encode(retry), claiming)

    assert usable(cast(Message, genuine), codec, contract) is None
    with pytest.raises(BreachOfContract, match=r"the ce_type header says oms\.RetrySaga"):
        usable(cast(Message, disguised), codec, contract)  # read, and dead-lettered: not passed over unread
