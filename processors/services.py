"""The processors `oms run` knows, and how one is run in the foreground."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import Application

from processors import intake, inventory, notifications, payments, stock
from processors.fulfillment import host as activities
from processors.fulfillment import starter as fulfillment
from processors.runtime.app import make_application
from schemas.registry import registry_client
from topology.settings import Settings

Build = Callable[[Application, Settings, SchemaRegistryClient], None]

# name -> (consumer group, pipeline builder); `oms run all` starts them in this order.
SERVICES: dict[str, tuple[str, Build]] = {
    "intake": (intake.PROCESSOR, intake.build),
    "payments": (payments.PROCESSOR, payments.build),
    "inventory": (inventory.PROCESSOR, inventory.build),
    "stock": (stock.PROCESSOR, stock.build),
    "fulfillment": (fulfillment.PROCESSOR, fulfillment.build),
    "activities": (activities.PROCESSOR, activities.build),
    "notifications": (notifications.PROCESSOR, notifications.build),
}


def run(name: str, settings: Settings) -> None:
    """Run one processor until SIGINT or SIGTERM; Quix Streams commits and closes on either."""
    group, build = SERVICES[name]
    app = make_application(group, settings)
    build(app, settings, registry_client(settings))
    app.run()
