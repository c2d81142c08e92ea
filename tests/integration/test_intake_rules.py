"""Intake's rules end to end on the real broker and registry: one order per id, and only what the catalog sells."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.produce import produce_orders
from ops.replay import committed
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.intake import DUPLICATE_ORDER_ID, REJECTION_CODES_HEADER
from processors.payments import PROCESSOR as PAYMENTS
from processors.runtime.records import derive_event_id, utc_now
from processors.tracking.timeline import DUPLICATE_ID_ANSWERED
from schemas.models import OrderCreated, OrderRejected, OrderTimeline, PaymentProcessed, PlaceOrder
from tests.integration.harness import Processes, Seen, Watcher
from tests.integration.test_cancellation import SKU, tee_order
from tests.integration.test_choreography import set_stock_and_wait
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ORDERS_EVENTS, PAYMENTS_EVENTS, TRACKING_ORDERS

UNKNOWN_SKU = "SKU-NOSUCH-99"


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    topics = [ORDERS_EVENTS, PAYMENTS_EVENTS, TRACKING_ORDERS, INVENTORY_STOCK]
    watching = Watcher(settings, registry, [topic.name for topic in topics])
    yield watching
    watching.close()


@pytest.fixture
def gateway(settings: Settings) -> SimulatedPaymentGateway:
    return SimulatedPaymentGateway(default_ledger_path(settings))


def sent_again(placed: PlaceOrder, **changes: object) -> PlaceOrder:
    """The command as a producer sends it again: a new event id and time, and `changes` to its content."""
    return placed.model_copy(update={"event_id": uuid.uuid4(), "occurred_at": utc_now(), **changes})


def answers(watcher: Watcher, order_id: str) -> list[Seen]:
    return [s for s in watcher.for_order(order_id) if isinstance(s.record, OrderCreated | OrderRejected)]


def answering(watcher: Watcher, command: PlaceOrder) -> OrderRejected:
    """The rejection that answers `command`, once intake has published it."""

    def found() -> OrderRejected | None:
        return next(
            (
                s.record
                for s in answers(watcher, command.order_id)
                if isinstance(s.record, OrderRejected) and s.record.command_event_id == command.event_id
            ),
            None,
        )

    watcher.wait_until(lambda _: found() is not None, what=f"intake's answer to {command.event_id}")
    rejection = found()
    assert rejection is not None
    return rejection


def timelines(watcher: Watcher, order_id: str) -> list[OrderTimeline]:
    return [s.record for s in watcher.for_order(order_id) if isinstance(s.record, OrderTimeline)]


def tracked(watcher: Watcher, order_id: str, outcome: str) -> OrderTimeline:
    """The order's timeline once the tracker has its outcome and has noted a duplicate id answered."""

    def done(timeline: OrderTimeline) -> bool:
        return timeline.outcome == outcome and any(step.name == DUPLICATE_ID_ANSWERED for step in timeline.steps)

    watcher.wait_until(lambda _: any(map(done, timelines(watcher, order_id))), timeout_s=90, what=f"{outcome} tracked")
    return next(timeline for timeline in timelines(watcher, order_id) if done(timeline))


def order_events_ends(admin: AdminClient) -> dict[int, int]:
    """Where each partition of the order events topic ends, as read_committed readers see it."""
    topic = ORDERS_EVENTS.name
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    ends = admin.list_offsets(
        {TopicPartition(topic, partition): OffsetSpec.latest() for partition in partitions},
        isolation_level=IsolationLevel.READ_COMMITTED,
    )
    return {tp.partition: future.result().offset for tp, future in ends.items()}


def wait_for_payments(watcher: Watcher, admin: AdminClient) -> None:
    """Payments has acted on every order event committed so far, the answers seen so far among them.

    Every record there was written in a transaction, whose commit marker comes after it and before the end;
    payments' committed offset stops at the last marker, one short of the end."""
    ends = order_events_ends(admin)

    def caught_up(_: list[Seen]) -> bool:
        done = {tp.partition: tp.offset for tp in committed(admin, PAYMENTS) if tp.topic == ORDERS_EVENTS.name}
        return all(done.get(partition, 0) >= end - 1 for partition, end in ends.items())

    watcher.wait_until(caught_up, what="payments caught up with the order events")


def track_command(order_id: str) -> dict[str, object]:
    """`oms track ORDER --json`, from this checkout."""
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", "track", order_id, "--json"], capture_output=True, text=True, check=True
    )
    [printed] = json.loads(done.stdout)
    assert isinstance(printed, dict)
    return printed


