"""Durable timers, Kafka-native: Quix Streams has none, and a saga's state is reachable only for its key.

A saga schedules a timer by producing `TimerScheduled` to the compacted `oms.timers` (key: timer id) and
cancels it with a tombstone. This process owns some of that topic's partitions (a consumer group shares
them among instances); on every assignment it reads them from the beginning to the end, so it holds every
pending timer and none that was fired or cancelled. When timers are due it produces each one's `TimerFired`
to its `fire_topic` and its tombstone, the timers due together in one Kafka transaction, with the consumer
position sent to the transaction so that a fenced zombie cannot commit a second firing: each fires once.

A record of `oms.timers` it cannot use (unreadable, not UTF-8 keyed, keyed other than its timer id, or firing
anywhere but the sagas' timer topic) goes to `oms.timers.dlq`, in one transaction with what replaces it in the
log: the timer it overwrote, still pending, or else a tombstone; so a restart does not meet it again and no
saga timeout is lost to it. It is dead-lettered once its partition is read to the end, when it is known to be
the latest record of its key. An outage (the registry or the broker down) pauses the service and the same
work is tried again; one that outlasts the retries ends the process with `OUTAGE_EXIT_CODE`.

A fired timer continues the trace of the message that scheduled it: the `traceparent` of the timer's record is
kept with it, and its `TimerFired` is made in a span that is a child of that one.
"""

from __future__ import annotations

import datetime
import functools
import heapq
import logging
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from processors.runtime.clients import is_fatal, member_consumer, received, transactional_producer
from processors.runtime.deadletters import Received, dead_letter
from processors.runtime.encoder import Encoder, produce
from processors.runtime.errors import is_outage
from processors.runtime.health import HEALTH, assignment_readiness
from processors.runtime.metrics import TIMER_LATENESS, TIMERS_PENDING
from processors.runtime.outages import through_outages
from processors.runtime.records import Emit, Headers, Outgoing, derive_event_id, utc_now
from processors.runtime.tracing import handling, processing, trace_context
from schemas.models import AvroRecord, TimerFired, TimerScheduled
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.settings import Settings
from topology.topics import SAGA_TIMERS, TIMERS

PROCESSOR = "oms.timers"
# Firing a timer, or restoring one an unusable record overwrote, is the late handling of the record it was read
# from: a span of processing `oms.timers`, the child of the span that sent it.
HANDLING = processing(TIMERS.name, PROCESSOR, PROCESSOR)
# Due timers fired in one transaction at most: a transaction's work stays well within its timeout.
FIRE_BATCH = 500
logger = logging.getLogger(__name__)


@dataclass
class PendingTimers:
    """The timers not yet fired, by id, with the earliest due first."""

    by_id: dict[str, TimerScheduled] = field(default_factory=dict)
    traces: dict[str, Headers] = field(default_factory=dict)
    """The trace context each timer was scheduled in (its record's `traceparent`), when it had one."""
    _heap: list[tuple[datetime.datetime, str]] = field(default_factory=list)

    def schedule(self, timer: TimerScheduled, trace: Headers = ()) -> None:
        self.by_id[timer.timer_id] = timer
        self.traces[timer.timer_id] = trace
        heapq.heappush(self._heap, (timer.due_at, timer.timer_id))

    def cancel(self, timer_id: str) -> None:
        self.by_id.pop(timer_id, None)
        self.traces.pop(timer_id, None)

    def due(self, now: datetime.datetime) -> list[TimerScheduled]:
        """Every pending timer due by `now`, earliest first; they stay pending until cancelled."""
        due: dict[str, TimerScheduled] = {}
        for at, timer_id in sorted(self._heap):
            if at > now:
                break
            timer = self.by_id.get(timer_id)
            if timer is not None and timer.due_at == at:
                due[timer_id] = timer  # once, though read twice (a timer restored after a dead letter)
        return list(due.values())

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
            self.traces.pop(timer_id, None)


