"""The tracker's view from the command line: one order's timeline, and lists of slips and sagas."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any

from ops.tables import read_table
from ops.view_index import ViewIndex
from processors.runtime.records import utc_now
from processors.tracking.timeline import DONE, FAULTED, PENDING, SKIPPED, is_stuck, status_of
from schemas.models import OrderTimeline, TimelineStep
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.settings import Settings
from topology.topics import TRACKING_ORDERS


def read_view(settings: Settings) -> dict[str, OrderTimeline]:
    """Every order's latest timeline, by order id."""
    codec = RecordCodec(registry_client(settings), TRACKING_ORDERS.name)
    rows = read_table(settings, TRACKING_ORDERS.name)
    return {order_id: codec.decode_as(row.value, OrderTimeline) for order_id, row in rows.items()}


def read_timeline(settings: Settings, order_id: str) -> OrderTimeline | None:
    """One order's latest timeline, through the local index of the view (`ops/view_index.py`): the records
    added since the last call are indexed, then one record is read."""
    index = ViewIndex(settings, TRACKING_ORDERS.name)
    try:
        index.catch_up()
        value = index.lookup(order_id)
    finally:
        index.close()
    if value is None:
        return None
    return RecordCodec(registry_client(settings), TRACKING_ORDERS.name).decode_as(value, OrderTimeline)


def as_json(timelines: Iterable[OrderTimeline]) -> str:
    return json.dumps([summary(t) | {"steps": steps(t)} for t in timelines], indent=2, default=str)


def summary(timeline: OrderTimeline) -> dict[str, Any]:
    return timeline.model_dump(mode="json", exclude={"steps", "seen", "event_id"})


def steps(timeline: OrderTimeline) -> list[dict[str, Any]]:
    return [step.model_dump(mode="json") | {"duration_ms": duration_ms(step)} for step in shown_steps(timeline)]


def shown_steps(timeline: OrderTimeline) -> list[TimelineStep]:
    """The steps as an operator should read them: once the order is over (completed or faulted), a step still
    pending will not run, and shows as skipped.

    The view keeps it pending (a faulted saga retried or a slip resumed may still run it); only the reading
    changes, so timelines folded before this rule read the same way."""
    if status_of(timeline) not in (DONE, FAULTED):
        return list(timeline.steps)
    return [step.model_copy(update={"status": SKIPPED}) if step.status == PENDING else step for step in timeline.steps]


def duration_ms(step: Any) -> int | None:
    if step.started_at is None or step.ended_at is None:
        return None
    return round((step.ended_at - step.started_at).total_seconds() * 1000)


def timeline_lines(timeline: OrderTimeline, stuck_after: datetime.timedelta) -> list[str]:
    stuck = " (stuck)" if is_stuck(timeline, utc_now(), stuck_after) else ""
    head = [
        f"order {timeline.order_id}: {timeline.status}{stuck}"
        + (f", {timeline.outcome}" if timeline.outcome else "")
        + (f"; slip {timeline.slip}" if timeline.slip else "")
        + (f"; saga {timeline.saga}" if timeline.saga else "")
        + (f"; trace {timeline.trace_id}" if timeline.trace_id else ""),
        f"{'pattern':<13} {'step':<24} {'status':<20} {'started':<13} {'took':>8}  error",
    ]
    rows = []
    for step in shown_steps(timeline):
        started = step.started_at.strftime("%H:%M:%S.%f")[:-3] if step.started_at else "-"
        took = duration_ms(step)
        rows.append(
            f"{step.pattern:<13} {step.name:<24} {step.status:<20} {started:<13} "
            f"{f'{took} ms' if took is not None else '-':>8}  {step.error or ''}"
        )
    return head + rows


def slip_rows(view: dict[str, OrderTimeline], stuck: bool, faulted: bool, stuck_after: datetime.timedelta) -> list:
    now = utc_now()
    found = [t for t in view.values() if t.slip is not None]
    if stuck:
        found = [t for t in found if is_stuck(t, now, stuck_after)]
    if faulted:
        found = [t for t in found if t.slip in ("faulted", "compensation-failed")]
    return sorted(found, key=lambda t: t.last_progress_at)


def saga_rows(view: dict[str, OrderTimeline], state: str | None) -> list[OrderTimeline]:
    found = [t for t in view.values() if t.saga is not None and (state is None or t.saga == state)]
    return sorted(found, key=lambda t: t.last_progress_at)
