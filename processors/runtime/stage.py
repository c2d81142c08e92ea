"""The pipeline step every processor is built from: bytes in, a decision over a record, bytes out.

Decoding, validation and the decision happen in one step so that a message nobody can use becomes a
dead letter inside the same Kafka transaction as everything else (Quix Streams has no DLQ of its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import State
from quixstreams.context import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Topic

from processors.runtime.cloudevents import header, type_of
from processors.runtime.deadletters import Received, dead_letter
from processors.runtime.encoder import Encoder
from processors.runtime.errors import is_outage
from processors.runtime.metrics import DEAD_LETTERS, MESSAGES, PROCESSING
from processors.runtime.records import Emit, Outgoing
from schemas.models import AvroRecord
from schemas.serde import RecordCodec
from topology.topics import TopicSpec

logger = logging.getLogger(__name__)

RecordHandler = Callable[[AvroRecord, State], Iterable[Emit]]
Handler = Callable[[AvroRecord, State, Received], Iterable[Emit]]
"""What a processor does with a record: given its key's state and the message it came in, what it emits."""
Skip = Callable[[Sequence[tuple[str, bytes]]], bool]
"""Picks, by its headers, a message not worth decoding."""


class RecordStage:
    """Decode a topic's message, let `handle` decide, encode what it emits; dead-letter what fails.

    `topics` may name several topics, for a stage after `StreamingDataFrame.concat`: each message is
    decoded with the codec of the topic it came from. A message that `skip` picks by its headers is passed
    over before decoding: most processors read topics that carry more types than they act on. A failure is
    not retried here: retries belong where a call leaves the process (a gateway, a carrier, a channel), and
    what still fails is the message's dead letter.
    """

    def __init__(
        self,
        processor: str,
        topics: Iterable[str],
        registry: SchemaRegistryClient,
        handle: Handler,
        skip: Skip | None = None,
    ) -> None:
        self.processor = processor
        topics = list(topics)
        self._decoders = {name: RecordCodec(registry, name) for name in topics}
        self._encode = Encoder(registry, processor)
        self._handle = handle
        self._skip = skip
        self._processing = PROCESSING.labels(processor)
        self._counted = {
            (name, outcome): MESSAGES.labels(processor, name, outcome)
            for name in topics
            for outcome in ("ok", "dead_lettered", "passed_over")
        }
        self._dead_letters = {name: DEAD_LETTERS.labels(processor, name) for name in topics}

    def __call__(
        self, value: bytes | None, key: bytes | None, timestamp: int, headers: Any, state: State
    ) -> list[Outgoing]:
        context = message_context()
        if self.skips(headers or ()):
            self._counted[(context.topic, "passed_over")].inc()
            return []
        received = Received(
            context.topic, context.partition, context.offset, timestamp, key, value, tuple(headers or ())
        )
        with self._processing.time():
            outgoing, dead_lettered = self.process(received, state)
        self._counted[(received.topic, "dead_lettered" if dead_lettered else "ok")].inc()
        if dead_lettered:
            self._dead_letters[received.topic].inc()
        return outgoing

    def skips(self, headers: Sequence[tuple[str, bytes]]) -> bool:
        """Whether a message with `headers` is passed over undecoded."""
        return self._skip is not None and self._skip(headers)

    def process(self, received: Received, state: State) -> tuple[list[Outgoing], bool]:
        """What the message leads to, and whether that is its dead letter."""
        value = received.value
        try:
            if value is None:
                raise ValueError("a tombstone (null value) carries no record")
            record = self._decoders[received.topic].decode(value)
            outgoing = [self._encode(emit) for emit in self._handle(record, state, received)]
        except Exception as error:  # anything this message causes: dead-letter it and go on
            if is_outage(error):
                raise  # not the message's fault: stop, and let the restart try it again
            logger.warning(
                "dead-lettering %s[%d]@%d: %s: %s",
                received.topic,
                received.partition,
                received.offset,
                type(error).__name__,
                error,
            )
            return [dead_letter(received, error, self.processor)], True
        return outgoing, False


def with_message(handle: RecordHandler) -> Handler:
    """A handler of records alone, as a `Handler` (the message it came in is not its concern)."""
    return lambda record, state, message: handle(record, state)


def passing_over(topics: Iterable[TopicSpec], handles: Iterable[type[AvroRecord]]) -> Skip:
    """Skip what carries the CloudEvents type of a record declared on `topics` that is none of `handles`."""
    handled = {type_of(kind.AVRO_NAME) for kind in handles}
    unwanted = frozenset({type_of(name) for topic in topics for name in topic.records} - handled)
    return lambda headers: header(headers, "ce_type") in unwanted


def publish(sdf: StreamingDataFrame, topics: Iterable[Topic]) -> None:
    """Produce each `Outgoing` to its own topic, with its own key and headers."""
    by_name = {topic.name: topic for topic in topics}
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: list(value.headers))
    # A record's Kafka timestamp is when its fact happened, not when its cause did: processors that merge
    # topics read in timestamp order, so a signal sent after a hop must not sort before that hop's output.
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: value.timestamp_ms or timestamp)
    sdf.to_topic(lambda value, key, timestamp, headers: by_name[value.topic], key=lambda value: value.key)
