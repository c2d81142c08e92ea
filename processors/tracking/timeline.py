"""An order's timeline across the three patterns, folded from its events; pure.

Each event moves one step (choreography: intake, payment, inventory, notifications; routing slip: each
activity; saga: each state the cancellation passes, and the refunds and releases it asks for) and the
order's summary: its status in the fleet (in-flight, compensating, faulted, completed), its outcome, the
slip's and the saga's state. Folding an event twice changes nothing (its id is remembered).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from processors.intake_rules import is_duplicate_id_rejection
from processors.runtime.records import derive_event_id
from processors.sagas.cancellation import Phase
from schemas.models import (
    AvroRecord,
    CancelOrder,
    InventoryReleased,
    InventoryReserved,
    InventoryShortage,
    NotificationSent,
    OrderCancellationRejected,
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderEvent,
    OrderFailed,
    OrderFailureReason,
    OrderRejected,
    OrderTimeline,
    PaymentFailed,
    PaymentProcessed,
    PaymentRefunded,
    PaymentRefundFailed,
    PlaceOrder,
    RoutingSlipActivityCompensated,
    RoutingSlipActivityCompensationFailed,
    RoutingSlipActivityCompleted,
    RoutingSlipActivityFaulted,
    RoutingSlipCompensationFailed,
    RoutingSlipCompleted,
    RoutingSlipCreated,
    RoutingSlipFaulted,
    RoutingSlipRevised,
    RoutingSlipTerminated,
    SagaTransitioned,
    TimelineStep,
)

CHOREOGRAPHY, ROUTING_SLIP, SAGA = "choreography", "routing-slip", "saga"
PENDING, STARTED, COMPLETED, FAILED = "pending", "started", "completed", "failed"
COMPENSATED, COMPENSATION_FAILED, SKIPPED = "compensated", "compensation-failed", "skipped"

IN_FLIGHT, COMPENSATING, FAULTED, DONE = "in-flight", "compensating", "faulted", "completed"
STATUSES = (IN_FLIGHT, COMPENSATING, FAULTED, DONE)
SAGA_OVER = (Phase.CANCELLED, Phase.REJECTED, Phase.FAILED)
# How the saga's last step ends on the timeline, by the saga's final phase.
SAGA_ENDINGS: dict[str, str] = {Phase.CANCELLED: COMPLETED, Phase.REJECTED: COMPLETED, Phase.FAILED: FAILED}
SEEN_KEPT = 200  # event ids remembered per order, newest last
DUPLICATE_ID_ANSWERED = "duplicate order id answered"
# Pydantic gives every model the set of the fields it was given, 728 bytes each. The fold gives a step or a
# timeline every field, and so does a decoder, so the tracker's timelines and steps can share one set per
# class: more than half of a timeline's memory. No shared set changes: the models are frozen, and
# `model_copy` changes a copy of the set.
STEP_FIELDS = set(TimelineStep.model_fields)
TIMELINE_FIELDS = set(OrderTimeline.model_fields)


def new_timeline(order_id: str, at: datetime.datetime) -> OrderTimeline:
    """An order's timeline before its first step. Its id is the order's own, the same in every run, so that a
    repeated message publishes the same record."""
    return OrderTimeline(
        event_id=derive_event_id(order_id, "timeline"),
        order_id=order_id,
        occurred_at=at,
        status=IN_FLIGHT,
        last_progress_at=at,
        steps=[],
    )


def folds(record: AvroRecord) -> bool:
    """Whether the record's type changes a timeline at all."""
    return type(record) in APPLY


def fold(timeline: OrderTimeline | None, record: AvroRecord, trace_id: str | None = None) -> OrderTimeline | None:
    """The timeline after `record`, or None when `record` changes nothing (a duplicate, or not an order's).
    `trace_id`, the trace the record's message belongs to, becomes the order's if it has none yet."""
    apply = APPLY.get(type(record))
    if apply is None or not isinstance(record, OrderEvent):
        return None
    event_id, at = str(record.event_id), record.occurred_at
    if timeline is not None and event_id in timeline.seen:
        return None
    view = Draft(timeline or new_timeline(record.order_id, at))
    apply(view, record)
    if trace_id is not None and view.timeline.trace_id is None:
        view.set(trace_id=trace_id)
    return view.finish(event_id, at)


