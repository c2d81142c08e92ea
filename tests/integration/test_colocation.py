"""The order-keyed processors run together on the real broker (docs/adr/0002-co-location.md): the engine takes
over where the processors alone stopped and publishes every event they would; they take over again after it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.orders import GeneratedOrder, OrderMix, generate_orders
from ops.produce import produce_orders
from ops.replay import committed
from processors.runtime.colocated import CHAIN_PROCESSOR
from schemas.models import (
    InventoryReserved,
    NotificationSent,
    OrderCreated,
    OrderDelivered,
    PaymentProcessed,
)
from tests.integration.harness import Processes, Seen, Watcher
from tests.integration.test_choreography import set_stock_and_wait
from topology.settings import Settings
from topology.topics import (
    INVENTORY_EVENTS,
    INVENTORY_STOCK,
    NOTIFICATIONS_EVENTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
)

WATCHED = [ORDERS_EVENTS.name, PAYMENTS_EVENTS.name, INVENTORY_EVENTS.name, NOTIFICATIONS_EVENTS.name]
VALID = OrderMix(valid=1.0, invalid=0.0, declined=0.0, shortage=0.0, flaky=0.0)
MEMBERS_SEEN = {"oms.intake", "oms.payments", "oms.inventory", "oms.activities", "oms.notifications"}


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [*WATCHED, INVENTORY_STOCK.name])
    yield watching
    watching.close()


def all_delivered(orders: list[GeneratedOrder]) -> Callable[[list[Seen]], bool]:
    wanted = {order.order_id for order in orders}
    return lambda seen: wanted <= {s.key for s in seen if isinstance(s.record, OrderDelivered)}


def place_and_deliver(settings: Settings, watcher: Watcher, orders: list[GeneratedOrder]) -> None:
    """Stock for `orders` (applied once stock reports it back), then the orders, each to its delivery."""
    set_stock_and_wait(settings, watcher, {line.sku: 1_000 for order in orders for line in order.record.lines})
    produce_orders(settings, [order.record for order in orders])
    watcher.wait_until(all_delivered(orders), timeout_s=120, what="every order delivered")


def commands_read(admin: AdminClient, group: str) -> dict[int, int]:
    return {tp.partition: tp.offset for tp in committed(admin, group) if tp.topic == ORDERS_COMMANDS.name}


def created_once(watcher: Watcher, orders: list[GeneratedOrder]) -> bool:
    watcher.poll(2.0)  # anything a second reading of the commands would lead to has had its time
    created = Counter(s.key for s in watcher.seen if isinstance(s.record, OrderCreated))
    return all(created[order.order_id] == 1 for order in orders)


def test_the_engine_takes_over_where_the_processors_stood_and_publishes_what_each_would(
    settings: Settings, admin: AdminClient, watcher: Watcher, request: pytest.FixtureRequest
) -> None:
    alone = generate_orders(3, 31, prefix=f"alone-{uuid.uuid4().hex[:6]}", mix=VALID)
    place_and_deliver(settings, watcher, alone)

    request.getfixturevalue("colocated_fleet")  # from here on the order-keyed processors run as one engine
    assert commands_read(admin, CHAIN_PROCESSOR) == commands_read(admin, "oms.intake")

    together = generate_orders(3, 32, prefix=f"together-{uuid.uuid4().hex[:6]}", mix=VALID)
    place_and_deliver(settings, watcher, together)

    assert created_once(watcher, [*alone, *together]), "nothing placed before the switch is created again"
    for order in together:
        events = [s for s in watcher.for_order(order.order_id) if s.record is not None]
        assert {OrderCreated, PaymentProcessed, InventoryReserved, OrderDelivered, NotificationSent} <= {
            type(s.record) for s in events
        }
        assert {s.headers["ce_source"].decode() for s in events} >= MEMBERS_SEEN, "each under its own name"
        assert len({s.headers["ce_id"] for s in events}) == len(events), "no event published twice"


def test_the_processors_alone_take_over_again_where_the_engine_stood(
    settings: Settings, admin: AdminClient, watcher: Watcher
) -> None:
    assert all(
        offset >= commands_read(admin, CHAIN_PROCESSOR).get(partition, 0)
        for partition, offset in commands_read(admin, "oms.intake").items()
    )

    orders = generate_orders(3, 33, prefix=f"alone-again-{uuid.uuid4().hex[:6]}", mix=VALID)
    place_and_deliver(settings, watcher, orders)

    assert created_once(watcher, orders)
