"""The tracker: every order's timeline across the three patterns, kept on the compacted `oms.tracking.orders`.

A plain confluent-kafka consumer rather than a Quix Streams app: it reads a dozen topics and must keep up
with the whole pipeline, so it folds events in memory and publishes what changed in batches (every
`FLUSH_EVERY_S`), each batch in one Kafka transaction with the consumer offsets. The compacted topic is its
state: on every assignment it reads the assigned partitions of `oms.tracking.orders` back to the end before
folding anything new, so a restart, a rebalance or a second instance loses nothing and folds nothing twice.
All input topics and the view are keyed by order id with the same partition count, and the range assignor
gives an instance the same partition numbers of each.

A record it cannot use (unreadable, a tombstone, a type not declared for its topic, or keyed other than by its
order) is not folded: it goes to its topic's `.dlq`, in the transaction that commits the offsets past it, so
that no made-up order enters the view. An outage pauses the tracker on the record that met it; one that
outlasts the retries ends the process (`OUTAGE_EXIT_CODE`) without committing past that record.
"""

from __future__ import annotations

import datetime
import logging
import signal
import threading
import time
from types import FrameType

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from processors.runtime.clients import (
    PREFETCH_KB,
    end_reader,
    is_fatal,
    member_consumer,
    read_to_end,
    received,
    transactional_producer,
)
from processors.runtime.cloudevents import header
from processors.runtime.contract import TopicContract
from processors.runtime.deadletters import dead_letter
from processors.runtime.encoder import Encoder, produce
from processors.runtime.errors import is_outage
from processors.runtime.health import HEALTH, assignment_readiness, beating
from processors.runtime.identity import instance_id
from processors.runtime.metrics import (
    ACTIVITY_SECONDS,
    CONSUMER_LAG,
    ORDER_LATENCY,
    ORDERS,
    ROUTING_SLIPS,
    SAGA_INSTANCES,
    STUCK_ORDERS,
)
from processors.runtime.outages import through_outages
from processors.runtime.records import Emit, Outgoing, utc_now
from processors.runtime.tracing import trace_id_of
from processors.sagas.cancellation import Phase
from processors.tracking.lag import consumer_lag
from processors.tracking.store import SAGA_HEADER, STATUS_HEADER, Stored, TimelineStore, summary_headers
from processors.tracking.timeline import STATUSES, fold, folds, is_stuck
from schemas.models import AvroRecord, OrderEvent, OrderTimeline, RoutingSlipActivityCompleted
from schemas.registry import registry_client
from schemas.serde import RecordCodec, UndecodableRecord
from topology.settings import Settings
from topology.topics import (
    FULFILLMENT_ACTIVITIES,
    INVENTORY_EVENTS,
    NOTIFICATIONS_EVENTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
    SAGAS_EVENTS,
    TRACKING_ORDERS,
)

PROCESSOR = "oms.tracker"
OTHER_ACTIVITY = "other"
INPUTS = (
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    INVENTORY_EVENTS,
    ROUTING_SLIPS_EVENTS,
    SAGAS_EVENTS,
    NOTIFICATIONS_EVENTS,
)
FLUSH_EVERY_S = 1.0
GAUGES_EVERY_S = 5.0
KEEP_FINISHED_IN_MEMORY = datetime.timedelta(seconds=10)
LAG_EVERY_S = 5.0
SLIP_ENDS = ("completed", "faulted", "terminated", "compensation-failed")
# Commands the timeline has no use for: known by the schema id they were written with, and not decoded. Not by
# a header, which a producer may set to anything.
SKIPPED_RECORDS = frozenset({"oms.sagas.RetrySaga"})

logger = logging.getLogger(__name__)


class UnusableRecord(UndecodableRecord):
    """A record the view must not fold; the message says why."""