class Draft:
    """A timeline being changed by one event.

    The tracker folds every event it reads, so only the steps an event touches are copied into dicts to
    change in place; the others stay the models they were."""

    def __init__(self, timeline: OrderTimeline) -> None:
        self.timeline = timeline
        self.steps: list[TimelineStep | dict[str, Any]] = list(timeline.steps)
        self.changes: dict[str, object] = {}

    def find(self, pattern: str, name: str) -> dict[str, Any] | None:
        for index, step in enumerate(self.steps):
            if _field(step, "pattern") == pattern and _field(step, "name") == name:
                return self._editable(index)
        return None

    def first(self, pattern: str, status: str) -> dict[str, Any] | None:
        """The first step of `pattern` in `status`, to change in place."""
        for index, step in enumerate(self.steps):
            if _field(step, "pattern") == pattern and _field(step, "status") == status:
                return self._editable(index)
        return None

    def every(self, pattern: str, status: str) -> list[dict[str, Any]]:
        """Every step of `pattern` in `status`, to change in place."""
        return [
            self._editable(index)
            for index, step in enumerate(self.steps)
            if _field(step, "pattern") == pattern and _field(step, "status") == status
        ]

    def _editable(self, index: int) -> dict[str, Any]:
        step = self.steps[index]
        if isinstance(step, TimelineStep):
            # A step has only scalar fields: a shallow copy is a full one.
            step = self.steps[index] = dict(step.__dict__)
        return step

    def step(self, pattern: str, name: str) -> dict[str, Any]:
        """The step's fields, to change in place; a new pending step if there is none yet."""
        found = self.find(pattern, name)
        if found is not None:
            return found
        step = TimelineStep(pattern=pattern, name=name, status=PENDING).model_dump()
        self.steps.append(step)
        return step

    def start(self, pattern: str, name: str, at: datetime.datetime) -> None:
        step = self.step(pattern, name)
        if step["status"] == PENDING:
            step.update(status=STARTED, started_at=at)

    def end(
        self,
        pattern: str,
        name: str,
        status: str,
        at: datetime.datetime,
        started: datetime.datetime | None = None,
        error: str | None = None,
    ) -> None:
        step = self.step(pattern, name)
        step.update(status=status, ended_at=at, error=error, started_at=started or step["started_at"] or at)

    def mark(self, pattern: str, name: str, status: str, error: str | None = None) -> None:
        """A new status for a step that ran (its times stay those of its execution)."""
        self.step(pattern, name).update(status=status, error=error)

    def set(self, **changes: object) -> None:
        self.changes.update(changes)

    def finish(self, event_id: str, at: datetime.datetime) -> OrderTimeline:
        # In the order they started, whatever order their events were folded in (a catch-up reads topics
        # unevenly); steps not started keep their place after them (an itinerary's order).
        steps = [
            step if isinstance(step, TimelineStep) else _share(TimelineStep.model_validate(step), STEP_FIELDS)
            for step in self.steps
        ]
        started = sorted((step for step in steps if step.started_at), key=_started_at)
        waiting = [step for step in steps if not step.started_at]
        latest = max(self.timeline.last_progress_at, at)
        changes = {
            **self.changes,
            "steps": [*started, *waiting],
            "event_id": derive_event_id(event_id, "timeline"),
            "occurred_at": latest,
            "last_progress_at": latest,
            "seen": [*self.timeline.seen, event_id][-SEEN_KEPT:],
        }
        fields = {**self.timeline.__dict__, **changes}
        fields["status"] = _status(fields["saga"], fields["slip"], fields["outcome"], fields["placed_at"])
        return _share(OrderTimeline.model_validate(fields), TIMELINE_FIELDS)


Shared = TypeVar("Shared", bound=BaseModel)


def _share(model: Shared, fields: set[str]) -> Shared:
    # As many as the class has is all of them: a model takes no field it does not declare (extra="forbid").
    if len(model.__pydantic_fields_set__) == len(fields):
        object.__setattr__(model, "__pydantic_fields_set__", fields)
    return model


def _field(step: TimelineStep | dict[str, Any], name: str) -> Any:
    return step[name] if isinstance(step, dict) else getattr(step, name)


def _started_at(step: TimelineStep) -> datetime.datetime:
    assert step.started_at is not None
    return step.started_at


def status_of(timeline: OrderTimeline) -> str:
    return _status(timeline.saga, timeline.slip, timeline.outcome, timeline.placed_at)


