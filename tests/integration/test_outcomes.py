"""A partner that reads only `oms.orders.events` learns how each order ended, failures included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.produce import produce_orders
from processors.adapters.catalog import OUT_OF_STOCK_SKU
from schemas.models import OrderFailed, OrderFailureReason
from tests.factories import order_of
from tests.integration.harness import Processes, Watcher
from tests.integration.test_choreography import set_stock_and_wait
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ORDERS_EVENTS


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [ORDERS_EVENTS.name, INVENTORY_STOCK.name])
    yield watching
    watching.close()


def test_a_partner_on_the_orders_topic_alone_learns_a_declined_card_and_a_shortage(
    settings: Settings, watcher: Watcher
) -> None:
    set_stock_and_wait(settings, watcher, {"SKU-MUG-01": 50, OUT_OF_STOCK_SKU: 0})
    declined = order_of("ext-declined", {"SKU-MUG-01": 1})
    declined = declined.model_copy(
        update={"tenders": [declined.tenders[0].model_copy(update={"token": "tok_declined_ext"})]}
    )
    short = order_of("ext-short", {OUT_OF_STOCK_SKU: 1})

    produce_orders(settings, [declined, short], progress=False)

    def ends(order_id: str) -> list[OrderFailed]:
        return [s.record for s in watcher.for_order(order_id) if isinstance(s.record, OrderFailed)]

    watcher.wait_until(
        lambda _: bool(ends(declined.order_id) and ends(short.order_id)), timeout_s=90, what="both ends told"
    )
    [payment] = ends(declined.order_id)
    [stock] = ends(short.order_id)
    assert (payment.reason, payment.code, payment.refunded) == (
        OrderFailureReason.PAYMENT_FAILED,
        "card-declined",
        None,
    )
    assert stock.reason is OrderFailureReason.OUT_OF_STOCK
    assert stock.refunded == short.tenders[0].amount, "told once all it was charged went back"
