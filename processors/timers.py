"""Durable timers, Kafka-native: Quix Streams has none, and a saga's state is reachable only for its key.

A saga schedules a timer by producing `TimerScheduled` to the compacted `oms.timers` (key: timer id) and
cancels it with a tombstone. This process owns some of that topic's partitions (a consumer group shares
them among instances); on every assignment it reads them from the beginning to the end, so it holds every
pending timer and none that was fired or cancelled. When a timer is due it produces the `TimerFired` to
the timer's `fire_topic` and the timer's tombstone in one Kafka transaction, with the consumer position
sent to the transaction so that a fenced zombie cannot commit a second firing: each timer fires once.
"""

from __future__ import annotations

import datetime
import heapq
import logging
import signal
from dataclasses import dataclass, field
from types import FrameType

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from processors.runtime.clients import member_consumer, transactional_producer
from processors.runtime.encoder import Encoder, produce
from processors.runtime.records import Emit, Outgoing, derive_event_id, utc_now
from schemas.models import TimerFired, TimerScheduled
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.settings import Settings
from topology.topics import TIMERS, topic_named

PROCESSOR = "oms.timers"
logger = logging.getLogger(__name__)


@dataclass
class PendingTimers:
    """The timers not yet fired, by id, with the earliest due first."""

    by_id: dict[str, TimerScheduled] = field(default_factory=dict)
    _heap: list[tuple[datetime.datetime, str]] = field(default_factory=list)

    def schedule(self, timer: TimerScheduled) -> None:
        self.by_id[timer.timer_id] = timer
        heapq.heappush(self._heap, (timer.due_at, timer.timer_id))

    def cancel(self, timer_id: str) -> None:
        self.by_id.pop(timer_id, None)

    def due(self, now: datetime.datetime) -> list[TimerScheduled]:
        """Every pending timer due by `now`, earliest first; they stay pending until cancelled."""
        due = []
        for at, timer_id in sorted(self._heap):
            if at > now:
                break
            timer = self.by_id.get(timer_id)
            if timer is not None and timer.due_at == at:
                due.append(timer)
        return due

    def next_due(self) -> datetime.datetime | None:
        while self._heap:
            at, timer_id = self._heap[0]
            timer = self.by_id.get(timer_id)
            if timer is not None and timer.due_at == at:
                return at
            heapq.heappop(self._heap)  # cancelled or rescheduled: forget the stale entry
        return None

    def forget_partitions(self, keep: set[int], partition_of: dict[str, int]) -> None:
        """After a rebalance: only timers of partitions still ours stay."""
        for timer_id in [t for t in self.by_id if partition_of.get(t) not in keep]:
            del self.by_id[timer_id]


def firing(timer: TimerScheduled, now: datetime.datetime) -> TimerFired:
    return TimerFired(
        event_id=derive_event_id(timer.event_id, "fired"),
        order_id=timer.order_id,
        occurred_at=now,
        timer_id=timer.timer_id,
        due_at=timer.due_at,
        purpose=timer.purpose,
        attempt=timer.attempt,
    )


class TimerService:
    def __init__(self, settings: Settings) -> None:
        registry = registry_client(settings)
        self._codec = RecordCodec(registry, TIMERS.name)
        self._encode = Encoder(registry, PROCESSOR)
        self._consumer = member_consumer(settings, PROCESSOR, **{"enable.partition.eof": True})
        self._producer = transactional_producer(settings, PROCESSOR)
        self.pending = PendingTimers()
        self._partition_of: dict[str, int] = {}
        self._catching_up: set[int] = set()
        self._stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        self._producer.init_transactions(30)
        self._consumer.subscribe([TIMERS.name], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self._stopping:
                self._read(self._wait_s())
                if not self._catching_up:
                    self._fire_due()
        finally:
            self._consumer.close()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Rebuild from the beginning: the compacted log is the set of pending timers.
        for partition in partitions:
            partition.offset = OFFSET_BEGINNING
            self._catching_up.add(partition.partition)
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {partition.partition for partition in partitions}
        kept = {tp.partition for tp in consumer.assignment()} - revoked
        self.pending.forget_partitions(kept, self._partition_of)
        self._catching_up -= revoked

    def _wait_s(self) -> float:
        next_due = self.pending.next_due()
        if next_due is None or self._catching_up:
            return 0.2
        return max(0.0, min(0.2, (next_due - utc_now()).total_seconds()))

    def _read(self, timeout_s: float) -> None:
        for message in self._consumer.consume(1000, timeout_s):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._catching_up.discard(message.partition())
                    continue
                raise KafkaException(error)
            timer_id = (message.key() or b"").decode()
            self._partition_of[timer_id] = message.partition()
            if message.value() is None:
                self.pending.cancel(timer_id)
                continue
            try:
                timer = self._codec.decode(message.value())
            except Exception as error:  # a timer nobody can read is dropped loudly, not retried forever
                logger.error(
                    "unreadable timer %s at %s[%d]@%d: %s",
                    timer_id,
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    error,
                )
                continue
            if isinstance(timer, TimerScheduled):
                self.pending.schedule(timer)

    def _fire_due(self) -> None:
        now = utc_now()
        for timer in self.pending.due(now):
            fired = firing(timer, now)
            self._producer.begin_transaction()
            produce(self._producer, self._encode(Emit(topic_named(timer.fire_topic), timer.order_id, fired)))
            produce(self._producer, Outgoing(TIMERS.name, timer.timer_id.encode(), None, ()))
            self._producer.send_offsets_to_transaction(
                self._consumer.position(self._consumer.assignment()), self._consumer.consumer_group_metadata()
            )
            self._producer.commit_transaction(30)
            self.pending.cancel(timer.timer_id)
            lateness = (now - timer.due_at).total_seconds()
            logger.info("fired %s (%s) %.3fs after due", timer.timer_id, timer.purpose, lateness)


def run(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="[%(asctime)s] [%(levelname)s] [%(name)s] : %(message)s")
    TimerService(settings).run()