def _status(saga: str | None, slip: str | None, outcome: str | None, placed_at: datetime.datetime | None) -> str:
    if saga == Phase.FAILED or slip == COMPENSATION_FAILED:
        return FAULTED
    if saga is not None and saga not in SAGA_OVER:
        return COMPENSATING
    if outcome is not None or saga == Phase.CANCELLED:
        return DONE
    if placed_at is None and saga in SAGA_OVER:
        return DONE  # a cancellation of an order never placed: answered, nothing else to come
    if slip == "compensating":
        return COMPENSATING
    if slip in ("faulted", "terminated"):
        return FAULTED
    return IN_FLIGHT


class Progressing(Protocol):
    """Where an order stands: a timeline, or what the fleet's gauges keep of one (`fleet.Standing`)."""

    @property
    def status(self) -> str: ...

    @property
    def last_progress_at(self) -> datetime.datetime: ...


def is_stuck(timeline: Progressing, now: datetime.datetime, after: datetime.timedelta) -> bool:
    """In flight or compensating, and nothing happened for `after`."""
    return timeline.status in (IN_FLIGHT, COMPENSATING) and now - timeline.last_progress_at >= after


# --- one function per event type --------------------------------------------------------------------


def placed(view: Draft, record: PlaceOrder) -> None:
    view.start(CHOREOGRAPHY, "intake", record.occurred_at)
    view.set(placed_at=view.timeline.placed_at or record.occurred_at)


def created(view: Draft, record: OrderCreated) -> None:
    view.end(CHOREOGRAPHY, "intake", COMPLETED, record.occurred_at)
    view.start(CHOREOGRAPHY, "payment", record.occurred_at)


def rejected(view: Draft, record: OrderRejected) -> None:
    if is_duplicate_id_rejection(record):
        # The answer to another PlaceOrder under this id: noted, while the order holding the id goes on as it was.
        view.end(CHOREOGRAPHY, DUPLICATE_ID_ANSWERED, COMPLETED, record.occurred_at, error="; ".join(record.reasons))
        return
    view.end(CHOREOGRAPHY, "intake", FAILED, record.occurred_at, error="; ".join(record.reasons))
    view.set(outcome="rejected")


def paid(view: Draft, record: PaymentProcessed) -> None:
    view.end(CHOREOGRAPHY, "payment", COMPLETED, record.occurred_at)
    view.start(CHOREOGRAPHY, "inventory", record.occurred_at)


def payment_failed(view: Draft, record: PaymentFailed) -> None:
    view.end(CHOREOGRAPHY, "payment", FAILED, record.occurred_at, error=record.reason)
    view.set(outcome="payment-failed")


def reserved(view: Draft, record: InventoryReserved) -> None:
    view.end(CHOREOGRAPHY, "inventory", COMPLETED, record.occurred_at)


def short(view: Draft, record: InventoryShortage) -> None:
    lines = ", ".join(f"{line.sku} {line.available}/{line.requested}" for line in record.short_lines)
    view.end(CHOREOGRAPHY, "inventory", FAILED, record.occurred_at, error=f"short: {lines}")
    view.set(outcome="out-of-stock")


def slip_created(view: Draft, record: RoutingSlipCreated) -> None:
    for activity in record.itinerary:
        view.step(ROUTING_SLIP, activity)
    if record.itinerary:
        view.start(ROUTING_SLIP, record.itinerary[0], record.occurred_at)
    view.set(slip="running")


def activity_completed(view: Draft, record: RoutingSlipActivityCompleted) -> None:
    started = record.occurred_at - datetime.timedelta(milliseconds=record.duration_ms)
    view.end(ROUTING_SLIP, record.activity, COMPLETED, record.occurred_at, started=started)
    following = view.first(ROUTING_SLIP, PENDING)
    if following is not None:
        following.update(status=STARTED, started_at=record.occurred_at)


def activity_faulted(view: Draft, record: RoutingSlipActivityFaulted) -> None:
    view.end(ROUTING_SLIP, record.activity, FAILED, record.occurred_at, error=record.reason)
    view.set(slip="compensating")


def activity_compensated(view: Draft, record: RoutingSlipActivityCompensated) -> None:
    view.mark(ROUTING_SLIP, record.activity, COMPENSATED)


def compensation_failed(view: Draft, record: RoutingSlipActivityCompensationFailed) -> None:
    view.mark(ROUTING_SLIP, record.activity, COMPENSATION_FAILED, error=record.reason)


