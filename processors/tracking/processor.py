"""The tracker: every order's timeline across the three patterns, folded from its events and published on the
compacted `oms.tracking.orders`, where `oms track`, the dashboard and the fleet's gauges read it.

A declared processor like the others: it reads everything an order's timeline is made of (the commands, and
the events of intake, payments, inventory, its routing slip, its saga and its notifications), keeps the
order's timeline in its state and publishes it each time it changes, under the order's key. Run with the other
order-keyed processors (docs/adr/0002-co-location.md) it takes their events in memory, and the chain publishes
only the last timeline of each order that one message leads to (the topic is compacted: the latest wins).
Records the timeline has no use for (a `RetrySaga`) are passed over by the schema they were written with;
anything else the stage cannot use is dead-lettered, as by every processor.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import State

from processors.runtime.deadletters import Received
from processors.runtime.metrics import ACTIVITY_SECONDS, ORDER_LATENCY, ROUTING_SLIPS
from processors.runtime.records import Emit
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import Handler
from processors.runtime.state import StateSlot
from processors.runtime.tracing import trace_id_of
from processors.tracking.timeline import APPLY, fold
from processors.tracking.view import summary_headers
from schemas.models import AvroRecord, OrderTimeline, RoutingSlipActivityCompleted
from topology.settings import Settings
from topology.topics import (
    FULFILLMENT_ACTIVITIES,
    INVENTORY_EVENTS,
    NOTIFICATIONS_EVENTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
    SAGAS_EVENTS,
    TRACKING_ORDERS,
)

PROCESSOR = "oms.tracker"
INPUTS = (
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    INVENTORY_EVENTS,
    ROUTING_SLIPS_EVENTS,
    SAGAS_EVENTS,
    NOTIFICATIONS_EVENTS,
)
OTHER_ACTIVITY = "other"
SLIP_ENDS = ("completed", "faulted", "terminated", "compensation-failed")
TIMELINE = StateSlot("timeline", OrderTimeline)


def track(record: AvroRecord, state: State, message: Received) -> Iterable[Emit]:
    """The order's timeline after `record`, published when it changed."""
    before = TIMELINE.load(state)
    after = fold(before, record, trace_id_of(message.headers))
    if after is None:
        return []
    observe(record, before, after)
    TIMELINE.save(state, after)
    return [Emit(TRACKING_ORDERS, after.order_id, after, summary_headers(after))]


def activity_label(activity: str) -> str:
    """A declared activity's name; any other (the field is free text) is one label, `other`: a label per
    value a producer makes up would grow every scrape without bound."""
    return activity if activity in FULFILLMENT_ACTIVITIES else OTHER_ACTIVITY


def observe(record: AvroRecord, before: OrderTimeline | None, after: OrderTimeline) -> None:
    """Metrics of one event, folded for the first time."""
    if isinstance(record, RoutingSlipActivityCompleted):
        ACTIVITY_SECONDS.labels(activity_label(record.activity)).observe(record.duration_ms / 1000)
    if after.slip in SLIP_ENDS and (before is None or before.slip != after.slip):
        ROUTING_SLIPS.labels(after.slip).inc()
    if after.outcome and after.placed_at and (before is None or before.outcome != after.outcome):
        ORDER_LATENCY.labels(after.outcome).observe((after.last_progress_at - after.placed_at).total_seconds())


def _handler(settings: Settings, registry: SchemaRegistryClient) -> Handler:
    return track


SPEC = ProcessorSpec(
    name="tracker",
    group=PROCESSOR,
    streams=(Stream(INPUTS, _handler, handles=tuple(APPLY)),),
    outputs=(TRACKING_ORDERS,),
    state="order id: its timeline, as last published on oms.tracking.orders",
)
