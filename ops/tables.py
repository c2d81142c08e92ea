"""Reading topics whole or from now: a compacted topic as a table (latest committed record per key), or
every partition from its current end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from processors.runtime.clients import end_reader
from topology.settings import Settings

METADATA_TIMEOUT_S = 10.0
# Kafka's own topics and the ceilings' of `oms bench` are no part of the platform's traffic.
UNCOUNTED_TOPIC_PREFIXES = ("__", "bench.")
# The transaction coordinator's log: about three records per transaction (begun, prepared, completed), so
# its growth per order tells how many transactions an order costs the broker.
TRANSACTION_LOG = "__transaction_state"


@dataclass(frozen=True)
class Row:
    key: str
    value: bytes
    headers: list[tuple[str, bytes]]


def read_table(settings: Settings, topic: str, timeout_s: float = 30.0) -> dict[str, Row]:
    """Latest value per key; a tombstone removes its key."""
    consumer = end_reader(settings, "oms-table-reader")
    try:
        ends = _committed_ends(consumer, topic)
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in ends])
        rows: dict[str, Row] = {}
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: partitions {sorted(ends)} not read to the end")
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                partition, offset = message.partition(), message.offset()
                if error is None:
                    # A key that is not UTF-8 is no order's or SKU's: kept readable, it can never match one.
                    key, value = (message.key() or b"").decode(errors="replace"), message.value()
                    if value is None:
                        rows.pop(key, None)
                    else:
                        rows[key] = Row(key, value, list(message.headers() or []))
                    offset += 1
                if partition in ends and offset is not None and offset >= ends[partition]:
                    del ends[partition]
        return rows
    finally:
        consumer.close()


def assign_from_now(consumer: Consumer, topics: Iterable[str]) -> None:
    """Read every partition of `topics` from its current end: what is published from now on."""
    partitions = []
    for topic in topics:
        for partition in consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics[topic].partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S)
            partitions.append(TopicPartition(topic, partition, high))
    consumer.assign(partitions)


def _committed_ends(consumer: Consumer, topic: str) -> dict[int, int]:
    """The end offset of every non-empty partition."""
    metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics[topic]
    if metadata.error is not None:
        raise KafkaException(metadata.error)
    ends = {}
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S)
        if high > low:
            ends[partition] = high
    return ends


def open_transactions(
    admin: AdminClient, marks: Mapping[TopicPartition, int] | None = None
) -> dict[TopicPartition, int]:
    """The platform's partitions that hold records of a transaction neither committed nor aborted, each with
    its end offset: what its last stable offset must reach for everything written so far to be decided.
    Given `marks` (an earlier answer), those of its partitions whose last stable offset is still short of
    their mark. A producer killed mid-transaction leaves one open until the broker times it out, and until
    then a consumer cannot read its partitions' committed offsets or anything written after it."""
    if marks is None:
        marks = _latest(admin, _platform_partitions(admin), IsolationLevel.READ_UNCOMMITTED)
    stable = _latest(admin, list(marks), IsolationLevel.READ_COMMITTED)
    return {tp: end for tp, end in marks.items() if stable[tp] < end}


def _latest(
    admin: AdminClient, partitions: list[TopicPartition], isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED
) -> dict[TopicPartition, int]:
    """Each partition's end offset as a consumer of `isolation` sees it: the last stable offset when it reads
    committed records only."""
    if not partitions:
        return {}
    futures = admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in partitions}, isolation_level=isolation, request_timeout=10
    )
    return {TopicPartition(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}


def end_offsets(admin: AdminClient, internal: bool = False) -> dict[str, int]:
    """Per topic, its partitions' end offsets (high watermarks) summed: every offset ever written, data and
    transaction markers alike. Kafka's own and the ceilings' topics left out, or (`internal`) only Kafka's
    transaction log. One request for all."""
    counted = (lambda topic: topic == TRANSACTION_LOG) if internal else None
    totals: dict[str, int] = {}
    for tp, end in _latest(admin, _platform_partitions(admin, counted)).items():
        totals[tp.topic] = totals.get(tp.topic, 0) + end
    return dict(sorted(totals.items()))


def _platform_partitions(admin: AdminClient, counted: Callable[[str], bool] | None = None) -> list[TopicPartition]:
    """Every partition of the topics `counted` (by default the platform's: Kafka's own and the ceilings' left
    out)."""
    metadata = admin.list_topics(timeout=METADATA_TIMEOUT_S).topics
    counted = counted or (lambda topic: not topic.startswith(UNCOUNTED_TOPIC_PREFIXES))
    return [
        TopicPartition(topic, partition)
        for topic, described in metadata.items()
        if counted(topic)
        for partition in described.partitions
    ]
