"""The pipeline step every processor is built from: bytes in, a decision over a record, bytes out.

Checking the topic's contract, decoding, the decision, encoding and the size of what leaves happen in one step,
so that a message nobody can use becomes a dead letter inside the same Kafka transaction as everything else
(Quix Streams has no DLQ of its own), and leaves nothing behind in the key's state. An outage is not the
message's fault: the message is tried again in place, and if the outage lasts, the processor stops.

Each message is handled in its own `process <topic>` span, the child of the one its `traceparent` names, and
each record it leads to is sent in a `send <topic>` span, the child of that one (the encoder makes it); a dead
letter keeps the headers it came with, and its message's span is marked failed. Log lines written meanwhile
name its order, event and trace.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import State
from quixstreams.context import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Topic

from processors.runtime.cloudevents import header
from processors.runtime.contract import TopicContract
from processors.runtime.deadletters import Received, dead_letter
from processors.runtime.encoder import Encoder
from processors.runtime.errors import is_outage
from processors.runtime.logs import about_message
from processors.runtime.metrics import DEAD_LETTERS, MESSAGES, PROCESSING
from processors.runtime.records import Emit, Outgoing, Unencoded
from processors.runtime.sizes import check_size
from processors.runtime.tentative import TentativeState
from processors.runtime.tracing import current_span, handling, processing, record_failure, resumed
from schemas.models import AvroRecord
from schemas.serde import RecordCodec
from topology.settings import Settings
from topology.topics import TopicSpec

logger = logging.getLogger(__name__)

RecordHandler = Callable[[AvroRecord, State], Iterable[Emit]]
Handler = Callable[[AvroRecord, State, Received], Iterable[Emit]]
"""What a processor does with a record: given its key's state and the message it came in, what it emits."""
Skip = Callable[[Sequence[tuple[str, bytes]]], bool]
"""Picks, by its headers, a message not worth decoding."""
AnswerUnreadable = Callable[[Received, BaseException, str | None, State], Iterable[Emit]]
"""What a processor answers for a message it cannot read (its topic's contract broken, undecodable, invalid by
the schema), besides its dead letter: given the message, why, the writer's record type when its schema id
says, and its key's state (to read: what it writes is not kept, as for any message that is dead-lettered)."""

FIRST_OUTAGE_BACKOFF_S = 0.1


class Outcome(enum.StrEnum):
    """What became of a message: the `outcome` label of `oms_messages_processed_total`."""

    OK = "ok"
    DEAD_LETTERED = "dead_lettered"
    PASSED_OVER = "passed_over"


