"""The fleet's gauges: how many orders stand where, how many are stuck, saga instances by state, and the lag
of every consumer group, for Prometheus and its alerts.

A plain consumer of the tracker's view, `oms.tracking.orders`, in a group of its own so that instances share
its partitions: on every assignment it reads its partitions from the beginning (the compacted topic holds the
latest timeline of every order) and keeps, per order, only what the records' summary headers say
(`processors.tracking.view`): it decodes nothing and writes nothing; the offsets it commits say only how far
it has read. Each instance's gauges of the orders count its own partitions' orders: their sum over instances
is the fleet's. The lag is every instance's measure of every group (`LagReporter`).
"""

from __future__ import annotations

import datetime
import logging
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import FrameType
from typing import NamedTuple

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from processors.runtime.clients import PREFETCH_KB, is_fatal, member_consumer
from processors.runtime.cloudevents import header
from processors.runtime.health import HEALTH, NO_PARTITIONS
from processors.runtime.metrics import CONSUMER_LAG, ORDERS, SAGA_INSTANCES, STUCK_ORDERS
from processors.runtime.records import utc_now
from processors.sagas.cancellation import Phase
from processors.tracking.lag import PartitionLag, consumer_lag
from processors.tracking.timeline import STATUSES, is_stuck
from processors.tracking.view import PROGRESS_HEADER, SAGA_HEADER, STATUS_HEADER, progress_at
from topology.settings import Settings
from topology.topics import TRACKING_ORDERS

PROCESSOR = "oms.fleet"
GAUGES_EVERY_S = 5.0
LAG_EVERY_S = 5.0

logger = logging.getLogger(__name__)


class LagLabels(NamedTuple):
    group: str
    topic: str
    partition: str


class Standing(NamedTuple):
    """Where one order stands, as its latest view record's headers say."""

    status: str
    saga: str | None
    last_progress_at: datetime.datetime