class Tracker:
    def __init__(self, settings: Settings) -> None:
        registry = registry_client(settings)
        self._settings = settings
        self._contracts = {spec.name: TopicContract(spec) for spec in INPUTS}
        self._codecs = {spec.name: RecordCodec(registry, spec.name) for spec in INPUTS}
        self._view_codec = RecordCodec(registry, TRACKING_ORDERS.name)
        self._encode = Encoder(registry, PROCESSOR)
        self._consumer = member_consumer(
            settings,
            PROCESSOR,
            **{
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
                # Behind under load, librdkafka would prefetch up to 64 MB of the seven topics it reads.
                "queued.max.messages.kbytes": PREFETCH_KB,
            },
        )
        self._producer = transactional_producer(settings, PROCESSOR, **{"linger.ms": 20})
        self.store = TimelineStore(
            settings.run_dir / "state" / PROCESSOR / instance_id() / "timelines.sqlite",
            encode=self._view_codec.encode,
            decode=self._decode_view,
        )
        self._dirty: set[str] = set()
        self._dead_letters: list[Outgoing] = []
        self._committed: dict[tuple[str, int], int] = {}
        self._assigned: set[int] = set()
        self._rebuilding: set[int] = set()
        self._stopping = False
        self._abandoned = False
        """Stopped by a failure: what was read is not committed past, not even by the last revoke."""

    def run(self) -> None:
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        self._producer.init_transactions(30)
        HEALTH.readiness(lambda: assignment_readiness(self._assigned, self._rebuilding, "reading its view back"))
        self._consumer.subscribe([spec.name for spec in INPUTS], on_assign=self._on_assign, on_revoke=self._on_revoke)
        lag = LagReporter(self._settings)
        lag.start()
        last_flush = last_gauges = time.monotonic()
        try:
            while not self._stopping:
                HEALTH.beat()
                self._read(0.1)
                # Every second; sooner when the changed timelines would outgrow what the store keeps decoded.
                if time.monotonic() - last_flush >= FLUSH_EVERY_S or self.store.crowded():
                    self._flush()
                    last_flush = time.monotonic()
                if time.monotonic() - last_gauges >= GAUGES_EVERY_S:
                    fleet_gauges(self.store, datetime.timedelta(seconds=self._settings.stuck_after_s))
                    self.store.evict(utc_now() - KEEP_FINISHED_IN_MEMORY)
                    last_gauges = time.monotonic()
            self._flush()
        except BaseException:
            self._abandoned = True
            raise
        finally:
            lag.stop()
            self._consumer.close()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assigned = {partition.partition for partition in partitions}
        self._rebuilding |= assigned
        self._rebuild(assigned)
        self._rebuilding -= assigned
        self._assigned |= assigned

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not self._abandoned:
            self._flush()
        self.store.drop_partitions({partition.partition for partition in partitions})
        self._assigned -= {partition.partition for partition in partitions}

    def _rebuild(self, partitions: set[int]) -> None:
        """The view's partitions back into memory, up to their end."""
        count = through_outages(lambda: self._rebuild_once(partitions), f"rebuilding partitions {sorted(partitions)}")
        logger.info("rebuilt %d timelines of partitions %s", count, sorted(partitions))

    def _rebuild_once(self, partitions: set[int]) -> int:
        reader = end_reader(self._settings, f"{PROCESSOR}-rebuild")
        try:
            beginnings = [TopicPartition(TRACKING_ORDERS.name, p, OFFSET_BEGINNING) for p in partitions]
            read = beating(read_to_end(reader, beginnings))
            records = (record for message in read if (record := stored(message)))
            return self.store.rebuild(partitions, records)
        finally:
            reader.close()

    def _decode_view(self, value: bytes) -> OrderTimeline:
        return self._view_codec.decode_as(value, OrderTimeline)

    def _read(self, timeout_s: float) -> None:
        for message in self._consumer.consume(2000, timeout_s):
            error = message.error()
            if error is not None:
                if is_fatal(error):
                    raise KafkaException(error)
                if error.code() != KafkaError._PARTITION_EOF:
                    logger.warning("consumer: %s", error)  # librdkafka recovers from the rest by itself
                continue
            self._take(message)

    def _take(self, message: Message) -> None:
        """Fold the message's record, or keep its dead letter for the next flush; pause through an outage."""
        where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
        topic = message.topic() or ""
        try:
            record = through_outages(
                lambda: usable(message, self._codecs[topic], self._contracts[topic]), f"reading {where}"
            )
        except Exception as error:
            if is_outage(error):
                raise
            logger.warning("dead-lettering %s: %s: %s", where, type(error).__name__, error)
            self._dead_letters.append(dead_letter(received(message), error, PROCESSOR))
            return
        if record is not None:
            self.track(record, message.partition() or 0, trace_id_of(message.headers()))

    def track(self, record: AvroRecord, partition: int, trace_id: str | None = None) -> None:
        if not isinstance(record, OrderEvent) or not folds(record):
            return  # before `get`, which may read the timeline back from disk
        order_id = record.order_id
        before = self.store.get(order_id)
        updated = fold(before, record, trace_id)
        if updated is not None:
            observe(record, before, updated)
            self.store.put(updated, partition)
            self._dirty.add(order_id)

    def _flush(self) -> None:
        """What changed since the last flush, and the dead letters, with the consumer's position, in one
        transaction (tried again through an outage)."""
        positions = [tp for tp in self._consumer.position(self._consumer.assignment()) if tp.offset >= 0]
        read_to = {(tp.topic, tp.partition): tp.offset for tp in positions}
        if not self._dirty and not self._dead_letters and read_to == self._committed:
            return
        encoded = through_outages(lambda: self._commit(positions), "flushing the view")
        self.store.save(self._dirty, encoded)
        self._dirty.clear()
        self._dead_letters.clear()
        self._committed = read_to

    def _commit(self, positions: list[TopicPartition]) -> dict[str, bytes]:
        """One transaction: the changed timelines, the dead letters and the offsets; the timelines' bytes."""
        outgoing = list(self._dead_letters)
        encoded = {}
        for order_id in self._dirty:
            timeline = self.store.get(order_id)
            assert timeline is not None, "a changed timeline is held until saved"
            view = self._encode(Emit(TRACKING_ORDERS, order_id, timeline, summary_headers(timeline)))
            assert view.value is not None
            encoded[order_id] = view.value
            outgoing.append(view)
        self._producer.begin_transaction()
        try:
            for message in outgoing:
                produce(self._producer, message)
            if positions:
                self._producer.send_offsets_to_transaction(positions, self._consumer.consumer_group_metadata())
            self._producer.commit_transaction(30)
        except Exception:
            self._producer.abort_transaction(30)
            raise
        return encoded


