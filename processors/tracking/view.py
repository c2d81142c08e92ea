"""What a record of the view (`oms.tracking.orders`) says in its headers, so that a reader can follow where
every order stands without decoding it: its status in the fleet, its saga's state, and when it last moved."""

from __future__ import annotations

import datetime

from schemas.models import OrderTimeline

STATUS_HEADER, SAGA_HEADER, PROGRESS_HEADER = "oms-status", "oms-saga", "oms-progress-at"


def summary_headers(timeline: OrderTimeline) -> tuple[tuple[str, bytes], ...]:
    """The status, the saga's state (empty: none) and the last progress, in milliseconds since the epoch."""
    progress_ms = int(timeline.last_progress_at.timestamp() * 1000)
    return (
        (STATUS_HEADER, timeline.status.encode()),
        (SAGA_HEADER, (timeline.saga or "").encode()),
        (PROGRESS_HEADER, str(progress_ms).encode()),
    )


def progress_at(value: str) -> datetime.datetime:
    """The last progress a `PROGRESS_HEADER` names."""
    return datetime.datetime.fromtimestamp(int(value) / 1000, datetime.UTC)
