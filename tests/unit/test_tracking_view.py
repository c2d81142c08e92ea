"""How `oms track` and the dashboard show an order's steps: a finished order shows no step as pending."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from ops.tracking import steps, timeline_lines
from processors.tracking.timeline import fold
from schemas.models import (
    AvroRecord,
    InventoryReserved,
    Money,
    OrderCancelled,
    OrderTimeline,
    PaymentProcessed,
    RoutingSlipActivityCompleted,
    RoutingSlipCreated,
    RoutingSlipFaulted,
    RoutingSlipTerminated,
    SagaTransitioned,
    StockLine,
)
from tests.factories import NOW, a_valid_order, order_created_from

ORDER = "o-view"
SLIP = uuid.uuid4()
ITINERARY = ["pick", "pack", "ship", "confirm-delivery"]
STUCK_AFTER = datetime.timedelta(seconds=30)


def at(seconds: float) -> dict[str, Any]:
    return {"event_id": uuid.uuid4(), "order_id": ORDER, "occurred_at": NOW + datetime.timedelta(seconds=seconds)}


def folded(*records: AvroRecord) -> OrderTimeline:
    timeline = None
    for record in records:
        timeline = fold(timeline, record) or timeline
    assert timeline is not None
    return timeline


def picked() -> list[AvroRecord]:
    placed = a_valid_order(ORDER)
    return [
        placed,
        order_created_from(placed).model_copy(update={"occurred_at": NOW + datetime.timedelta(seconds=0.1)}),
        PaymentProcessed(**at(0.3), amount=Money(amount_minor=3000, currency="EUR"), charges=[], lines=[]),
        InventoryReserved(**at(0.5), lines=[StockLine(sku="SKU-MUG-01", quantity=2)]),
        RoutingSlipCreated(**at(0.6), tracking_number=SLIP, itinerary=ITINERARY),
        RoutingSlipActivityCompleted(**at(0.9), tracking_number=SLIP, activity="pick", duration_ms=200),
    ]


def moved(source: str, target: str, seconds: float) -> SagaTransitioned:
    return SagaTransitioned(
        **at(seconds),
        saga="cancellation",
        saga_id="c-1",
        from_state=source,
        to_state=target,
        trigger="x",
        trigger_event_id="e",
        actions=[],
        attempt=1,
    )


def cancelled() -> OrderTimeline:
    return folded(
        *picked(),
        moved("Idle", "StoppingFulfillment", 1),
        RoutingSlipTerminated(**at(1.1), tracking_number=SLIP, activity="pack", reason="cancelled"),
        moved("StoppingFulfillment", "Cancelled", 2),
        OrderCancelled(**at(2.1), reason="changed my mind"),
    )


def shown_status(timeline: OrderTimeline) -> dict[str, str]:
    return {step["name"]: step["status"] for step in steps(timeline) if step["pattern"] == "routing-slip"}


def test_a_cancelled_order_shows_the_steps_it_never_ran_as_skipped() -> None:
    timeline = cancelled()

    assert timeline.status == "completed"
    assert shown_status(timeline) == {
        "pick": "completed",
        "pack": "skipped",
        "ship": "skipped",
        "confirm-delivery": "skipped",
    }
    lines = timeline_lines(timeline, STUCK_AFTER)
    assert not any(" pending " in line for line in lines), lines
    assert any(line.split()[1:3] == ["confirm-delivery", "skipped"] for line in lines), lines


def test_a_faulted_order_shows_no_step_as_pending() -> None:
    timeline = folded(*picked(), RoutingSlipFaulted(**at(1), tracking_number=SLIP, reason="no box"))

    assert timeline.status == "faulted"
    assert "pending" not in {step["status"] for step in steps(timeline)}
    assert shown_status(timeline)["confirm-delivery"] == "skipped"


def test_an_order_in_flight_still_shows_what_is_to_come_as_pending() -> None:
    timeline = folded(*picked())

    assert timeline.status == "in-flight"
    assert shown_status(timeline) == {
        "pick": "completed",
        "pack": "started",
        "ship": "pending",
        "confirm-delivery": "pending",
    }
    assert [step.status for step in timeline.steps if step.name == "ship"] == ["pending"], "the view is unchanged"