class RecordStage:
    """Hold a topic's message to its contract, decode it, let `handle` decide, encode what it emits;
    dead-letter what fails, re-raise an outage that outlasts its retries.

    `topics` may name several topics, for a stage after `StreamingDataFrame.concat`: each message is
    checked and decoded with the contract and codec of the topic it came from. A record type its topics
    declare that is none of `handles` is passed over undecoded; the type is the writer's, known from the
    schema id in the message, not from a header anyone can set. `skip` passes over more by headers. A message
    failure is not retried here: retries belong where a call leaves the process (a gateway, a carrier, a
    channel), and what still fails is the message's dead letter. A message that cannot be read is answered
    by `answer_unreadable`, if given, in the same step as its dead letter (so in the same transaction).
    """

    def __init__(
        self,
        processor: str,
        topics: Iterable[TopicSpec],
        registry: SchemaRegistryClient,
        handle: Handler,
        settings: Settings,
        *,
        handles: Iterable[type[AvroRecord]] | None = None,
        skip: Skip | None = None,
        outputs: Iterable[TopicSpec] | None = None,
        encode_later: frozenset[str] = frozenset(),
        answer_unreadable: AnswerUnreadable | None = None,
        group: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processor = processor
        topics = list(topics)
        self._contracts = {topic.name: TopicContract(topic) for topic in topics}
        self._decoders = {topic.name: RecordCodec(registry, topic.name) for topic in topics}
        self._handled = None if handles is None else frozenset(kind.AVRO_NAME for kind in handles)
        self._encode = Encoder(registry, processor)
        self._handle = handle
        self._skip = skip
        self._outputs = None if outputs is None else frozenset(topic.name for topic in outputs)
        self._encode_later = encode_later
        self._answer_unreadable = answer_unreadable
        self._max_message_bytes = settings.max_message_bytes
        self._outage_retry_s = settings.outage_retry_s
        self._sleep, self._clock = sleep, clock
        self._processing = PROCESSING.labels(processor)
        self._counted = {
            (topic.name, outcome): MESSAGES.labels(processor, topic.name, outcome.value)
            for topic in topics
            for outcome in Outcome
        }
        self._dead_letters = {topic.name: DEAD_LETTERS.labels(processor, topic.name) for topic in topics}
        # The consumer group that reads its topics from Kafka: the processor's own, or its engine's.
        self._spans = {topic.name: processing(topic.name, group or processor, processor) for topic in topics}

    def __call__(
        self, value: bytes | None, key: bytes | None, timestamp: int, headers: Any, state: State
    ) -> list[Outgoing]:
        return self.receive(received_now(value, key, timestamp, headers), state)

    def receive(self, received: Received, state: State) -> list[Outgoing]:
        """`process`, timed and counted in the processor's metrics."""
        with self._processing.time():
            outgoing, outcome = self.process(received, state)
        self._counted[(received.topic, outcome)].inc()
        if outcome is Outcome.DEAD_LETTERED:
            self._dead_letters[received.topic].inc()
        return outgoing

    def passes_over(self, writer: str) -> bool:
        """Whether a record of type `writer` (full name) is passed over undecoded."""
        return self._handled is not None and writer not in self._handled

    def process(self, received: Received, state: State) -> tuple[list[Outgoing], Outcome]:
        """What the message leads to, and what became of it; an outage is tried again with backoff for up to
        `outage_retry_s`, then raised: a processor stopped by an outage restarts into the same message."""
        if self._passed_over_at_once(received):
            return [], Outcome.PASSED_OVER
        headers = received.headers
        order_id, event_id = header(headers, "ce_subject"), header(headers, "ce_id")
        span = handling(
            headers,
            self._spans[received.topic],
            partition=received.partition,
            offset=received.offset,
            key=received.key,
            message_id=event_id,
            order_id=order_id,
        )
        with span, about_message(order_id=order_id, event_id=event_id):
            return self._process_retrying(received, state)

    def _passed_over_at_once(self, received: Received) -> bool:
        """Whether the message is one this stream passes over and keeps its topic's contract: then nothing more
        is done with it (no span, no state, no retries). Anything else, the contract broken included, takes
        the full path, which dead-letters what must be."""
        if received.value is None:
            return False
        try:
            writer = (
                received.record.AVRO_NAME
                if received.record is not None
                else self._decoders[received.topic].writer_record_name(received.value)
            )
            if not (self.passes_over(writer) or (self._skip is not None and self._skip(received.headers))):
                return False
            self._contracts[received.topic].check_type(writer, received.headers)
        except Exception:
            return False
        return True

    def _process_retrying(self, received: Received, state: State) -> tuple[list[Outgoing], Outcome]:
        deadline = self._clock() + self._outage_retry_s
        backoff = FIRST_OUTAGE_BACKOFF_S
        while True:
            try:
                return self._process_once(received, state)
            except Exception as error:
                pause = min(backoff, deadline - self._clock())
                if not is_outage(error) or pause <= 0:
                    raise
                logger.warning(
                    "outage at %s[%d]@%d, trying it again in %.1f s: %s: %s",
                    received.topic,
                    received.partition,
                    received.offset,
                    pause,
                    type(error).__name__,
                    error,
                )
                self._sleep(pause)
                backoff *= 2

    def _process_once(self, received: Received, state: State) -> tuple[list[Outgoing], Outcome]:
        tentative = TentativeState(state)
        try:
            outgoing = self._decide(received, tentative)
        except _Unreadable as unreadable:
            letter = self._dead_letter(received, unreadable.error)
            return [letter, *self._answers(received, unreadable, state)], Outcome.DEAD_LETTERED
        except Exception as error:  # anything this message causes: dead-letter it and go on
            if is_outage(error):
                raise  # not the message's fault: never its dead letter
            return [self._dead_letter(received, error)], Outcome.DEAD_LETTERED
        if outgoing is None:
            return [], Outcome.PASSED_OVER
        tentative.commit()
        return outgoing, Outcome.OK

    def _dead_letter(self, received: Received, error: BaseException) -> Outgoing:
        logger.warning(
            "dead-lettering %s[%d]@%d: %s: %s",
            received.topic,
            received.partition,
            received.offset,
            type(error).__name__,
            error,
        )
        record_failure(error)
        return dead_letter(received, error, self.processor, self._max_message_bytes)

    def _answers(self, received: Received, unreadable: _Unreadable, state: State) -> list[Outgoing]:
        """What `answer_unreadable` says to a message that cannot be read; nothing when it cannot say it (the
        dead letter is all there is then). Its writes to the state are not kept."""
        if self._answer_unreadable is None:
            return []
        try:
            emits = self._answer_unreadable(received, unreadable.error, unreadable.writer, TentativeState(state))
            return [self._encoded(emit) for emit in emits]
        except Exception as error:
            if is_outage(error):
                raise
            logger.warning(
                "no answer to %s[%d]@%d: %s: %s",
                received.topic,
                received.partition,
                received.offset,
                type(error).__name__,
                error,
            )
            return []

    def _decide(self, received: Received, state: State) -> list[Outgoing] | None:
        """What the message leads to, None when it is passed over; raises what makes it a dead letter, as
        `_Unreadable` when the message cannot be read."""
        record = self._read(received)
        if record is None:
            return None
        return [self._encoded(emit) for emit in self._handle(record, state, received)]

    def _read(self, received: Received) -> AvroRecord | None:
        """The message's record held to its topic's contract, None when it is passed over."""
        writer = None
        try:
            value = received.value
            if value is None:
                raise ValueError("a tombstone (null value) carries no record")
            contract, decoder = self._contracts[received.topic], self._decoders[received.topic]
            # A record handed over in memory by the processor that emitted it is the one its bytes encode.
            record = received.record
            writer = decoder.writer_record_name(value) if record is None else record.AVRO_NAME
            contract.check_type(writer, received.headers)
            if self.passes_over(writer) or (self._skip is not None and self._skip(received.headers)):
                return None
            if record is None:
                record = decoder.decode(value)
            contract.check_record(received.key, record)
            return record
        except Exception as error:
            if is_outage(error):
                raise
            raise _Unreadable(error, writer) from error

    def _encoded(self, emit: Emit) -> Outgoing:
        if self._outputs is not None and emit.topic.name not in self._outputs:
            raise ValueError(f"{self.processor} does not write to {emit.topic.name}")
        if emit.topic.name in self._encode_later and emit.record is not None:
            return Unencoded(
                emit.topic.name,
                emit.key.encode(),
                None,
                emit.headers,
                record=emit.record,
                emit=emit,
                span=current_span(),
            )
        return self._encoded_now(emit)

    def _encoded_now(self, emit: Emit) -> Outgoing:
        outgoing = self._encode(emit)
        check_size(outgoing, self._max_message_bytes)
        return outgoing

    def encode_later(self, pending: Unencoded, cause: Received) -> Outgoing:
        """A record it handed back unencoded (`encode_later`), encoded now; the dead letter of the message that
        led to it when it cannot be (too large: the key's state keeps what led to it all the same). An outage
        is raised: the engine stops and is restarted into the message it read."""
        assert pending.emit is not None and pending.span is not None
        try:
            with resumed(pending.span):  # sent as a child of the span it was handed back in
                return self._encoded_now(pending.emit)
        except Exception as error:
            if is_outage(error):
                raise
            logger.warning("dead-lettering %s: %s: %s", cause.topic, type(error).__name__, error)
            self._counted[(cause.topic, Outcome.DEAD_LETTERED)].inc()
            self._dead_letters[cause.topic].inc()
            return dead_letter(cause, error, self.processor, self._max_message_bytes)


class _Unreadable(Exception):
    """The message cannot be read: `error` says why; `writer` is its record type when its schema id says."""

    def __init__(self, error: Exception, writer: str | None) -> None:
        super().__init__(str(error))
        self.error, self.writer = error, writer


def received_now(value: bytes | None, key: bytes | None, timestamp: int, headers: Any) -> Received:
    """The message Quix Streams is processing, as it arrived."""
    context = message_context()
    return Received(context.topic, context.partition, context.offset, timestamp, key, value, tuple(headers or ()))


def with_message(handle: RecordHandler) -> Handler:
    """A handler of records alone, as a `Handler` (the message it came in is not its concern)."""
    return lambda record, state, message: handle(record, state)


def publish(sdf: StreamingDataFrame, topics: Iterable[Topic]) -> None:
    """Produce each `Outgoing` to its own topic, with its own key and headers."""
    by_name = {topic.name: topic for topic in topics}
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: list(value.headers))
    # A record's Kafka timestamp is when its fact happened, not when its cause did: processors that merge
    # topics read in timestamp order, so a signal sent after a hop must not sort before that hop's output.
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: value.timestamp_ms or timestamp)
    sdf.to_topic(lambda value, key, timestamp, headers: by_name[value.topic], key=lambda value: value.key)
