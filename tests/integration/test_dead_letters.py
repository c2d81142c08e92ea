"""What a processor cannot use goes to `<topic>.dlq` with its original bytes and the error; it goes on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas.catalog import record
from schemas.models import OrderCreated
from schemas.serde import RecordCodec
from tests.factories import a_valid_order
from tests.integration.harness import Processes, Seen, Watcher
from topology.settings import Settings
from topology.topics import ORDERS_COMMANDS, ORDERS_EVENTS

DLQ = ORDERS_COMMANDS.dead_letter_topic.name


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [ORDERS_EVENTS.name], raw=[DLQ])
    yield watching
    watching.close()


def raw_place_order(registry: SchemaRegistryClient, **fields: object) -> bytes:
    """A PlaceOrder that is valid Avro but breaks the model (e.g. an event id that is no UUID)."""
    serializer = AvroSerializer(
        registry,
        record("oms.orders.PlaceOrder").to_json(),
        conf={"auto.register.schemas": False, "subject.name.strategy": topic_record_subject_name_strategy},
    )
    value = a_valid_order().model_dump() | fields
    encoded = serializer(value, SerializationContext(ORDERS_COMMANDS.name, MessageField.VALUE))
    assert encoded is not None
    return encoded


def test_poison_goes_to_the_dead_letter_topic_and_valid_orders_still_flow(
    settings: Settings, registry: SchemaRegistryClient, watcher: Watcher
) -> None:
    run = uuid.uuid4().hex[:8]
    poison = {
        f"not-avro-{run}": b'{"order_id": "o-1"}',
        f"unknown-schema-{run}": b"\x00\x7f\xff\xff\xf0\x02\x00",
        f"bad-uuid-{run}": raw_place_order(registry, event_id="not-a-uuid", order_id=f"bad-uuid-{run}"),
    }
    valid = a_valid_order(order_id=f"after-poison-{run}")
    producer = Producer(settings.kafka_config())
    for key, value in poison.items():
        producer.produce(ORDERS_COMMANDS.name, key=key.encode(), value=value, headers=[("trace", run.encode())])
    producer.produce(
        ORDERS_COMMANDS.name,
        key=valid.order_id.encode(),
        value=RecordCodec(registry, ORDERS_COMMANDS.name).encode(valid),
    )
    producer.flush(30)

    # Both processors that read the commands, intake and the sagas, dead-letter each; `dlq.processor` says whose.
    def letters_by(seen: list[Seen], processor: bytes) -> dict[str, Seen]:
        return {
            str(s.key): s
            for s in seen
            if s.topic == DLQ and s.key in poison and s.headers["dlq.processor"] == processor
        }

    seen = watcher.wait_until(
        lambda seen: (
            set(letters_by(seen, b"oms.intake")) == set(letters_by(seen, b"oms.sagas")) == set(poison)
            and any(isinstance(s.record, OrderCreated) and s.key == valid.order_id for s in seen)
        ),
        what="three dead letters from each reader and the valid order created",
    )

    dead = letters_by(seen, b"oms.intake")
    for key, letter in dead.items():
        assert letter.value == poison[key], "the original bytes are kept"
        assert letter.headers["trace"] == run.encode(), "the original headers are kept"
        assert letter.headers["dlq.original.topic"] == ORDERS_COMMANDS.name.encode()
        assert int(letter.headers["dlq.original.offset"]) >= 0
        assert int(letter.headers["dlq.original.partition"]) in range(ORDERS_COMMANDS.partitions)
        assert int(letter.headers["dlq.original.timestamp"]) > 0
        assert letter.headers["dlq.processor"] == b"oms.intake"
    assert dead[f"not-avro-{run}"].headers["dlq.error.class"] == b"schemas.serde.UndecodableRecord"
    assert b"magic byte" in dead[f"not-avro-{run}"].headers["dlq.error.message"]
    assert b"schema id" in dead[f"unknown-schema-{run}"].headers["dlq.error.message"]
    assert dead[f"bad-uuid-{run}"].headers["dlq.error.class"] == b"schemas.serde.UndecodableRecord"
    assert dead[f"bad-uuid-{run}"].headers["dlq.error.message"].startswith(b"oms.orders.PlaceOrder could not be read")
    assert b"UUID" in dead[f"bad-uuid-{run}"].headers["dlq.error.message"]
