"""Reading partitions from given offsets up to their current end: how a compacted topic becomes state."""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition


def read_to_end(consumer: Consumer, partitions: list[TopicPartition]) -> Iterator[Message]:
    """Assign `partitions` (from their offsets) and yield their messages until each reports its end.

    The consumer needs `enable.partition.eof`: transaction markers take offsets but are never delivered, so
    the end is known from the end-of-partition events, not from offsets."""
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
