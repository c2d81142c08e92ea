"""The choreography end to end on the real broker and registry: intake, payments, inventory, notifications."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.orders import GeneratedOrder, OrderMix, demand_by_sku, generate_orders
from ops.produce import produce_orders
from ops.stock import read_stock, set_stock
from processors.adapters.catalog import OUT_OF_STOCK_SKU
from processors.adapters.notification_channel import FileNotificationChannel, notifications_file
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.stock import PROCESSOR as STOCK
from schemas.models import (
    AvroRecord,
    InventoryReserved,
    InventoryShortage,
    NotificationKind,
    NotificationSent,
    OrderCreated,
    OrderFailed,
    OrderFailureReason,
    OrderRejected,
    PaymentFailed,
    PaymentProcessed,
    PaymentRefunded,
    StockLevel,
)
from tests.integration.harness import Processes, Seen, Watcher
from topology.settings import Settings
from topology.topics import INVENTORY_EVENTS, INVENTORY_STOCK, NOTIFICATIONS_EVENTS, ORDERS_EVENTS, PAYMENTS_EVENTS

OUTCOMES = (OrderRejected, PaymentFailed, InventoryReserved, InventoryShortage)
OUTCOME_OF_EXPECTED: dict[str, set[type[AvroRecord]]] = {
    "rejected": {OrderRejected},
    "payment-failed": {PaymentFailed},
    "created-paid-reserved": {InventoryReserved},
    "shortage": {InventoryShortage},
    "may-shortage": {InventoryReserved, InventoryShortage},
}
# The end the orders topic tells of an order that a payment failure or a shortage decided.
TOLD_AS: dict[type[AvroRecord], OrderFailureReason] = {
    PaymentFailed: OrderFailureReason.PAYMENT_FAILED,
    InventoryShortage: OrderFailureReason.OUT_OF_STOCK,
}
NOTIFIED: dict[type[AvroRecord], NotificationKind] = {
    OrderCreated: NotificationKind.ORDER_RECEIVED,
    PaymentProcessed: NotificationKind.ORDER_CONFIRMED,
    PaymentFailed: NotificationKind.PAYMENT_FAILED,
    InventoryShortage: NotificationKind.OUT_OF_STOCK,
}
WATCHED = [
    ORDERS_EVENTS.name,
    PAYMENTS_EVENTS.name,
    INVENTORY_EVENTS.name,
    NOTIFICATIONS_EVENTS.name,
    INVENTORY_STOCK.name,
]


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, WATCHED)
    yield watching
    watching.close()


def stock_for(orders: list[GeneratedOrder], spare: int) -> dict[str, int]:
    """Enough of every SKU the orders want, plus `spare`; none of the out-of-stock SKU."""
    levels = {sku: units + spare for sku, units in demand_by_sku(orders).items()}
    levels[OUT_OF_STOCK_SKU] = 0
    return levels


def set_stock_and_wait(settings: Settings, watcher: Watcher, levels: dict[str, int]) -> None:
    """Operator levels, applied once inventory reports each of them back as its own."""
    set_stock(settings, levels)

    def applied(seen: list[Seen]) -> bool:
        reported = {
            s.record.sku: s.record.available
            for s in seen
            if isinstance(s.record, StockLevel) and s.headers.get("ce_source") == STOCK.encode()
        }
        return all(reported.get(sku) == units for sku, units in levels.items())

    watcher.wait_until(applied, what="inventory applied the stock levels")


def outcomes_by_order(seen: list[Seen], order_ids: set[str]) -> dict[str, list[type[AvroRecord]]]:
    outcomes: dict[str, list[type[AvroRecord]]] = {}
    for s in seen:
        if s.key in order_ids and isinstance(s.record, OUTCOMES):
            outcomes.setdefault(s.key, []).append(type(s.record))
    return outcomes


def test_mixed_orders_each_reach_exactly_one_outcome_of_the_right_kind(settings: Settings, watcher: Watcher) -> None:
    orders = generate_orders(200, seed=7, prefix=f"choreo-{uuid.uuid4().hex[:6]}", mix=OrderMix(scarce=0.0))
    order_ids = {order.order_id for order in orders}
    initial = stock_for(orders, spare=5)
    set_stock_and_wait(settings, watcher, initial)

    produce_orders(settings, [order.record for order in orders], progress=False)
    seen = watcher.wait_until(
        lambda seen: len(outcomes_by_order(seen, order_ids)) == len(orders), timeout_s=120, what="every outcome"
    )

    outcomes = outcomes_by_order(seen, order_ids)
    for order in orders:
        assert len(outcomes[order.order_id]) == 1, (order.order_id, outcomes[order.order_id])
        assert outcomes[order.order_id][0] in OUTCOME_OF_EXPECTED[order.expected], (order, outcomes[order.order_id])
    created = {s.key for s in seen if isinstance(s.record, OrderCreated) and s.key in order_ids}
    paid = {s.key for s in seen if isinstance(s.record, PaymentProcessed) and s.key in order_ids}
    assert created == {o.order_id for o in orders if o.expected != "rejected"}
    assert paid == {o.order_id for o in orders if o.expected not in ("rejected", "payment-failed")}

    # Stock adds up: what was there, less what reserved orders hold, is what remains.
    reserved: Counter[str] = Counter()
    for s in seen:
        if isinstance(s.record, InventoryReserved) and s.key in order_ids:
            reserved.update({line.sku: line.quantity for line in s.record.lines})
    remaining = read_stock(settings)
    for sku, units in initial.items():
        assert remaining[sku] == units - reserved[sku], sku
        assert remaining[sku] >= 0

    # Money adds up: reserved orders stay paid; short ones are refunded in full; failed ones cost nothing.
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    refunded = {o.order_id for o in orders if o.expected == "shortage"}
    watcher.wait_until(
        lambda seen: {s.key for s in seen if isinstance(s.record, PaymentRefunded) and s.key in refunded} == refunded,
        what="short orders refunded",
    )
    for order in orders:
        total = sum(line.quantity * line.unit_price.amount_minor for line in order.record.lines)
        kept = total if order.expected == "created-paid-reserved" else 0
        assert gateway.out_of_pocket(order.order_id) == kept, order

    # Each failure is told once on the orders topic, naming the event that decided it; a short order's says
    # that all it was charged went back.
    deciders = {
        str(s.key): s.record
        for s in seen
        if s.key in order_ids and isinstance(s.record, PaymentFailed | InventoryShortage)
    }
    seen = watcher.wait_until(
        lambda seen: {s.key for s in seen if isinstance(s.record, OrderFailed) and s.key in order_ids} == set(deciders),
        what="every failure told on the orders topic",
    )
    ends = [(s.topic, str(s.key), s.record) for s in seen if isinstance(s.record, OrderFailed) and s.key in order_ids]
    assert sorted(key for _, key, _ in ends) == sorted(deciders), "one end per failed order"
    charged = {
        order.order_id: sum(line.quantity * line.unit_price.amount_minor for line in order.record.lines)
        for order in orders
    }
    for topic, key, end in ends:
        decider = deciders[key]
        assert (topic, end.reason, end.caused_by) == (ORDERS_EVENTS.name, TOLD_AS[type(decider)], decider.event_id)
        if end.reason is OrderFailureReason.OUT_OF_STOCK:
            assert end.refunded is not None and end.refunded.amount_minor == charged[key]

    # Each kind of notification reaches the customer once per order.
    expected_notices = {
        (s.key, NOTIFIED[type(s.record)])
        for s in seen
        if s.key in order_ids and s.record is not None and type(s.record) in NOTIFIED
    }
    seen = watcher.wait_until(
        lambda seen: (
            {(s.key, s.record.kind) for s in seen if isinstance(s.record, NotificationSent) and s.key in order_ids}
            >= expected_notices
        ),
        what="every notification",
    )
    # Fulfillment tells customers of shipping and delivery too; those are the routing-slip tests' business.
    notices = Counter(
        (s.key, s.record.kind)
        for s in seen
        if isinstance(s.record, NotificationSent) and s.key in order_ids and s.record.kind in NOTIFIED.values()
    )
    assert set(notices) == expected_notices
    assert set(notices.values()) == {1}
    sent = FileNotificationChannel(notifications_file(settings)).count_by_key()
    for order_id, kind in expected_notices:
        assert sent[f"{order_id}/{kind}"] == 1
