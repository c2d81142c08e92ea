"""`oms timers`: pending timers soonest first, the late ones marked."""

from __future__ import annotations

import datetime
import uuid

from rich.console import Console

from ops.timers_view import timers_table
from schemas.models import TimerScheduled
from tests.factories import NOW


def timer(order_id: str, due_in_s: float) -> TimerScheduled:
    return TimerScheduled(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        timer_id=f"{order_id}/refund-timeout",
        due_at=NOW + datetime.timedelta(seconds=due_in_s),
        fire_topic="oms.sagas.timers",
        purpose="refund-timeout",
    )


def test_a_late_timer_says_how_late_and_a_pending_one_how_soon() -> None:
    console = Console(record=True, width=200)
    console.print(timers_table([timer("o-late", -42), timer("o-soon", 30)], NOW))
    text = console.export_text()
    late, soon = (line for line in text.splitlines() if line.strip().startswith("o-"))
    assert "o-late" in late and "late by 42s" in late
    assert "o-soon" in soon and "30s" in soon and "late" not in soon