Placed = tuple[Outgoing, int | None]
"""A message and its partition: None for the key's (by the partitioner), or the partition of the record of
`oms.timers` it replaces, which another client's partitioner may have chosen."""


class UnusableTimer(ValueError):
    """A record of `oms.timers` that is no timer this service may fire; the message says why."""


@dataclass(frozen=True)
class Cancelled:
    """A tombstone: the timer of this id, if any, is not to fire. None: a key no timer can have."""

    timer_id: str | None


def timer_id_of(key: bytes | None) -> str | None:
    """The timer id a key stands for; None for a key that is no UTF-8 text."""
    try:
        return key.decode() if key is not None else None
    except UnicodeDecodeError:
        return None


def read_timer(
    key: bytes | None, value: bytes | None, decode: Callable[[bytes], AvroRecord]
) -> TimerScheduled | Cancelled:
    """What a record of `oms.timers` asks for. Raises `UnusableTimer` (or what `decode` raises) for a record
    that cannot be used: only the sagas' timer topic is fired to, under the timer's own id as the key."""
    timer_id = timer_id_of(key)
    if value is None:
        return Cancelled(timer_id)
    if timer_id is None:
        raise UnusableTimer(f"a timer's key must be its timer id in UTF-8, not {key!r:.80}")
    record = decode(value)
    if not isinstance(record, TimerScheduled):
        raise UnusableTimer(f"{TIMERS.name} carries {TimerScheduled.AVRO_NAME}, not {record.AVRO_NAME}")
    if record.fire_topic != SAGA_TIMERS.name:
        raise UnusableTimer(
            f"timer {record.timer_id!r:.80} would fire to {record.fire_topic!r:.80}, not {SAGA_TIMERS.name}"
        )
    if record.timer_id != timer_id:
        raise UnusableTimer(f"timer {record.timer_id!r:.80} is keyed {timer_id!r:.80}, not by its id")
    return record


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
        self._assigned: set[int] = set()
        self._catching_up: set[int] = set()
        self._unusable: dict[tuple[int, bytes | None], tuple[Received, Exception]] = {}
        """The latest record of a key, when it cannot be used: dead-lettered once its partition is read."""
        self._restoring: set[bytes | None] = set()
        """Keys of timers written back over a dead letter, not fired until read back (else they would fire
        again when read after their firing)."""
        self._stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        self._producer.init_transactions(30)
        HEALTH.readiness(lambda: assignment_readiness(self._assigned, self._catching_up, "reading pending timers back"))
        TIMERS_PENDING.set_function(lambda: len(self.pending.by_id))
        self._consumer.subscribe([TIMERS.name], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self._stopping:
                HEALTH.beat()
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
            self._assigned.add(partition.partition)
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {partition.partition for partition in partitions}
        kept = {tp.partition for tp in consumer.assignment()} - revoked
        self.pending.forget_partitions(kept, self._partition_of)
        self._catching_up -= revoked
        self._assigned -= revoked
        self._unusable = {at: letter for at, letter in self._unusable.items() if at[0] not in revoked}

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
                    self._catching_up.discard(message.partition() or 0)
                    continue
                if is_fatal(error):
                    raise KafkaException(error)
                logger.warning("consumer: %s", error)  # librdkafka recovers from the rest by itself
                continue
            self._take(message)
        self._dead_letter_settled()

    def _take(self, message: Message) -> None:
        partition, key = message.partition() or 0, message.key()
        self._restoring.discard(key)
        try:
            read = through_outages(
                lambda: read_timer(key, message.value(), self._codec.decode), f"reading timer {key!r:.80}"
            )
        except Exception as error:
            if is_outage(error):
                raise
            self._unusable[(partition, key)] = (received(message), error)
            return
        self._unusable.pop((partition, key), None)  # a later record of the key replaces an unusable one
        if isinstance(read, Cancelled):
            if read.timer_id is not None:
                self._partition_of[read.timer_id] = partition
                self.pending.cancel(read.timer_id)
            return
        self._partition_of[read.timer_id] = partition
        self.pending.schedule(read, trace_context(message.headers()))

    def _dead_letter_settled(self) -> None:
        """Dead-letter the unusable records of partitions read to the end (each the latest of its key), each
        replaced in the log by the timer it overwrote, when that is still pending, or by a tombstone."""
        settled = {at: letter for at, letter in self._unusable.items() if at[0] not in self._catching_up}
        if not settled:
            return

        def outgoing() -> Iterable[Placed]:
            for (partition, key), (message, error) in settled.items():
                logger.error(
                    "dead-lettering timer %r at %s[%d]@%d: %s",
                    key,
                    message.topic,
                    message.partition,
                    message.offset,
                    error,
                )
                yield dead_letter(message, error, PROCESSOR), None
                yield self._replacement(key), partition

        self._commit(outgoing, "dead-lettering unusable timers")
        for at in settled:
            del self._unusable[at]

    def _replacement(self, key: bytes | None) -> Outgoing:
        timer_id = timer_id_of(key)
        overwritten = self.pending.by_id.get(timer_id) if timer_id is not None else None
        if overwritten is not None:
            self._restoring.add(key)
            with handling(self.pending.traces.get(overwritten.timer_id), HANDLING, key=key):
                return self._encode(Emit(TIMERS, overwritten.timer_id, overwritten))
        return Outgoing(TIMERS.name, key, None, ())

    def _fire_due(self) -> None:
        """Fire what is due, up to `FIRE_BATCH` timers to a transaction: a backlog of due timers (after an
        outage, or a saga storm) costs a transaction per batch, not one per timer."""
        now = utc_now()
        due = [timer for timer in self.pending.due(now) if timer.timer_id.encode() not in self._restoring]
        for start in range(0, len(due), FIRE_BATCH):
            batch = due[start : start + FIRE_BATCH]
            self._commit(functools.partial(self._firings, batch, now), f"firing {len(batch)} timer(s)")
            for timer in batch:
                self.pending.cancel(timer.timer_id)
                lateness = (now - timer.due_at).total_seconds()
                TIMER_LATENESS.observe(max(0.0, lateness))
                logger.info("fired %s (%s) %.3fs after due", timer.timer_id, timer.purpose, lateness)

    def _firings(self, timers: list[TimerScheduled], now: datetime.datetime) -> list[Placed]:
        return [placed for timer in timers for placed in self._firing(timer, now)]

    def _firing(self, timer: TimerScheduled, now: datetime.datetime) -> tuple[Placed, Placed]:
        """The `TimerFired`, and the timer's tombstone."""
        trace = self.pending.traces.get(timer.timer_id)
        partition = self._partition_of.get(timer.timer_id)
        with handling(trace, HANDLING, partition=partition, key=timer.timer_id, order_id=timer.order_id):
            fired = self._encode(Emit(SAGA_TIMERS, timer.order_id, firing(timer, now)))
        tombstone = Outgoing(TIMERS.name, timer.timer_id.encode(), None, ())
        return (fired, None), (tombstone, self._partition_of.get(timer.timer_id))

    def _commit(self, outgoing: Callable[[], Iterable[Placed]], what: str) -> None:
        """Produce what `outgoing` makes in one transaction with the consumer's position; tried again (from
        encoding on) through an outage."""

        def attempt() -> None:
            messages = list(outgoing())
            self._producer.begin_transaction()
            try:
                for message, partition in messages:
                    self._send(message, partition)
                self._producer.send_offsets_to_transaction(
                    self._consumer.position(self._consumer.assignment()), self._consumer.consumer_group_metadata()
                )
                self._producer.commit_transaction(30)
            except Exception:
                self._producer.abort_transaction(30)
                raise

        through_outages(attempt, what)

    def _send(self, message: Outgoing, partition: int | None) -> None:
        if partition is None:
            produce(self._producer, message)
            return
        headers = list(message.headers)
        self._producer.produce(
            message.topic, key=message.key, value=message.value, headers=headers, partition=partition
        )


def run(settings: Settings) -> None:
    TimerService(settings).run()
