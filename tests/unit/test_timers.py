from __future__ import annotations

import datetime
import uuid

from processors.timers import PendingTimers, firing
from schemas.models import TimerScheduled
from tests.factories import NOW


def timer(timer_id: str, in_seconds: float) -> TimerScheduled:
    return TimerScheduled(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=NOW,
        timer_id=timer_id,
        due_at=NOW + datetime.timedelta(seconds=in_seconds),
        fire_topic="oms.sagas.timers",
        purpose="refund-timeout",
    )


def test_due_timers_come_earliest_first_and_later_ones_wait() -> None:
    pending = PendingTimers()
    for timer_id, seconds in (("b", 2), ("a", 1), ("c", 10)):
        pending.schedule(timer(timer_id, seconds))

    assert [t.timer_id for t in pending.due(NOW + datetime.timedelta(seconds=5))] == ["a", "b"]
    assert pending.next_due() == NOW + datetime.timedelta(seconds=1)


def test_a_cancelled_timer_never_comes_due() -> None:
    pending = PendingTimers()
    pending.schedule(timer("a", 1))
    pending.cancel("a")

    assert pending.due(NOW + datetime.timedelta(seconds=5)) == []
    assert pending.next_due() is None


def test_scheduling_a_timer_again_replaces_it() -> None:
    pending = PendingTimers()
    pending.schedule(timer("a", 1))
    pending.schedule(timer("a", 30))

    assert pending.due(NOW + datetime.timedelta(seconds=5)) == []
    assert pending.next_due() == NOW + datetime.timedelta(seconds=30)


def test_a_firing_derives_its_id_from_the_timer() -> None:
    scheduled = timer("a", 1)

    first, again = firing(scheduled, NOW), firing(scheduled, NOW + datetime.timedelta(seconds=1))

    assert first.event_id == again.event_id and first.timer_id == "a" and first.purpose == "refund-timeout"
