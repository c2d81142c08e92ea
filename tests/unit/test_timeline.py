"""The tracker's fold: events of one order into its timeline across the three patterns (no broker)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest

from processors.intake import decide
from processors.intake_rules import is_duplicate_id_rejection
from processors.tracking.timeline import DUPLICATE_ID_ANSWERED, STEP_FIELDS, TIMELINE_FIELDS, fold, is_stuck
from schemas.models import (
    AvroRecord,
    Money,
    OrderDelivered,
    OrderFailed,
    OrderFailureReason,
    OrderTimeline,
    PaymentProcessed,
    RoutingSlipActivityCompensated,
    RoutingSlipActivityFaulted,
    RoutingSlipFaulted,
    SagaTransitioned,
    TimelineStep,
)
from tests.factories import NOW, a_valid_order, order_created_from, record_of
from tests.timelines import fields_at, folded, up_to_the_first_pick

ORDER = "o-1"
SLIP = uuid.uuid4()


def at(seconds: float) -> dict[str, Any]:
    return fields_at(ORDER, seconds)


def happy_path() -> list[AvroRecord]:
    return up_to_the_first_pick(ORDER, SLIP, ["pick", "pack", "ship"])


def test_an_order_s_steps_follow_the_choreography_then_its_slip_with_times_and_durations() -> None:
    timeline = folded(*happy_path())

    assert [(s.pattern, s.name, s.status) for s in timeline.steps] == [
        ("choreography", "intake", "completed"),
        ("choreography", "payment", "completed"),
        ("choreography", "inventory", "completed"),
        ("routing-slip", "pick", "completed"),
        ("routing-slip", "pack", "started"),
        ("routing-slip", "ship", "pending"),
    ]
    pick = timeline.steps[3]
    assert pick.ended_at is not None and pick.started_at is not None
    assert (pick.ended_at - pick.started_at).total_seconds() == 0.2
    assert (timeline.status, timeline.slip, timeline.outcome) == ("in-flight", "running", None)
    assert timeline.last_progress_at == NOW + datetime.timedelta(seconds=0.9)


def test_a_delivered_order_is_completed_and_a_faulted_slip_without_cancellation_is_faulted() -> None:
    delivered = folded(*happy_path(), OrderDelivered(**at(2), carrier="dhl"))
    faulted = folded(
        *happy_path(),
        RoutingSlipActivityFaulted(**at(1), tracking_number=SLIP, activity="pack", reason="no box"),
    )
    assert faulted.status == "compensating"
    faulted = folded(
        *happy_path(),
        RoutingSlipActivityFaulted(**at(1), tracking_number=SLIP, activity="pack", reason="no box"),
        RoutingSlipActivityCompensated(**at(1.1), tracking_number=SLIP, activity="pick"),
        RoutingSlipFaulted(**at(1.2), tracking_number=SLIP, reason="no box"),
    )

    assert (delivered.status, delivered.outcome) == ("completed", "delivered")
    assert faulted.status == "faulted"
    assert [s.status for s in faulted.steps if s.name in ("ship",)] == ["pending"]
    assert [(s.name, s.status, s.error) for s in faulted.steps if s.pattern == "routing-slip"][:2] == [
        ("pick", "compensated", None),
        ("pack", "failed", "no box"),
    ]


def test_a_cancellation_shows_each_saga_state_and_ends_completed() -> None:
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

    during = folded(*happy_path(), moved("Idle", "StoppingFulfillment", 1))
    done = folded(
        *happy_path(),
        moved("Idle", "StoppingFulfillment", 1),
        moved("StoppingFulfillment", "Refunding", 2),
        moved("Refunding", "Cancelled", 3),
    )

    assert (during.status, during.saga) == ("compensating", "StoppingFulfillment")
    assert [(s.name, s.status) for s in done.steps if s.pattern == "saga"] == [
        ("StoppingFulfillment", "completed"),
        ("Refunding", "completed"),
        ("Cancelled", "completed"),
    ]
    assert done.status == "completed"


def test_an_event_folded_twice_changes_nothing() -> None:
    events = happy_path()
    timeline = folded(*events)

    assert fold(timeline, events[-1]) is None


def test_an_order_without_progress_for_the_threshold_is_stuck() -> None:
    timeline = folded(*happy_path())
    last = timeline.last_progress_at

    assert not is_stuck(timeline, last + datetime.timedelta(seconds=29), datetime.timedelta(seconds=30))
    assert is_stuck(timeline, last + datetime.timedelta(seconds=30), datetime.timedelta(seconds=30))
    delivered = folded(*happy_path(), OrderDelivered(**at(2), carrier="dhl"))
    assert not is_stuck(delivered, last + datetime.timedelta(hours=1), datetime.timedelta(seconds=30))


def test_a_compensated_activity_keeps_the_times_of_its_execution() -> None:
    timeline = folded(*happy_path(), RoutingSlipActivityCompensated(**at(5), tracking_number=SLIP, activity="pick"))

    [pick] = [s for s in timeline.steps if s.name == "pick"]
    assert pick.status == "compensated"
    assert pick.ended_at == NOW + datetime.timedelta(seconds=0.9)


def test_a_cancellation_of_an_order_never_placed_is_answered_and_over() -> None:
    rejected = SagaTransitioned(
        **at(0),
        saga="cancellation",
        saga_id="c-1",
        from_state="Idle",
        to_state="Rejected",
        trigger="oms.CancelOrder",
        trigger_event_id="e",
        actions=["OrderCancellationRejected"],
        attempt=1,
        reason="no such order",
    )

    assert folded(rejected).status == "completed"


def test_a_step_addressed_but_never_run_before_the_slip_ended_is_skipped() -> None:
    stopped = folded(*happy_path(), RoutingSlipFaulted(**at(1), tracking_number=SLIP, reason="stopped: cancelled"))

    assert [(s.name, s.status) for s in stopped.steps if s.pattern == "routing-slip"] == [
        ("pick", "completed"),
        ("pack", "skipped"),
        ("ship", "pending"),
    ]


def test_events_folded_out_of_order_give_the_same_steps_in_the_order_they_started() -> None:
    in_order = folded(*happy_path())
    shuffled = folded(*reversed(happy_path()))

    assert [s.name for s in shuffled.steps] == [s.name for s in in_order.steps]
    assert (shuffled.status, shuffled.slip) == (in_order.status, in_order.slip)


def test_a_rejected_order_is_completed_with_its_reasons() -> None:
    placed = a_valid_order(ORDER, customer_email="nope")
    [answer] = decide(None, placed, NOW + datetime.timedelta(seconds=0.1))[1]

    timeline = folded(placed, record_of(answer))

    assert (timeline.status, timeline.outcome) == ("completed", "rejected")
    [intake] = timeline.steps
    assert (intake.name, intake.status, intake.error) == ("intake", "failed", "email address is not valid")


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        (OrderFailureReason.PAYMENT_FAILED, "payment-failed"),
        (OrderFailureReason.OUT_OF_STOCK, "out-of-stock"),
        (OrderFailureReason.OTHER, "failed"),
    ],
)
def test_an_order_failed_ends_the_order_with_its_reason(reason: OrderFailureReason, outcome: str) -> None:
    placed = a_valid_order(ORDER)
    ended = OrderFailed(**at(1), reason=reason, detail="told on the orders topic", caused_by=uuid.uuid4())

    timeline = folded(placed, order_created_from(placed), ended)

    assert (timeline.status, timeline.outcome) == ("completed", outcome)


def test_a_duplicate_order_id_is_noted_and_leaves_the_order_as_it_was() -> None:
    first = happy_path()
    second = a_valid_order(ORDER, customer_email="grace@example.com")
    state, _ = decide(None, a_valid_order(ORDER), NOW)
    [duplicate] = decide(state, second, NOW + datetime.timedelta(seconds=1))[1]
    assert is_duplicate_id_rejection(record_of(duplicate))

    in_flight = folded(*first)
    noted = folded(*first, second, record_of(duplicate))
    delivered = folded(*first, second, record_of(duplicate), OrderDelivered(**at(2), carrier="dhl"))

    assert (noted.status, noted.outcome, noted.placed_at) == (in_flight.status, None, in_flight.placed_at)
    [note] = [step for step in noted.steps if step.name == DUPLICATE_ID_ANSWERED]
    assert note.status == "completed" and note.error is not None and note.error.startswith("duplicate order id")
    assert [s for s in noted.steps if s.name != DUPLICATE_ID_ANSWERED] == in_flight.steps
    assert (delivered.status, delivered.outcome) == ("completed", "delivered")


def test_the_order_takes_the_trace_of_its_first_event_that_carries_one() -> None:
    order = a_valid_order(ORDER)
    untraced = fold(None, order)
    assert untraced is not None and untraced.trace_id is None

    traced = fold(untraced, order_created_from(order), trace_id="0af7651916cd43dd8448eb211c80319c")
    assert traced is not None and traced.trace_id == "0af7651916cd43dd8448eb211c80319c"

    paid = PaymentProcessed(**at(1), amount=Money(amount_minor=100, currency="EUR"), charges=[])
    later = fold(traced, paid, trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    assert later is not None and later.trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_every_step_and_timeline_folded_shares_one_set_of_the_fields_given_per_class() -> None:
    """Pydantic keeps a set of the fields given to each model, 728 bytes: one per class instead of one per
    model is more than half of a timeline's memory. It must say what pydantic would (every field), and stay
    so: the models are frozen, and a copy changes a copy of the set."""
    one, other = folded(*happy_path()), folded(*up_to_the_first_pick("o-2", uuid.uuid4(), ["pick"]))

    assert {id(step.model_fields_set) for step in [*one.steps, *other.steps]} == {id(STEP_FIELDS)}
    assert one.model_fields_set is other.model_fields_set is TIMELINE_FIELDS
    assert (set(TimelineStep.model_fields), set(OrderTimeline.model_fields)) == (STEP_FIELDS, TIMELINE_FIELDS)
    one.model_copy(update={"status": "completed"})
    one.steps[0].model_copy(update={"status": "failed"})
    assert (set(TimelineStep.model_fields), set(OrderTimeline.model_fields)) == (STEP_FIELDS, TIMELINE_FIELDS)
