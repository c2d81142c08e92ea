"""Crashes and rebalances in the middle of a stream lose no order and repeat no effect."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.orders import GeneratedOrder, OrderMix, generate_orders
from ops.produce import produce_orders
from ops.stock import read_stock
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.inventory import PROCESSOR as INVENTORY
from processors.payments import PROCESSOR as PAYMENTS
from processors.stock import PROCESSOR as STOCK
from schemas.models import InventoryReserved, PaymentProcessed
from tests.integration.harness import Processes, Watcher
from tests.integration.test_choreography import (
    OUTCOME_OF_EXPECTED,
    WATCHED,
    outcomes_by_order,
    set_stock_and_wait,
    stock_for,
)
from topology.admin import wait_for_group
from topology.settings import Settings

MIX = OrderMix(valid=0.6, invalid=0.05, declined=0.15, shortage=0.1, flaky=0.1)


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, WATCHED)
    yield watching
    watching.close()


def stream_with(
    settings: Settings, orders: list[GeneratedOrder], rate_per_s: float, disruption: Callable[[], None]
) -> None:
    """Produce the orders at a steady rate while `disruption` runs alongside."""
    disrupting = threading.Thread(target=disruption)
    disrupting.start()
    produce_orders(settings, [order.record for order in orders], rate_per_s=rate_per_s, progress=False)
    disrupting.join()


def assert_every_order_decided_once(watcher: Watcher, orders: list[GeneratedOrder]) -> None:
    order_ids = {order.order_id for order in orders}
    seen = watcher.wait_until(
        lambda seen: len(outcomes_by_order(seen, order_ids)) == len(orders), timeout_s=180, what="every outcome"
    )
    outcomes = outcomes_by_order(seen, order_ids)
    for order in orders:
        assert len(outcomes[order.order_id]) == 1, (order.order_id, outcomes[order.order_id])
        assert outcomes[order.order_id][0] in OUTCOME_OF_EXPECTED[order.expected]
    processed = Counter(s.key for s in seen if isinstance(s.record, PaymentProcessed) and s.key in order_ids)
    assert set(processed.values()) <= {1}, "one PaymentProcessed per order"


def assert_stock_adds_up(
    settings: Settings, watcher: Watcher, orders: list[GeneratedOrder], initial: dict[str, int]
) -> None:
    order_ids = {order.order_id for order in orders}
    reserved: Counter[str] = Counter()
    for s in watcher.seen:
        if isinstance(s.record, InventoryReserved) and s.key in order_ids:
            reserved.update({line.sku: line.quantity for line in s.record.lines})
    remaining = read_stock(settings)
    assert {sku: remaining[sku] for sku in initial} == {sku: units - reserved[sku] for sku, units in initial.items()}


def test_kill_9_of_payments_and_inventory_mid_stream_loses_nothing_and_repeats_nothing(
    settings: Settings, admin: AdminClient, pipeline: Processes, watcher: Watcher
) -> None:
    orders = generate_orders(300, seed=11, prefix=f"crash-{uuid.uuid4().hex[:6]}", mix=MIX)
    initial = stock_for(orders, spare=3)
    set_stock_and_wait(settings, watcher, initial)

    def crash_and_restart() -> None:
        time.sleep(1.0)
        pipeline.kill("payments")
        time.sleep(0.5)
        pipeline.kill("inventory")
        pipeline.kill("stock")
        time.sleep(1.0)
        for name in ("payments", "inventory", "stock"):
            pipeline.start(name)

    stream_with(settings, orders, rate_per_s=120, disruption=crash_and_restart)
    for group in (PAYMENTS, INVENTORY, STOCK):
        wait_for_group(admin, group, members=1)

    assert_every_order_decided_once(watcher, orders)
    assert_stock_adds_up(settings, watcher, orders, initial)
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    for order in orders:
        charges = gateway.charges(order.order_id)
        keys = Counter(charge.idempotency_key for charge in charges)
        assert set(keys.values()) <= {1}, order.order_id
        paid = order.expected in ("created-paid-reserved", "shortage")
        total = sum(line.quantity * line.unit_price.amount_minor for line in order.record.lines)
        assert gateway.approved_total(order.order_id) == (total if paid else 0), order


def test_second_inventory_instances_take_over_the_partitions_and_state_of_stopped_ones(
    settings: Settings, admin: AdminClient, pipeline: Processes, watcher: Watcher
) -> None:
    orders = generate_orders(200, seed=12, prefix=f"scale-{uuid.uuid4().hex[:6]}", mix=MIX)
    initial = stock_for(orders, spare=2)
    set_stock_and_wait(settings, watcher, initial)
    scaled = {"inventory": INVENTORY, "stock": STOCK}
    for name, group in scaled.items():
        pipeline.start(name, instance="1")
        wait_for_group(admin, group, members=2)
        members = admin.describe_consumer_groups([group])[group].result(10).members
        assert all(member.assignment.topic_partitions for member in members), f"both {name} instances own partitions"

    def stop_the_first_ones() -> None:
        time.sleep(1.0)
        for name in scaled:
            assert pipeline.stop(name, instance="0") == 0

    try:
        stream_with(settings, orders, rate_per_s=100, disruption=stop_the_first_ones)
        for group in scaled.values():
            wait_for_group(admin, group, members=1)
        assert_every_order_decided_once(watcher, orders)
        assert_stock_adds_up(settings, watcher, orders, initial)
    finally:
        for name, group in scaled.items():
            if (name, "0") not in pipeline.running:
                pipeline.start(name, instance="0")
            pipeline.stop(name, instance="1")
            wait_for_group(admin, group, members=1)
