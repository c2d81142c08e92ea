"""One order's hops under one trace, on the real broker: every record the order causes, on every topic up to its
delivery, carries a `traceparent` of the trace its command started, and the tracker puts that trace on the
order's timeline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from opentelemetry.trace import SpanKind

from ops.produce import produce_orders
from processors.runtime.tracing import TRACEPARENT, Operation, handling, trace_id_of
from schemas.models import OrderDelivered, OrderTimeline
from tests.integration.harness import Processes, Seen, Watcher
from tests.integration.test_cancellation import SKU, tee_order
from tests.integration.test_choreography import set_stock_and_wait
from topology.settings import Settings
from topology.topics import (
    FULFILLMENT_ACTIVITIES,
    INVENTORY_EVENTS,
    NOTIFICATIONS_EVENTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
    STOCK_REQUESTS,
    TIMERS,
    TRACKING_ORDERS,
    WORKFLOW_TOPICS,
    fulfillment_activity,
)

WATCHED = [topic.name for topic in WORKFLOW_TOPICS if topic is not TIMERS] + [TRACKING_ORDERS.name]


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, WATCHED)
    yield watching
    watching.close()


def of_order(seen: list[Seen], order_id: str) -> list[Seen]:
    """What the order caused on the workflow topics: keyed by it, or naming it (stock requests are by SKU)."""
    return [
        s
        for s in seen
        if s.topic != TRACKING_ORDERS.name and (s.key == order_id or getattr(s.record, "order_id", None) == order_id)
    ]


def timeline(seen: list[Seen], order_id: str) -> OrderTimeline | None:
    views = [s.record for s in seen if s.key == order_id and isinstance(s.record, OrderTimeline)]
    return views[-1] if views else None


def test_one_orders_hops_to_its_delivery_are_one_trace_shown_on_its_timeline(
    settings: Settings, watcher: Watcher
) -> None:
    placed = tee_order("traced")
    set_stock_and_wait(settings, watcher, {SKU: 5})

    with handling(None, Operation("place order", SpanKind.CLIENT)) as client_span:
        produce_orders(settings, [placed], progress=False)
    trace_id = client_span.trace_id

    def delivered_and_tracked(seen: list[Seen]) -> bool:
        view = timeline(seen, placed.order_id)
        return (
            any(isinstance(s.record, OrderDelivered) for s in of_order(seen, placed.order_id))
            and view is not None
            and view.outcome == "delivered"
        )

    seen = watcher.wait_until(delivered_and_tracked, timeout_s=120, what="the order delivered and tracked")

    records = of_order(seen, placed.order_id)
    untraced = [(s.topic, s.record_type) for s in records if TRACEPARENT not in s.headers]
    assert untraced == []
    in_other_traces = [(s.topic, s.record_type) for s in records if trace_id_of(list(s.headers.items())) != trace_id]
    assert in_other_traces == []
    spans = {s.headers[TRACEPARENT] for s in records}
    assert len(spans) > len(FULFILLMENT_ACTIVITIES)  # each hop its own span, not one header copied along
    touched = {s.topic for s in records}
    assert touched >= {
        ORDERS_COMMANDS.name,
        ORDERS_EVENTS.name,
        PAYMENTS_EVENTS.name,
        INVENTORY_EVENTS.name,
        STOCK_REQUESTS.name,
        ROUTING_SLIPS_EVENTS.name,
        fulfillment_activity("ship").name,
        NOTIFICATIONS_EVENTS.name,
    }
    view = timeline(seen, placed.order_id)
    assert view is not None and view.trace_id == trace_id