def stored(message: Message) -> Stored | None:
    """A record of the view as a rebuild needs it: its status and saga from its headers, when it has them.
    None for one under a key that is no order id (not the tracker's: it writes UTF-8 order ids)."""
    headers = message.headers() or []
    saga = header(headers, SAGA_HEADER)
    try:
        order_id = (message.key() or b"").decode()
    except UnicodeDecodeError:
        logger.warning(
            "rebuild passes over %s[%d]@%d: its key is not UTF-8",
            message.topic(),
            message.partition(),
            message.offset(),
        )
        return None
    return Stored(
        order_id=order_id,
        value=message.value(),
        partition=message.partition(),
        status=header(headers, STATUS_HEADER),
        saga=saga or None,
    )


def usable(message: Message, codec: RecordCodec, contract: TopicContract) -> AvroRecord | None:
    """The message's record, if the view folds it; None for a record it has no use for. Raises for one it must
    not fold (undecodable, a tombstone, out of its topic's contract)."""
    value = message.value()
    if value is None:
        raise UnusableRecord("a tombstone (null value) carries no record")
    if codec.writer_record_name(value) in SKIPPED_RECORDS:
        return None
    record = codec.decode(value)
    contract.check(record.AVRO_NAME, message.key(), message.headers() or [], record)
    return record


def activity_label(activity: str) -> str:
    """A declared activity's name; any other (the field is free text) is one label, `other`: a label per
    value a producer makes up would grow every scrape without bound."""
    return activity if activity in FULFILLMENT_ACTIVITIES else OTHER_ACTIVITY


def observe(record: AvroRecord, before: OrderTimeline | None, after: OrderTimeline) -> None:
    """Metrics of one event, folded for the first time."""
    if isinstance(record, RoutingSlipActivityCompleted):
        ACTIVITY_SECONDS.labels(activity_label(record.activity)).observe(record.duration_ms / 1000)
    if after.slip in SLIP_ENDS and (before is None or before.slip != after.slip):
        ROUTING_SLIPS.labels(after.slip).inc()
    if after.outcome and after.placed_at and (before is None or before.outcome != after.outcome):
        ORDER_LATENCY.labels(after.outcome).observe((after.last_progress_at - after.placed_at).total_seconds())


def fleet_gauges(store: TimelineStore, stuck_after: datetime.timedelta) -> None:
    """Orders by status, stuck ones, and saga instances by state, over this instance's partitions."""
    now = utc_now()
    statuses, sagas = store.counts()
    stuck = sum(is_stuck(timeline, now, stuck_after) for timeline in store.unfinished())
    for status in STATUSES:
        ORDERS.labels(status).set(statuses[status])
    for state in Phase:
        if state != Phase.IDLE:
            SAGA_INSTANCES.labels("cancellation", state.value).set(sagas[state.value])
    STUCK_ORDERS.set(stuck)


class LagReporter:
    """Every `LAG_EVERY_S`, the lag of every `oms.` consumer group into `oms_consumer_lag_messages`."""

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
        while not self._stop.wait(LAG_EVERY_S):
            try:
                for entry in consumer_lag(self._admin):
                    CONSUMER_LAG.labels(entry.group, entry.topic, str(entry.partition)).set(entry.lag)
            except Exception as error:  # a metric that could not be measured this time; the next try may
                logger.warning("consumer lag not measured: %s", error)
                # After a broker restart the admin client may keep asking with a stale leader epoch
                # (FENCED_LEADER_EPOCH on every try, for minutes): a new client starts from fresh metadata.
                self._admin = AdminClient(self._config)


def run(settings: Settings) -> None:
    Tracker(settings).run()
