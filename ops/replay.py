"""Replay for recovery: move a processor's group back (to a time, an offset, or the beginning) so that it reads
again what it read, or re-produce a range of a topic. Handlers deduplicate by event id and adapters by
idempotency key, so a replay repeats no outcome and no side effect; it is for state or outputs lost
downstream, or a handler fixed since.

A group is only moved while it has no members (stop its processor first): Kafka refuses to move the
offsets of an active group, and its members would overwrite them anyway.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from ops.progress import Bars, bars_for
from processors.runtime.clients import end_reader
from topology.admin import wait_until_empty
from topology.settings import Settings

TIMEOUT_S = 10.0


class GroupActive(RuntimeError):
    """The group has members; its offsets cannot be moved."""


@dataclass(frozen=True)
class Move:
    topic: str
    partition: int
    current: int | None  # None: nothing committed yet
    target: int

    @property
    def rereads(self) -> int | None:
        return None if self.current is None else self.current - self.target


def plan(
    settings: Settings,
    group: str,
    to_time: datetime.datetime | None = None,
    to_offset: int | None = None,
    topics: list[str] | None = None,
) -> list[Move]:
    """Where each committed partition of `group` would go: the first offset at `to_time`, `to_offset`, or the
    beginning when neither is given; never beyond where the group is."""
    admin = AdminClient(settings.kafka_config())
    committed_now = committed(admin, group)
    if topics:
        committed_now = [tp for tp in committed_now if tp.topic in topics]
    consumer = Consumer({**settings.kafka_config(), "group.id": f"oms-replay-planner-{uuid.uuid4().hex}"})
    try:
        moves = []
        for tp in committed_now:
            low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=TIMEOUT_S)
            if to_time is not None:
                [found] = consumer.offsets_for_times(
                    [TopicPartition(tp.topic, tp.partition, round(to_time.timestamp() * 1000))], timeout=TIMEOUT_S
                )
                target = high if found.offset < 0 else found.offset
            elif to_offset is not None:
                target = min(max(to_offset, low), high)
            else:
                target = low
            current = tp.offset if tp.offset >= 0 else None
            # A replay reads again; it never skips what the group has not read yet.
            moves.append(Move(tp.topic, tp.partition, current, target if current is None else min(target, current)))
        return moves
    finally:
        consumer.close()


def apply(settings: Settings, group: str, moves: list[Move]) -> None:
    """Commit the planned offsets for `group`; refused while the group has members (a stopped processor is
    given the session timeout it takes to leave)."""
    admin = AdminClient(settings.kafka_config())
    if wait_until_empty(admin, [group], settings):
        raise GroupActive(
            f"group {group} has members: stop its processor first (`oms run` instances); a stopped instance "
            f"leaves it after OMS_SESSION_TIMEOUT_MS ({settings.session_timeout_ms} ms)"
        )
    offsets = [TopicPartition(move.topic, move.partition, move.target) for move in moves]
    request = ConsumerGroupTopicPartitions(group, offsets)
    admin.alter_consumer_group_offsets([request], request_timeout=TIMEOUT_S)[group].result()


def reproduce(
    settings: Settings,
    topic: str,
    partition: int,
    start: int,
    end: int | None = None,
    progress: Bars | bool | None = False,
) -> int:
    """Produce the records of `topic[partition]` from offset `start` up to `end` (exclusive; default: the end)
    again, with their keys, values and headers; how many. `progress`: a bar of the offsets gone through."""
    consumer = end_reader(settings, "oms-replay-reader")
    producer = Producer({**settings.producer_config(), "enable.idempotence": True})
    count = 0
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S)
        stop = high if end is None else min(end, high)
        first = max(start, low)
        consumer.assign([TopicPartition(topic, partition, start if start >= 0 else OFFSET_BEGINNING)])
        reading = start < stop
        with bars_for(progress) as bars:
            bar = bars.bar(f"replaying {topic}[{partition}]", total=max(stop - first, 0))
            while reading:
                for message in consumer.consume(1000, 1.0):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            reading = False
                            continue
                        raise KafkaException(error)
                    if message.offset() >= stop:
                        reading = False
                        break
                    producer.produce(topic, key=message.key(), value=message.value(), headers=message.headers())
                    count += 1
                    bar.update(message.offset() + 1 - first)
            bar.done()
        producer.flush(60)
        return count
    finally:
        consumer.close()


def committed(admin: AdminClient, group: str) -> list[TopicPartition]:
    """The group's committed offset of each partition it has committed."""
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=TIMEOUT_S)
    return list(future[group].result().topic_partitions)
