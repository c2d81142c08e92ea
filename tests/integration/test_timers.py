"""Durable timers fire once, not early, and survive a kill -9 of the timer process."""

from __future__ import annotations

import datetime
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.produce import produce_records
from processors.runtime.records import utc_now
from processors.timers import PROCESSOR as TIMER_GROUP
from schemas.models import TimerFired, TimerScheduled
from tests.integration.harness import Processes, Watcher
from topology.admin import wait_for_group
from topology.settings import Settings
from topology.topics import SAGA_TIMERS, TIMERS


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [SAGA_TIMERS.name])
    yield watching
    watching.close()


def schedule(settings: Settings, prefix: str, count: int, first_in_s: float, spread_s: float) -> list[TimerScheduled]:
    now = utc_now()
    timers = [
        TimerScheduled(
            event_id=uuid.uuid4(),
            order_id=f"{prefix}-order-{n % 7}",
            occurred_at=now,
            timer_id=f"{prefix}-{n}",
            due_at=now + datetime.timedelta(seconds=first_in_s + spread_s * n / count),
            fire_topic=SAGA_TIMERS.name,
            purpose="test",
        )
        for n in range(count)
    ]
    produce_records(settings, TIMERS, [(t.timer_id, t) for t in timers], progress=False)
    return timers


def cancel(settings: Settings, timer_id: str) -> None:
    producer = Producer(settings.kafka_config())
    producer.produce(TIMERS.name, key=timer_id.encode(), value=None)
    producer.flush(30)


def test_timers_fire_once_each_not_before_due_and_cancelled_ones_never(settings: Settings, watcher: Watcher) -> None:
    prefix = f"t-{uuid.uuid4().hex[:6]}"
    timers = schedule(settings, prefix, count=30, first_in_s=1.0, spread_s=2.0)
    cancelled, kept = timers[0], timers[1:]
    cancel(settings, cancelled.timer_id)
    expected = {t.timer_id for t in kept}

    seen = watcher.wait_until(
        lambda seen: {s.record.timer_id for s in seen if isinstance(s.record, TimerFired)} >= expected,
        what="every timer fired",
    )
    firings = Counter(s.record.timer_id for s in seen if isinstance(s.record, TimerFired))
    assert {timer_id: firings[timer_id] for timer_id in expected} == dict.fromkeys(expected, 1)
    assert cancelled.timer_id not in firings, "it was due first, and cancelled before"
    for s in seen:
        if isinstance(s.record, TimerFired) and s.record.timer_id in expected:
            assert s.record.occurred_at >= s.record.due_at, "never early"


def test_kill_9_of_the_timer_process_with_timers_pending_fires_each_once_after_restart(
    settings: Settings, admin: AdminClient, pipeline: Processes, watcher: Watcher
) -> None:
    prefix = f"k-{uuid.uuid4().hex[:6]}"
    timers = schedule(settings, prefix, count=40, first_in_s=0.5, spread_s=4.0)
    expected = {t.timer_id for t in timers}
    watcher.wait_until(
        lambda seen: any(isinstance(s.record, TimerFired) and s.record.timer_id in expected for s in seen),
        what="the first timers fired",
    )

    pipeline.kill("timers")
    pipeline.start("timers")
    wait_for_group(admin, TIMER_GROUP, members=1)

    seen = watcher.wait_until(
        lambda seen: {s.record.timer_id for s in seen if isinstance(s.record, TimerFired)} >= expected,
        timeout_s=90,
        what="every timer fired",
    )
    firings = Counter(
        s.record.timer_id for s in seen if isinstance(s.record, TimerFired) and s.record.timer_id in expected
    )
    assert firings == Counter(dict.fromkeys(expected, 1))