@dataclass
class Fleet:
    """The orders of the partitions assigned, each as it last stood."""

    orders: dict[int, dict[bytes, Standing]] = field(default_factory=dict)

    def take(
        self, partition: int, key: bytes, value: bytes | None, headers: list[tuple[str, bytes]], at_ms: int
    ) -> None:
        """The order's latest view record: a tombstone forgets it; one without a status is not the tracker's."""
        orders = self.orders.setdefault(partition, {})
        if value is None:
            orders.pop(key, None)
            return
        status = header(headers, STATUS_HEADER)
        if not status:
            logger.warning("passing over the view's record of %r: it has no %s header", key, STATUS_HEADER)
            return
        progress = header(headers, PROGRESS_HEADER)
        saga = header(headers, SAGA_HEADER)
        orders[key] = Standing(sys.intern(status), sys.intern(saga) if saga else None, _progress(progress, at_ms))

    def drop(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.orders.pop(partition, None)

    def counts(self, now: datetime.datetime, stuck_after: datetime.timedelta) -> tuple[Counter[str], Counter[str], int]:
        """Orders by status, saga instances by state, and the orders stuck."""
        statuses: Counter[str] = Counter()
        sagas: Counter[str] = Counter()
        stuck = 0
        for orders in self.orders.values():
            for standing in orders.values():
                statuses[standing.status] += 1
                if standing.saga:
                    sagas[standing.saga] += 1
                stuck += is_stuck(standing, now, stuck_after)
        return statuses, sagas, stuck


def _progress(named: str | None, written_ms: int) -> datetime.datetime:
    """When the order last moved: as its header says, or else when its record was written."""
    try:
        if named:
            return progress_at(named)
    except (ValueError, OverflowError, OSError):
        pass
    return datetime.datetime.fromtimestamp(written_ms / 1000, datetime.UTC)


def publish_gauges(fleet: Fleet, stuck_after: datetime.timedelta) -> None:
    statuses, sagas, stuck = fleet.counts(utc_now(), stuck_after)
    for status in STATUSES:
        ORDERS.labels(status).set(statuses[status])
    for state in Phase:
        if state != Phase.IDLE:
            SAGA_INSTANCES.labels("cancellation", state.value).set(sagas[state.value])
    STUCK_ORDERS.set(stuck)


class FleetWatch:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumer = member_consumer(
            settings,
            PROCESSOR,
            **{
                # Its offsets say only how far it has read (its lag, and the bench's count of records read): it
                # reads its partitions from the beginning on every assignment all the same.
                "enable.auto.commit": True,
                "auto.commit.interval.ms": 1000,
                "queued.max.messages.kbytes": PREFETCH_KB,
            },
        )
        self.fleet = Fleet()
        self._assigned: set[int] = set()
        self._stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        HEALTH.readiness(lambda: None if self._assigned else NO_PARTITIONS)
        self._consumer.subscribe([TRACKING_ORDERS.name], on_assign=self._on_assign, on_revoke=self._on_revoke)
        lag = LagReporter(self._settings)
        lag.start()
        stuck_after = datetime.timedelta(seconds=self._settings.stuck_after_s)
        last_gauges = time.monotonic()
        try:
            while not self._stopping:
                HEALTH.beat()
                for message in self._consumer.consume(1000, 0.2):
                    self._take(message)
                if time.monotonic() - last_gauges >= GAUGES_EVERY_S:
                    publish_gauges(self.fleet, stuck_after)
                    last_gauges = time.monotonic()
        finally:
            lag.stop()
            self._consumer.close()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Every assigned partition from its beginning: the orders it holds are counted again."""
        consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions])
        assigned = {tp.partition for tp in partitions}
        self.fleet.drop(assigned)
        self._assigned |= assigned

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {tp.partition for tp in partitions}
        self.fleet.drop(revoked)
        self._assigned -= revoked

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if is_fatal(error):
                raise KafkaException(error)
            if error.code() != KafkaError._PARTITION_EOF:
                logger.warning("consumer: %s", error)  # librdkafka recovers from the rest by itself
            return
        self.fleet.take(
            message.partition() or 0,
            message.key() or b"",
            message.value(),
            list(message.headers() or ()),
            message.timestamp()[1],
        )


def publish_lag(measured: list[PartitionLag], published: set[LagLabels]) -> set[LagLabels]:
    """The lag of every partition measured into `oms_consumer_lag_messages`, and the series of those no longer
    measured (a group deleted, its offsets expired) removed, so that none stays at its last value for good;
    the labels now published."""
    current: set[LagLabels] = set()
    for entry in measured:
        labels = LagLabels(entry.group, entry.topic, str(entry.partition))
        CONSUMER_LAG.labels(*labels).set(entry.lag)
        current.add(labels)
    for labels in published - current:
        CONSUMER_LAG.remove(*labels)
    return current


class LagReporter:
    """Every `LAG_EVERY_S`, the lag of every `oms.` consumer group into `oms_consumer_lag_messages`.

    Every fleet instance measures every group, whichever partitions of the view it holds: the measure needs no
    partition, goes on while any instance runs, and takes no hand-over when partitions move. Queries take each
    partition's lag once (`max by (namespace, group, topic, partition)`) before they sum it."""

    def __init__(self, settings: Settings) -> None:
        self._config = settings.kafka_config()
        self._admin = AdminClient(self._config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consumer-lag", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        published: set[LagLabels] = set()
        while not self._stop.wait(LAG_EVERY_S):
            try:
                measured = consumer_lag(self._admin)
            except Exception as error:  # a metric that could not be measured this time; the next try may
                logger.warning("consumer lag not measured: %s", error)
                # After a broker restart the admin client may keep asking with a stale leader epoch
                # (FENCED_LEADER_EPOCH on every try, for minutes): a new client starts from fresh metadata.
                self._admin = AdminClient(self._config)
                continue
            published = publish_lag(measured, published)


def run(settings: Settings) -> None:
    FleetWatch(settings).run()
