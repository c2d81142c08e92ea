"""The plain confluent-kafka clients of the processes that are not Quix Streams apps (timers, fleet) and
of the operators' tools: their shared settings in one place, and reading partitions to their current end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from processors.runtime.deadletters import Received
from processors.runtime.identity import instance_id
from topology.settings import Settings


def is_fatal(error: KafkaError) -> bool:
    """Whether a consumer's error ends it. librdkafka reports a fatal consumer error (a static member fenced
    by another with its `group.instance.id`) as an error event of code `_FATAL` whose `fatal()` is False;
    a loop that logs it and goes on is alive and reads nothing, for ever."""
    return bool(error.fatal()) or error.code() == KafkaError._FATAL


def member_consumer(settings: Settings, group: str, **extra: Any) -> Consumer:
    """A member of `group` that commits only through its transactions and reads only committed records.

    Static membership (one id per instance): a restarted instance takes its partitions back at once, without
    a rebalance."""
    return Consumer(
        {
            **settings.kafka_config(),
            "group.id": group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "session.timeout.ms": settings.session_timeout_ms,
            "group.instance.id": f"{group}-{instance_id()}",
            **extra,
        }
    )


def transactional_producer(settings: Settings, group: str, **extra: Any) -> Producer:
    """The producer of one instance of `group`: a stable transactional id, so a restart fences its zombie."""
    return Producer(
        {
            **settings.producer_config(),
            "transactional.id": f"{group}-{instance_id()}",
            "transaction.timeout.ms": settings.transaction_timeout_ms,
            **extra,
        }
    )


READ_AHEAD_KB = 16_384
# What a processor's consumer reads ahead of its work: at ~300 bytes a record, some 13,000 records, seconds of
# work for any processor here, where librdkafka's default (64 MB) is held in memory by a processor behind.
PREFETCH_KB = 4_096


def end_reader(settings: Settings, purpose: str) -> Consumer:
    """A consumer outside any group's offsets (a throwaway group id) that reads committed records and reports
    the end of each partition: for `read_to_end`."""
    return Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"{purpose}-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            # librdkafka prefetches up to 64 MB by default: reading a long compacted topic back (the tracker's
            # view, 230 MB) then peaked at 209 MB of RSS; 16 MB peaks at 117 MB for 5 s instead of 3.
            "queued.max.messages.kbytes": READ_AHEAD_KB,
        }
    )


def read_to_end(consumer: Consumer, partitions: list[TopicPartition]) -> Iterator[Message]:
    """Assign `partitions` (from their offsets) and yield their messages until each reports its end.

    The consumer needs `enable.partition.eof` (see `end_reader`): transaction markers take offsets but are
    never delivered, so the end is known from the end-of-partition events, not from offsets."""
    consumer.assign(partitions)
    left = {(tp.topic, tp.partition) for tp in partitions}
    while left:
        for message in consumer.consume(1000, 1.0):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                left.discard((message.topic(), message.partition()))
                continue
            yield message


def received(message: Message) -> Received:
    """A consumed message as a dead letter keeps it."""
    return Received(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.timestamp()[1],
        message.key(),
        message.value(),
        tuple(message.headers() or ()),
    )
