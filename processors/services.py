"""The processors `oms run` knows, and how one is run in the foreground."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import Application

from processors import intake, inventory, notifications, payments, stock, timers
from processors.fulfillment import host as activities
from processors.fulfillment import starter as fulfillment
from processors.runtime.app import instance_id, make_application
from processors.runtime.metrics import serve_metrics
from processors.sagas import processor as sagas
from processors.tracking import tracker
from schemas.registry import registry_client
from topology.settings import Settings

Build = Callable[[Application, Settings, SchemaRegistryClient], None]


@dataclass(frozen=True)
class Service:
    group: str
    """The consumer group its instances share."""
    run: Callable[[Settings], None]
    """Runs one instance until SIGINT or SIGTERM."""


def stream_processor(group: str, build: Build) -> Service:
    """A Quix Streams application; Quix commits and closes on SIGINT or SIGTERM."""

    def run(settings: Settings) -> None:
        app = make_application(group, settings)
        build(app, settings, registry_client(settings))
        app.run()

    return Service(group, run)


# `oms run all` starts them in this order.
SERVICES: dict[str, Service] = {
    "intake": stream_processor(intake.PROCESSOR, intake.build),
    "payments": stream_processor(payments.PROCESSOR, payments.build),
    "inventory": stream_processor(inventory.PROCESSOR, inventory.build),
    "stock": stream_processor(stock.PROCESSOR, stock.build),
    "fulfillment": stream_processor(fulfillment.PROCESSOR, fulfillment.build),
    "activities": stream_processor(activities.PROCESSOR, activities.build),
    "notifications": stream_processor(notifications.PROCESSOR, notifications.build),
    "sagas": stream_processor(sagas.PROCESSOR, sagas.build),
    "timers": Service(timers.PROCESSOR, timers.run),
    "tracker": Service(tracker.PROCESSOR, tracker.run),
}


def run(name: str, settings: Settings) -> None:
    serve_metrics(name, instance_id())
    SERVICES[name].run(settings)
