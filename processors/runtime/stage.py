"""The pipeline step every processor is built from: bytes in, a decision over a record, bytes out.

Decoding, validation and the decision happen in one step so that a message nobody can use becomes a
dead letter inside the same Kafka transaction as everything else (Quix Streams has no DLQ of its own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from quixstreams import State
from quixstreams.context import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Topic

from processors.runtime.cloudevents import cloudevent_headers
from processors.runtime.deadletters import Received, dead_letter
from processors.runtime.metrics import DEAD_LETTERS, MESSAGES, PROCESSING
from processors.runtime.records import Emit, Outgoing
from schemas.models import AvroRecord
from schemas.serde import RecordCodec

logger = logging.getLogger(__name__)

Handler = Callable[[AvroRecord, State], Iterable[Emit]]
MessageHandler = Callable[[AvroRecord, State, Received], Iterable[Emit]]


class TransientError(Exception):
    """A failure that may pass if the same message is tried again (a flaky gateway, a timeout)."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_delay_s: float = 0.05
    max_delay_s: float = 1.0

    def delays(self) -> Iterable[float]:
        """Pauses between attempts: exponential backoff, bounded."""
        delay = self.first_delay_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay_s)


def retrying(call: Callable[[], Any], policy: RetryPolicy) -> Any:
    """Call until it stops raising `TransientError` or attempts run out (the last error propagates)."""
    for delay in policy.delays():
        try:
            return call()
        except TransientError as error:
            logger.info("transient failure, retrying in %.2fs: %s", delay, error)
            time.sleep(delay)
    return call()


class Encoder:
    """Turns emitted records into Avro messages with CloudEvents headers."""

    def __init__(self, registry: SchemaRegistryClient, source: str) -> None:
        self._registry = registry
        self._source = source
        self._codecs: dict[str, RecordCodec] = {}

    def __call__(self, emit: Emit) -> Outgoing:
        codec = self._codecs.get(emit.topic.name)
        if codec is None:
            codec = self._codecs[emit.topic.name] = RecordCodec(self._registry, emit.topic.name)
        occurred_at = emit.record.model_dump().get("occurred_at")
        return Outgoing(
            topic=emit.topic.name,
            key=emit.key.encode(),
            value=codec.encode(emit.record),
            headers=cloudevent_headers(emit.record, self._source) + emit.headers,
            timestamp_ms=round(occurred_at.timestamp() * 1000) if occurred_at else None,
        )


class RecordStage:
    """Decode a topic's message, let `handle` decide, encode what it emits; dead-letter what fails.

    `topic` may name several topics, for a stage after `StreamingDataFrame.concat`: each message is
    decoded with the codec of the topic it came from.
    """

    def __init__(
        self,
        processor: str,
        topic: str | Iterable[str],
        registry: SchemaRegistryClient,
        handle: Handler,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.processor = processor
        topics = [topic] if isinstance(topic, str) else list(topic)
        self._decoders = {name: RecordCodec(registry, name) for name in topics}
        self._encode = Encoder(registry, processor)
        self._handle = handle
        self._retry = retry or RetryPolicy()

    def __call__(
        self, value: bytes | None, key: bytes | None, timestamp: int, headers: Any, state: State
    ) -> list[Outgoing]:
        context = message_context()
        received = Received(
            context.topic, context.partition, context.offset, timestamp, key, value, tuple(headers or ())
        )
        with PROCESSING.labels(self.processor).time():
            outgoing, dead_lettered = self._process(received, state)
        MESSAGES.labels(self.processor, received.topic, "dead_lettered" if dead_lettered else "ok").inc()
        if dead_lettered:
            DEAD_LETTERS.labels(self.processor, received.topic).inc()
        return outgoing

    def _process(self, received: Received, state: State) -> tuple[list[Outgoing], bool]:
        """What the message leads to, and whether that is its dead letter."""
        value = received.value
        try:
            if value is None:
                raise ValueError("a tombstone (null value) carries no record")
            record = self._decoders[received.topic].decode(value)
            emits = list(retrying(lambda: list(self._decide(record, state, received)), self._retry))
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
        return [self._encode(emit) for emit in emits], False

    def _decide(self, record: AvroRecord, state: State, received: Received) -> Iterable[Emit]:
        return self._handle(record, state)


class MessageStage(RecordStage):
    """A `RecordStage` whose handler also sees the message as it came: topic, partition, offset, headers."""

    def __init__(
        self,
        processor: str,
        topic: str | Iterable[str],
        registry: SchemaRegistryClient,
        handle: MessageHandler,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(processor, topic, registry, lambda record, state: (), retry)
        self._handle_message = handle

    def _decide(self, record: AvroRecord, state: State, received: Received) -> Iterable[Emit]:
        return self._handle_message(record, state, received)


def is_outage(error: BaseException) -> bool:
    """The registry or network failing, as opposed to the message being unusable."""
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, SchemaRegistryError) and error.http_status_code >= 500


def publish(sdf: StreamingDataFrame, topics: Iterable[Topic]) -> None:
    """Produce each `Outgoing` to its own topic, with its own key and headers."""
    by_name = {topic.name: topic for topic in topics}
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: list(value.headers))
    # A record's Kafka timestamp is when its fact happened, not when its cause did: processors that merge
    # topics read in timestamp order, so a signal sent after a hop must not sort before that hop's output.
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: value.timestamp_ms or timestamp)
    sdf.to_topic(lambda value, key, timestamp, headers: by_name[value.topic], key=lambda value: value.key)
