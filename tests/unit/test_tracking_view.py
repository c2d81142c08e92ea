"""How `oms track` and the dashboard show an order's steps: a finished order shows no step as pending."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from ops.tracking import steps, timeline_lines
from schemas.models import (
    AvroRecord,
    OrderCancelled,
    OrderTimeline,
    RoutingSlipFaulted,
    RoutingSlipTerminated,
    SagaTransitioned,
)
from tests.timelines import fields_at, folded, up_to_the_first_pick

ORDER = "o-view"
SLIP = uuid.uuid4()
ITINERARY = ["pick", "pack", "ship", "confirm-delivery"]
STUCK_AFTER = datetime.timedelta(seconds=30)


def at(seconds: float) -> dict[str, Any]:
    return fields_at(ORDER, seconds)


def picked() -> list[AvroRecord]:
    return up_to_the_first_pick(ORDER, SLIP, ITINERARY)


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
