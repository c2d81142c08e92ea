"""Durable timers fire once, not early, and survive a kill -9 of the timer process; a record of `oms.timers`
the service cannot use goes to `oms.timers.dlq` once, and the timers around it still fire."""

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
from processors.timers import firing
from schemas.models import TimerFired, TimerScheduled
from schemas.serde import RecordCodec
from tests.integration.harness import Processes, Seen, Watcher
from topology.admin import wait_for_group
from topology.settings import Settings
from topology.topics import ORDERS_EVENTS, SAGA_TIMERS, TIMERS

TIMERS_DLQ = TIMERS.dead_letter_topic.name


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [SAGA_TIMERS.name], raw=[TIMERS_DLQ])
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
    # The partitioner the sagas use: the tombstone lands in the timer's partition, so that no catch-up can read
    # it before the timer.
    producer = Producer(settings.producer_config())
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


def a_timer(timer_id: str, in_s: float, **changes: object) -> TimerScheduled:
    now = utc_now()
    scheduled = TimerScheduled(
        event_id=uuid.uuid4(),
        order_id=f"{timer_id}-order",
        occurred_at=now,
        timer_id=timer_id,
        due_at=now + datetime.timedelta(seconds=in_s),
        fire_topic=SAGA_TIMERS.name,
        purpose="test",
    )
    return scheduled.model_copy(update=changes)


def fired_ids(seen: list[Seen]) -> Counter[str]:
    return Counter(s.record.timer_id for s in seen if isinstance(s.record, TimerFired))


def test_timers_the_service_cannot_use_are_dead_lettered_once_and_the_others_still_fire(
    settings: Settings, registry: SchemaRegistryClient, admin: AdminClient, pipeline: Processes, watcher: Watcher
) -> None:
    run = uuid.uuid4().hex[:6]
    codec = RecordCodec(registry, TIMERS.name)
    # A key that is not UTF-8 is left to the unit tests: on this shared broker it would stay on the compacted
    # topic, and a timer service that does not dead-letter it would crash on it whenever it reads the topic back.
    # A real timer, then a record that overwrites it under its key: the timer must still fire.
    overwritten = a_timer(f"overwritten-{run}", in_s=4)
    elsewhere = a_timer(f"elsewhere-{run}", in_s=0, fire_topic=ORDERS_EVENTS.name)
    poison: dict[bytes, bytes] = {
        elsewhere.timer_id.encode(): codec.encode(elsewhere),
        f"garbled-{run}".encode(): b"not a timer",
        f"mislabelled-{run}".encode(): codec.encode(a_timer(f"another-{run}", in_s=0)),
        # A record of another type, framed with the schema id of its own topic.
        f"fired-{run}".encode(): RecordCodec(registry, SAGA_TIMERS.name).encode(
            firing(a_timer(f"fired-{run}", in_s=0), utc_now())
        ),
        overwritten.timer_id.encode(): codec.encode(overwritten.model_copy(update={"fire_topic": "nowhere"})),
    }
    before = a_timer(f"before-{run}", in_s=1)
    producer = Producer(settings.kafka_config())
    for scheduled in (before, overwritten):
        producer.produce(TIMERS.name, key=scheduled.timer_id.encode(), value=codec.encode(scheduled))
    producer.flush(30)
    for key, value in poison.items():
        producer.produce(TIMERS.name, key=key, value=value, headers=[("trace", run.encode())])
    after = a_timer(f"after-{run}", in_s=1)
    producer.produce(TIMERS.name, key=after.timer_id.encode(), value=codec.encode(after))
    producer.flush(30)

    def letters(seen: list[Seen]) -> list[Seen]:
        return [s for s in seen if s.topic == TIMERS_DLQ and s.headers.get("trace") == run.encode()]

    seen = watcher.wait_until(
        lambda seen: (
            len(letters(seen)) == len(poison)
            and fired_ids(seen).keys() >= {before.timer_id, after.timer_id, overwritten.timer_id}
        ),
        what="every unusable timer dead-lettered and the good ones fired",
    )

    reasons = {}
    for letter in letters(seen):
        assert letter.headers["dlq.original.topic"] == TIMERS.name.encode()
        assert letter.headers["dlq.processor"] == TIMER_GROUP.encode()
        reasons[letter.value] = letter.headers["dlq.error.message"].decode()
    assert reasons.keys() == set(poison.values()), "one dead letter of each, with the original bytes"
    assert "would fire to 'oms.orders.events', not oms.sagas.timers" in reasons[poison[elsewhere.timer_id.encode()]]
    assert "not Confluent-framed Avro" in reasons[poison[f"garbled-{run}".encode()]]
    assert f"is keyed 'mislabelled-{run}'" in reasons[poison[f"mislabelled-{run}".encode()]]
    assert "not oms.sagas.TimerFired" in reasons[poison[f"fired-{run}".encode()]]
    assert "would fire to 'nowhere'" in reasons[poison[overwritten.timer_id.encode()]]

    # A restart reads the log again from the beginning: nothing is dead-lettered twice, and timers still fire.
    pipeline.kill("timers")
    pipeline.start("timers")
    wait_for_group(admin, TIMER_GROUP, members=1)
    later = a_timer(f"later-{run}", in_s=1)
    produce_records(settings, TIMERS, [(later.timer_id, later)], progress=False)
    seen = watcher.wait_until(lambda seen: later.timer_id in fired_ids(seen), what="a timer after the restart fired")

    assert len(letters(seen)) == len(poison)
    fired = fired_ids(seen)
    assert [fired[t.timer_id] for t in (before, after, overwritten, later)] == [1, 1, 1, 1]
    assert not {f"another-{run}", elsewhere.timer_id} & fired.keys()
