"""docs/producing.md's example producer, run as a third party would run it, places an order that is delivered."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.producing import EXAMPLE
from schemas.models import OrderCreated, OrderDelivered
from tests.integration.harness import Processes, Seen, Watcher
from tests.integration.test_choreography import set_stock_and_wait
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ORDERS_EVENTS


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [ORDERS_EVENTS.name, INVENTORY_STOCK.name])
    yield watching
    watching.close()


def test_the_example_producer_places_an_order_that_is_delivered(settings: Settings, watcher: Watcher) -> None:
    set_stock_and_wait(settings, watcher, {"SKU-MUG-01": 50, "SKU-TEA-01": 50})
    order_id = f"ext-{uuid.uuid4().hex[:10]}"

    placed = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            order_id,
            "--bootstrap",
            settings.kafka_bootstrap_servers,
            "--registry",
            settings.schema_registry_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert placed.returncode == 0, placed.stderr
    assert placed.stdout.strip() == order_id

    def delivered(seen: list[Seen]) -> bool:
        return any(isinstance(s.record, OrderDelivered) for s in watcher.for_order(order_id))

    watcher.wait_until(delivered, timeout_s=90, what=f"{order_id} delivered")
    created = [s.record for s in watcher.for_order(order_id) if isinstance(s.record, OrderCreated)]
    assert len(created) == 1
