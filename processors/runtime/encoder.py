"""The one way records leave for Kafka: an `Emit` becomes an `Outgoing` (Avro value, key, CloudEvents
headers, the `traceparent` of its send span, timestamp), whoever emits it: a processor's stage, the timers
or an operator's tool."""

from __future__ import annotations

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from processors.runtime.cloudevents import cloudevent_headers
from processors.runtime.records import Emit, Outgoing
from processors.runtime.tracing import sending
from schemas.serde import RecordCodec


class Encoder:
    """Encodes the records one source (a processor or tool, `ce_source`) emits, with a codec per topic."""

    def __init__(self, registry: SchemaRegistryClient, source: str) -> None:
        self._registry = registry
        self._source = source
        self._codecs: dict[str, RecordCodec] = {}

    def __call__(self, emit: Emit) -> Outgoing:
        record = emit.record
        topic = emit.topic.name
        if record is None:
            with sending(topic, emit.key, tombstone=True) as trace:
                return Outgoing(topic, emit.key.encode(), None, emit.headers + trace)
        # One walk over the record: the value, the headers and the timestamp all come from these fields.
        fields = record.model_dump()
        occurred_at = fields.get("occurred_at")
        with sending(topic, emit.key, fields["event_id"], fields.get("order_id")) as trace:
            return Outgoing(
                topic=topic,
                key=emit.key.encode(),
                value=self._codec(topic).encode_fields(record.AVRO_NAME, fields),
                headers=cloudevent_headers(record.AVRO_NAME, fields, self._source) + emit.headers + trace,
                timestamp_ms=round(occurred_at.timestamp() * 1000) if occurred_at else None,
                record=record,
            )

    def _codec(self, topic: str) -> RecordCodec:
        codec = self._codecs.get(topic)
        if codec is None:
            codec = self._codecs[topic] = RecordCodec(self._registry, topic)
        return codec


def produce(producer: Producer, outgoing: Outgoing) -> None:
    """Hand a message to a plain confluent-kafka producer (the processes and tools that are not Quix apps)."""
    producer.produce(
        outgoing.topic,
        key=outgoing.key,
        value=outgoing.value,
        headers=list(outgoing.headers),
        **({"timestamp": outgoing.timestamp_ms} if outgoing.timestamp_ms is not None else {}),
    )