def test_other_content_under_a_used_id_is_answered_as_a_duplicate_and_the_order_goes_on(
    settings: Settings, admin: AdminClient, watcher: Watcher, gateway: SimulatedPaymentGateway
) -> None:
    placed = tee_order("dup-other")
    other = sent_again(placed, customer_email="grace@example.com", is_gift=True)
    set_stock_and_wait(settings, watcher, {SKU: 100})  # plenty: orders other runs left behind may draw on it too

    produce_orders(settings, [placed, other], progress=False)

    rejection = answering(watcher, other)
    assert rejection.codes == [DUPLICATE_ORDER_ID] and rejection.reasons[0].startswith("duplicate order id")
    assert rejection.customer_email == "grace@example.com"
    [message] = [s for s in answers(watcher, placed.order_id) if s.record == rejection]
    assert message.headers[REJECTION_CODES_HEADER] == DUPLICATE_ORDER_ID.encode()

    delivered = tracked(watcher, placed.order_id, "delivered")
    assert delivered.status == "completed"
    assert all(timeline.outcome != "rejected" for timeline in timelines(watcher, placed.order_id))
    [created] = [s.record for s in answers(watcher, placed.order_id) if isinstance(s.record, OrderCreated)]
    assert created.event_id == derive_event_id(placed.event_id, "created") and not created.is_gift
    assert gateway.approved_total(placed.order_id) == created.total.amount_minor

    printed = track_command(placed.order_id)
    assert (printed["status"], printed["outcome"]) == ("completed", "delivered")
    steps = printed["steps"]
    assert isinstance(steps, list)
    [note] = [step for step in steps if step["name"] == DUPLICATE_ID_ANSWERED]
    assert note["status"] == "completed" and note["error"].startswith("duplicate order id")


def test_the_same_content_again_gets_the_first_answer_again_and_is_charged_once(
    settings: Settings, admin: AdminClient, watcher: Watcher, gateway: SimulatedPaymentGateway
) -> None:
    placed = tee_order("dup-same")
    retried = sent_again(placed)
    set_stock_and_wait(settings, watcher, {SKU: 100})  # plenty: orders other runs left behind may draw on it too

    produce_orders(settings, [placed, retried], progress=False)
    watcher.wait_until(lambda _: len(answers(watcher, placed.order_id)) == 2, what="both commands answered")

    first, again = (s.record for s in answers(watcher, placed.order_id))
    assert isinstance(first, OrderCreated) and again == first, "the very same OrderCreated, event id included"
    wait_for_payments(watcher, admin)
    assert gateway.count_charges(placed.order_id) == 1
    assert gateway.approved_total(placed.order_id) == first.total.amount_minor
    watcher.wait_until(
        lambda seen: any(s.key == placed.order_id and isinstance(s.record, PaymentProcessed) for s in seen),
        what="the payment",
    )
    assert sum(isinstance(s.record, PaymentProcessed) for s in watcher.for_order(placed.order_id)) == 1


def test_a_rejected_id_stays_rejected_and_the_same_command_content_gets_the_same_rejection(
    settings: Settings, admin: AdminClient, watcher: Watcher, gateway: SimulatedPaymentGateway
) -> None:
    rejected = tee_order("dup-rejected").model_copy(update={"customer_email": "nope"})
    corrected = sent_again(rejected, customer_email="ada@example.com")
    repeated = sent_again(rejected)

    produce_orders(settings, [rejected, corrected, repeated], progress=False)
    watcher.wait_until(lambda _: len(answers(watcher, rejected.order_id)) == 3, what="all three commands answered")

    first, duplicate, again = (s.record for s in answers(watcher, rejected.order_id))
    assert isinstance(first, OrderRejected) and isinstance(duplicate, OrderRejected)
    assert first.codes == ["invalid-field"] and first.reasons == ["email address is not valid"]
    assert duplicate.codes == [DUPLICATE_ORDER_ID] and duplicate.command_event_id == corrected.event_id
    assert again == first, "the first rejection again, event id included"
    wait_for_payments(watcher, admin)
    assert gateway.charges(rejected.order_id) == []
    assert tracked(watcher, rejected.order_id, "rejected").status == "completed"


def test_an_unknown_sku_is_rejected_by_name_and_nothing_is_charged(
    settings: Settings, admin: AdminClient, watcher: Watcher, gateway: SimulatedPaymentGateway
) -> None:
    known = tee_order("nosuch")
    unknown = known.lines[0].model_copy(update={"sku": UNKNOWN_SKU})
    card = known.tenders[0]
    paid = card.model_copy(
        update={"amount": card.amount.model_copy(update={"amount_minor": 2 * card.amount.amount_minor})}
    )
    order = known.model_copy(update={"lines": [*known.lines, unknown], "tenders": [paid]})

    produce_orders(settings, [order], progress=False)

    rejection = answering(watcher, order)
    assert rejection.codes == ["unknown-sku"] and rejection.reasons == [
        f"line 2: {UNKNOWN_SKU} is not a product we sell"
    ]
    assert rejection.customer_email == order.customer_email
    assert [type(s.record) for s in answers(watcher, order.order_id)] == [OrderRejected]
    wait_for_payments(watcher, admin)
    assert gateway.charges(order.order_id) == []
