"""Whole flows through every declared processor, in memory (processors/runtime/inprocess.py).

The same declarations, stages, codecs and handlers as on Kafka, routed by topic in one process; the broker
tests keep what only a broker shows (exactly-once, crashes, rebalances)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.intake import DUPLICATE_ORDER_ID, REJECTION_CODES_HEADER
from processors.runtime.inprocess import InProcessRunner
from processors.runtime.records import Emit, utc_now
from processors.services import STREAM_PROCESSORS
from schemas.models import (
    CancelOrder,
    InventoryReleased,
    InventoryReserved,
    InventoryShortage,
    NotificationSent,
    OrderCancellationRejected,
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderFailed,
    OrderFailureReason,
    OrderRejected,
    OrderShipped,
    PaymentFailed,
    PaymentProcessed,
    PaymentRefunded,
    PlaceOrder,
    RoutingSlipActivityCompensated,
    RoutingSlipActivityCompleted,
    RoutingSlipActivityFaulted,
    RoutingSlipCompleted,
    RoutingSlipCreated,
    RoutingSlipFaulted,
    StockLevel,
)
from tests.factories import order_of
from topology.settings import Settings
from topology.topics import INVENTORY_EVENTS, INVENTORY_STOCK, ORDERS_COMMANDS, ORDERS_EVENTS, fulfillment_activity


@pytest.fixture
def runner(tmp_path: Path) -> InProcessRunner:
    return InProcessRunner(STREAM_PROCESSORS, Settings(run_dir=tmp_path))


@pytest.fixture(params=[False, True], ids=["alone", "together"])
def either(request: pytest.FixtureRequest, tmp_path: Path) -> InProcessRunner:
    """The processors each alone, or the order-keyed ones run together as one engine."""
    return InProcessRunner(STREAM_PROCESSORS, Settings(run_dir=tmp_path), colocated=request.param)


@pytest.fixture
def gateway(tmp_path: Path) -> SimulatedPaymentGateway:
    """The payment simulator's ledger the runner's payments write to."""
    return SimulatedPaymentGateway(default_ledger_path(Settings(run_dir=tmp_path)))


def stock(runner: InProcessRunner, levels: dict[str, int]) -> None:
    runner.send(
        *(
            Emit(
                INVENTORY_STOCK, sku, StockLevel(event_id=uuid.uuid4(), sku=sku, available=units, occurred_at=utc_now())
            )
            for sku, units in levels.items()
        )
    )
    runner.run()


def place(runner: InProcessRunner, order: PlaceOrder) -> None:
    runner.send(Emit(ORDERS_COMMANDS, order.order_id, order))


def cancel(runner: InProcessRunner, order_id: str) -> CancelOrder:
    command = CancelOrder(event_id=uuid.uuid4(), order_id=order_id, occurred_at=utc_now(), reason="changed mind")
    runner.send(Emit(ORDERS_COMMANDS, order_id, command))
    return command


def kinds(runner: InProcessRunner, order_id: str) -> list[str]:
    return [type(record).__name__ for record in runner.records(order_id=order_id)]


def test_an_order_in_stock_is_paid_reserved_shipped_delivered_and_told(runner: InProcessRunner) -> None:
    order = order_of("happy", {"SKU-MUG-01": 2})
    stock(runner, {"SKU-MUG-01": 5})

    place(runner, order)
    runner.run()

    seen = kinds(runner, order.order_id)
    for kind in (OrderCreated, PaymentProcessed, InventoryReserved, RoutingSlipCompleted, OrderShipped, OrderDelivered):
        assert seen.count(kind.__name__) == 1, kind.__name__
    assert seen.index("PaymentProcessed") < seen.index("InventoryReserved") < seen.index("OrderShipped")
    told = {record.kind.value for record in runner.records(NotificationSent, order.order_id)}
    assert told == {"ORDER_RECEIVED", "ORDER_CONFIRMED", "ORDER_SHIPPED", "ORDER_DELIVERED"}
    assert runner.records(StockLevel)[-1].available == 3
    assert runner.dead_letters() == []


def test_an_order_short_of_stock_is_refunded_and_the_customer_told(runner: InProcessRunner) -> None:
    order = order_of("short", {"SKU-MUG-01": 4})
    stock(runner, {"SKU-MUG-01": 1})

    place(runner, order)
    runner.run()

    [shortage] = runner.records(InventoryShortage, order.order_id)
    assert [(line.sku, line.available) for line in shortage.short_lines] == [("SKU-MUG-01", 1)]
    [created] = runner.records(OrderCreated, order.order_id)
    refunded = runner.records(PaymentRefunded, order.order_id)
    assert sum(refund.amount.amount_minor for refund in refunded) == created.total.amount_minor
    assert "RoutingSlipCreated" not in kinds(runner, order.order_id)
    assert "OUT_OF_STOCK" in {record.kind.value for record in runner.records(NotificationSent, order.order_id)}
    assert runner.records(StockLevel)[-1].available == 1  # nothing kept back for the short order


def ends_on_the_orders_topic(runner: InProcessRunner, order_id: str) -> list[OrderFailed]:
    """The order's `OrderFailed`s, each checked to be published on the orders topic under the order's key."""
    published = [
        (delivered.outgoing.topic, delivered.outgoing.key, delivered.record)
        for delivered in runner.log
        if isinstance(delivered.record, OrderFailed) and delivered.record.order_id == order_id
    ]
    assert all((topic, key) == (ORDERS_EVENTS.name, order_id.encode()) for topic, key, _ in published)
    return [record for _, _, record in published]


def told(runner: InProcessRunner, order_id: str) -> list[str]:
    return sorted(record.kind.value for record in runner.records(NotificationSent, order_id))


def test_a_declined_card_ends_the_order_on_the_orders_topic_once(either: InProcessRunner) -> None:
    order = order_of("declined", {"SKU-MUG-01": 1})
    order = order.model_copy(update={"tenders": [order.tenders[0].model_copy(update={"token": "tok_declined_1"})]})
    stock(either, {"SKU-MUG-01": 5})

    place(either, order)
    either.run()
    [created] = either.records(OrderCreated, order.order_id)
    either.send(Emit(ORDERS_EVENTS, order.order_id, created))  # a replay of the orders topic
    place(either, order)  # and the producer's retry
    either.run()

    [failed] = either.records(PaymentFailed, order.order_id)
    [ended] = ends_on_the_orders_topic(either, order.order_id)
    assert (ended.reason, ended.code, ended.caused_by, ended.refunded) == (
        OrderFailureReason.PAYMENT_FAILED,
        "card-declined",
        failed.event_id,
        None,
    )
    assert ended.detail == failed.reason
    assert told(either, order.order_id) == ["ORDER_RECEIVED", "PAYMENT_FAILED"], "told once, by the PaymentFailed"
    assert either.dead_letters() == []


def test_a_shortage_ends_the_order_on_the_orders_topic_once_refunded(either: InProcessRunner) -> None:
    order = order_of("short", {"SKU-MUG-01": 4})
    stock(either, {"SKU-MUG-01": 1})

    place(either, order)
    either.run()
    [shortage] = either.records(InventoryShortage, order.order_id)
    either.send(Emit(INVENTORY_EVENTS, order.order_id, shortage))  # a replay of the inventory topic
    either.run()

    [created] = either.records(OrderCreated, order.order_id)
    [ended] = ends_on_the_orders_topic(either, order.order_id)
    assert (ended.reason, ended.caused_by, ended.refunded) == (
        OrderFailureReason.OUT_OF_STOCK,
        shortage.event_id,
        created.total,
    )
    assert ended.detail == "out of stock: SKU-MUG-01 (1 of 4 available)"
    seen = kinds(either, order.order_id)
    assert seen.index("PaymentRefunded") < seen.index("OrderFailed"), "told once its money went back"
    assert told(either, order.order_id) == ["ORDER_CONFIRMED", "ORDER_RECEIVED", "OUT_OF_STOCK"]
    assert either.dead_letters() == []


def test_a_parcel_no_carrier_takes_faults_the_slip_and_compensates_in_reverse(runner: InProcessRunner) -> None:
    anvil = order_of("anvil", {"SKU-ANVIL-01": 1}, is_gift=True)
    stock(runner, {"SKU-ANVIL-01": 1})

    place(runner, anvil)
    runner.run()

    done = [record.activity for record in runner.records(RoutingSlipActivityCompleted, anvil.order_id)]
    [faulted] = runner.records(RoutingSlipActivityFaulted, anvil.order_id)
    undone = [record.activity for record in runner.records(RoutingSlipActivityCompensated, anvil.order_id)]
    assert done == ["pick", "pack", "gift-wrap"]
    assert faulted.activity == "ship"
    assert undone == list(reversed(done))
    assert len(runner.records(RoutingSlipFaulted, anvil.order_id)) == 1
    assert runner.records(OrderShipped, anvil.order_id) == []


SHIP = fulfillment_activity("ship")


def test_a_cancellation_during_fulfillment_stops_the_slip_refunds_and_releases(runner: InProcessRunner) -> None:
    order = order_of("cancel", {"SKU-MUG-01": 2})
    stock(runner, {"SKU-MUG-01": 5})
    place(runner, order)
    runner.hold(SHIP.name)  # the carrier's queue is behind: the slip waits there, picked and packed

    runner.run(until=lambda delivered: isinstance(delivered.record, RoutingSlipCreated))
    runner.send(
        Emit(
            ORDERS_COMMANDS,
            order.order_id,
            CancelOrder(event_id=uuid.uuid4(), order_id=order.order_id, occurred_at=utc_now(), reason="changed mind"),
        )
    )
    runner.run()
    runner.release(SHIP.name)
    runner.run()

    assert len(runner.records(OrderCancelled, order.order_id)) == 1
    assert runner.records(OrderShipped, order.order_id) == []
    [created] = runner.records(OrderCreated, order.order_id)
    refunded = runner.records(PaymentRefunded, order.order_id)
    assert sum(refund.amount.amount_minor for refund in refunded) == created.total.amount_minor
    assert len(runner.records(InventoryReleased, order.order_id)) == 1
    undone = [record.activity for record in runner.records(RoutingSlipActivityCompensated, order.order_id)]
    assert undone == ["pack", "pick"], "what was done is undone, last first"
    assert runner.records(StockLevel)[-1].available == 5
    assert "ORDER_CANCELLED" in {record.kind.value for record in runner.records(NotificationSent, order.order_id)}


def test_a_cancellation_that_overtakes_its_order_cancels_it_once_it_comes(runner: InProcessRunner) -> None:
    order = order_of("cancel-first", {"SKU-MUG-01": 2})
    stock(runner, {"SKU-MUG-01": 5})

    cancel(runner, order.order_id)
    runner.run()
    place(runner, order)
    runner.run()

    assert len(runner.records(OrderCancelled, order.order_id)) == 1
    assert runner.records(OrderCancellationRejected, order.order_id) == []
    [created] = runner.records(OrderCreated, order.order_id)
    refunded = runner.records(PaymentRefunded, order.order_id)
    assert sum(refund.amount.amount_minor for refund in refunded) == created.total.amount_minor
    assert runner.records(OrderShipped, order.order_id) == []
    assert runner.records(StockLevel)[-1].available == 5


def test_a_stop_that_reaches_the_slip_after_shipping_is_refused_and_the_order_delivered(
    runner: InProcessRunner,
) -> None:
    order = order_of("cancel-shipped", {"SKU-MUG-01": 2})
    stock(runner, {"SKU-MUG-01": 5})
    place(runner, order)
    runner.run(until=lambda delivered: isinstance(delivered.record, OrderShipped))

    command = cancel(runner, order.order_id)
    runner.run()

    [refused] = runner.records(OrderCancellationRejected, order.order_id)
    assert (refused.cancel_event_id, refused.code) == (command.event_id, "shipped")
    assert len(runner.records(OrderDelivered, order.order_id)) == 1
    assert runner.records(PaymentRefunded, order.order_id) == []
    assert runner.records(RoutingSlipActivityCompensated, order.order_id) == []
    assert runner.records(StockLevel)[-1].available == 3


def test_a_cancellation_after_delivery_is_refused_and_the_slip_completes_once(runner: InProcessRunner) -> None:
    order = order_of("cancel-late", {"SKU-MUG-01": 1})
    stock(runner, {"SKU-MUG-01": 5})
    place(runner, order)
    runner.run()

    cancel(runner, order.order_id)
    runner.run()

    [refused] = runner.records(OrderCancellationRejected, order.order_id)
    assert refused.code == "delivered"
    assert len(runner.records(RoutingSlipCompleted, order.order_id)) == 1


def test_an_order_id_used_again_is_answered_each_time_and_the_order_charged_once(
    runner: InProcessRunner, gateway: SimulatedPaymentGateway
) -> None:
    order = order_of("twice", {"SKU-MUG-01": 2})
    retried = order.model_copy(update={"event_id": uuid.uuid4(), "occurred_at": utc_now()})
    other = order.model_copy(update={"event_id": uuid.uuid4(), "is_gift": True})
    stock(runner, {"SKU-MUG-01": 5})

    for command in (order, retried, other):
        place(runner, command)
    runner.run()

    first, again = runner.records(OrderCreated, order.order_id)
    assert again == first, "the first answer repeated, event id included"
    [duplicate] = runner.records(OrderRejected, order.order_id)
    assert duplicate.codes == [DUPLICATE_ORDER_ID] and duplicate.command_event_id == other.event_id
    [message] = [d.outgoing for d in runner.log if d.record == duplicate]
    assert (REJECTION_CODES_HEADER, DUPLICATE_ORDER_ID.encode()) in message.headers
    assert len(runner.records(PaymentProcessed, order.order_id)) == 1
    assert gateway.approved_total(order.order_id) == first.total.amount_minor
    assert len(runner.records(OrderDelivered, order.order_id)) == 1
    assert runner.records(StockLevel)[-1].available == 3, "reserved once"


def test_an_unknown_sku_is_rejected_before_any_money_moves(
    runner: InProcessRunner, gateway: SimulatedPaymentGateway
) -> None:
    known = order_of("nosuch", {"SKU-MUG-01": 1})
    unknown = known.lines[0].model_copy(update={"sku": "SKU-NOSUCH-99"})
    card = known.tenders[0].model_copy(
        update={"amount": known.tenders[0].amount.model_copy(update={"amount_minor": 2 * 1290})}
    )
    order = known.model_copy(update={"lines": [*known.lines, unknown], "tenders": [card]})

    place(runner, order)
    runner.run()

    [rejected] = runner.records(OrderRejected, order.order_id)
    assert rejected.codes == ["unknown-sku"] and "SKU-NOSUCH-99" in rejected.reasons[0]
    assert not {"OrderCreated", "PaymentProcessed", "PaymentFailed"} & set(kinds(runner, order.order_id))
    assert gateway.charges(order.order_id) == []