def revised(view: Draft, record: RoutingSlipRevised) -> None:
    for activity in record.itinerary:
        view.step(ROUTING_SLIP, activity)


def slip_ended(outcome: str) -> Callable[[Draft, AvroRecord], None]:
    def ended(view: Draft, record: AvroRecord) -> None:
        for step in view.every(ROUTING_SLIP, STARTED):  # addressed, but the slip ended before it ran
            step.update(status=SKIPPED, started_at=None)
        view.set(slip=outcome)

    return ended


def delivered(view: Draft, record: OrderDelivered) -> None:
    view.set(outcome="delivered")


# The outcome an `OrderFailed` tells, named as the event that decided it names it.
FAILURE_OUTCOMES: dict[OrderFailureReason, str] = {
    OrderFailureReason.PAYMENT_FAILED: "payment-failed",
    OrderFailureReason.OUT_OF_STOCK: "out-of-stock",
}


def failed(view: Draft, record: OrderFailed) -> None:
    view.set(outcome=FAILURE_OUTCOMES.get(record.reason, "failed"))


def notified(view: Draft, record: NotificationSent) -> None:
    view.end(CHOREOGRAPHY, f"notify {record.kind.value.lower().replace('_', ' ')}", COMPLETED, record.occurred_at)


def cancel_asked(view: Draft, record: CancelOrder) -> None:
    view.end(SAGA, "cancellation asked", COMPLETED, record.occurred_at, error=None)


def transitioned(view: Draft, record: SagaTransitioned) -> None:
    if record.from_state != record.to_state:
        previous = view.find(SAGA, record.from_state)
        if previous is not None and previous["status"] == STARTED:
            previous.update(status=COMPLETED, ended_at=record.occurred_at)
    ending = SAGA_ENDINGS.get(record.to_state)
    if ending is not None:
        view.end(SAGA, record.to_state, ending, record.occurred_at, error=record.reason)
    else:
        step = view.step(SAGA, record.to_state)
        step.update(
            status=STARTED,
            started_at=step["started_at"] or record.occurred_at,
            ended_at=None,
            error=f"attempt {record.attempt}" if record.attempt > 1 else None,
        )
    view.set(saga=record.to_state, saga_reason=record.reason)


def refunded(view: Draft, record: PaymentRefunded) -> None:
    name = f"refund {record.method.value.lower().replace('_', ' ')}"
    view.end(SAGA, name, COMPLETED, record.occurred_at)


def refund_failed(view: Draft, record: PaymentRefundFailed) -> None:
    view.end(SAGA, "refund", FAILED, record.occurred_at, error=record.reason)


def released(view: Draft, record: InventoryReleased) -> None:
    view.end(SAGA if view.timeline.saga else CHOREOGRAPHY, "release stock", COMPLETED, record.occurred_at)


def cancelled(view: Draft, record: OrderCancelled) -> None:
    view.set(outcome="cancelled")


def cancellation_rejected(view: Draft, record: OrderCancellationRejected) -> None:
    view.end(SAGA, "cancellation rejected", COMPLETED, record.occurred_at, error=record.reason)


APPLY: dict[type[AvroRecord], Callable[[Draft, Any], None]] = {
    PlaceOrder: placed,
    OrderCreated: created,
    OrderRejected: rejected,
    PaymentProcessed: paid,
    PaymentFailed: payment_failed,
    InventoryReserved: reserved,
    InventoryShortage: short,
    RoutingSlipCreated: slip_created,
    RoutingSlipActivityCompleted: activity_completed,
    RoutingSlipActivityFaulted: activity_faulted,
    RoutingSlipActivityCompensated: activity_compensated,
    RoutingSlipActivityCompensationFailed: compensation_failed,
    RoutingSlipRevised: revised,
    RoutingSlipCompleted: slip_ended("completed"),
    RoutingSlipFaulted: slip_ended("faulted"),
    RoutingSlipTerminated: slip_ended("terminated"),
    RoutingSlipCompensationFailed: slip_ended(COMPENSATION_FAILED),
    OrderDelivered: delivered,
    OrderFailed: failed,
    NotificationSent: notified,
    CancelOrder: cancel_asked,
    SagaTransitioned: transitioned,
    PaymentRefunded: refunded,
    PaymentRefundFailed: refund_failed,
    InventoryReleased: released,
    OrderCancelled: cancelled,
    OrderCancellationRejected: cancellation_rejected,
}
