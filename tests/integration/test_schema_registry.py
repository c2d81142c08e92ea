"""The registry, reached through confluent-kafka's client on its Confluent-compatible API."""

from __future__ import annotations

import copy
import datetime
import io
import uuid
from collections.abc import Callable, Iterator

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas.catalog import RecordSchema, record
from schemas.models import Money, OrderLine, OrderRejected, PlaceOrder
from schemas.registry import (
    COMPATIBILITY_LEVEL,
    Subject,
    check,
    register,
    subject_name,
)
from schemas.serde import MAGIC_BYTE, RecordCodec, UndecodableRecord
from topology.topics import ORDERS_COMMANDS


def a_place_order() -> PlaceOrder:
    return PlaceOrder.model_validate(
        {
            "event_id": uuid.uuid4(),
            "order_id": "o-1001",
            "occurred_at": datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC),
            "customer_id": "c-7",
            "customer_email": "ada@example.com",
            "lines": [OrderLine(sku="SKU-1", quantity=2, unit_price=Money(amount_minor=1250, currency="EUR"))],
            "shipping_address": {
                "recipient": "Ada",
                "line1": "1 Loop Road",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
            "tenders": [{"method": "CARD", "token": "tok_ok", "amount": {"amount_minor": 2500, "currency": "EUR"}}],
            "is_gift": True,
        }
    )


def with_extra_field(schema: RecordSchema, field: dict[str, object]) -> RecordSchema:
    definition = copy.deepcopy(schema.definition)
    definition["fields"].append(field)
    return RecordSchema(schema.fullname, definition, schema.path)


def test_record_round_trips_through_confluent_avro_serializer(registry: SchemaRegistryClient, topic: str) -> None:
    codec = RecordCodec(registry, topic, auto_register=True)
    order = a_place_order()

    encoded = codec.encode(order)
    decoded = codec.decode(encoded)

    assert decoded == order
    assert codec.writer_record_name(encoded) == "oms.orders.PlaceOrder"
    assert subject_name(topic, "oms.orders.PlaceOrder") in registry.get_subjects()


def test_one_topic_carries_several_record_types(registry: SchemaRegistryClient, topic: str) -> None:
    codec = RecordCodec(registry, topic, auto_register=True)
    rejected = OrderRejected(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=datetime.datetime.now(datetime.UTC).replace(microsecond=0),
        reasons=["no lines", "no address"],
    )

    decoded = [codec.decode(codec.encode(value)) for value in (a_place_order(), rejected)]

    assert [type(value) for value in decoded] == [PlaceOrder, OrderRejected]
    assert decoded[1] == rejected


def test_unregistered_schema_is_not_registered_implicitly(registry: SchemaRegistryClient, topic: str) -> None:
    codec = RecordCodec(registry, topic)

    with pytest.raises(SchemaRegistryError):
        codec.encode(a_place_order())


def test_bytes_that_are_not_avro_are_reported_undecodable(registry: SchemaRegistryClient, topic: str) -> None:
    codec = RecordCodec(registry, topic)

    with pytest.raises(UndecodableRecord, match="magic byte"):
        codec.decode(b'{"order_id": "o-1"}')
    with pytest.raises(UndecodableRecord, match="unknown to the registry"):
        codec.decode(b"\x00\x7f\xff\xff\xf0" + b"\x02")


def without_field(schema: RecordSchema, name: str) -> RecordSchema:
    definition = copy.deepcopy(schema.definition)
    definition["fields"] = [field for field in definition["fields"] if field["name"] != name]
    return RecordSchema(schema.fullname, definition, schema.path)


def with_field_type(schema: RecordSchema, name: str, avro_type: object) -> RecordSchema:
    definition = copy.deepcopy(schema.definition)
    next(field for field in definition["fields"] if field["name"] == name)["type"] = avro_type
    return RecordSchema(schema.fullname, definition, schema.path)


@pytest.fixture
def place_order_subject(registry: SchemaRegistryClient, unique_name: Callable[[str], str]) -> Iterator[Subject]:
    """PlaceOrder registered as it is, with the contract's level, under a subject of this test alone."""
    original = record("oms.orders.PlaceOrder")
    subject = Subject(subject_name(unique_name("orders"), original.fullname), ORDERS_COMMANDS, original)
    register(registry, [subject])
    yield subject
    registry.delete_subject(subject.name)
    registry.delete_subject(subject.name, permanent=True)


def test_register_sets_the_contract_level_on_the_subject(
    registry: SchemaRegistryClient, place_order_subject: Subject
) -> None:
    assert registry.get_compatibility(place_order_subject.name) == COMPATIBILITY_LEVEL == "FULL_TRANSITIVE"


def test_registry_refuses_to_remove_a_field_old_consumers_require(
    registry: SchemaRegistryClient, place_order_subject: Subject
) -> None:
    without_email = without_field(place_order_subject.schema, "customer_email")

    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(place_order_subject.name, Schema(without_email.to_json(), "AVRO"))

    assert refused.value.http_status_code == 409


def test_check_names_a_removed_required_field_whatever_level_the_registry_holds(
    registry: SchemaRegistryClient, place_order_subject: Subject
) -> None:
    # A subject left at the old level: the registry alone would let the removal through.
    registry.set_compatibility(place_order_subject.name, "BACKWARD_TRANSITIVE")
    without_email = without_field(place_order_subject.schema, "customer_email")
    assert registry.test_compatibility_all_versions(place_order_subject.name, Schema(without_email.to_json(), "AVRO"))

    result = check(registry, Subject(place_order_subject.name, ORDERS_COMMANDS, without_email))

    assert not result.compatible
    assert result.reasons == (
        "against version 1: field 'customer_email': removed, but version 1 has no default for it, "
        "so consumers still on version 1 cannot read new records",
    )
    assert registry.get_compatibility(place_order_subject.name) == "BACKWARD_TRANSITIVE", "a check only reads"


def test_check_and_registry_refuse_a_type_change(registry: SchemaRegistryClient, place_order_subject: Subject) -> None:
    retyped = with_field_type(place_order_subject.schema, "customer_id", "long")

    result = check(registry, Subject(place_order_subject.name, ORDERS_COMMANDS, retyped))
    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(place_order_subject.name, Schema(retyped.to_json(), "AVRO"))

    assert not result.compatible
    assert [reason.split(",")[0] for reason in result.reasons] == [
        "against version 1: field 'customer_id': type changed from string to long"
    ]
    assert refused.value.http_status_code == 409


def test_incompatible_change_is_rejected_with_subject_field_and_reason(
    registry: SchemaRegistryClient, place_order_subject: Subject
) -> None:
    breaking = with_extra_field(place_order_subject.schema, {"name": "loyalty_tier", "type": "string"})
    changed = Subject(place_order_subject.name, ORDERS_COMMANDS, breaking)

    result = check(registry, changed)
    with pytest.raises(SchemaRegistryError) as rejected:
        registry.register_schema(place_order_subject.name, Schema(breaking.to_json(), "AVRO"))

    assert not result.compatible
    assert result.subject == place_order_subject.name
    assert any("loyalty_tier" in reason and "without a default" in reason for reason in result.reasons)
    assert rejected.value.http_status_code == 409


def test_compatible_change_is_accepted_and_old_consumers_read_its_records(
    registry: SchemaRegistryClient, place_order_subject: Subject, topic: str
) -> None:
    evolved = without_field(
        with_extra_field(place_order_subject.schema, {"name": "loyalty_tier", "type": "string", "default": "none"}),
        "is_gift",
    )
    changed = Subject(place_order_subject.name, ORDERS_COMMANDS, evolved)

    assert check(registry, changed).compatible
    [new_id] = register(registry, [changed]).values()
    assert registry.get_versions(place_order_subject.name) == [1, 2]

    # A producer already on the new schema writes; a consumer still on the old one (the local schema) reads.
    order = a_place_order()
    fields = {**order.model_dump(exclude={"is_gift"}), "loyalty_tier": "gold"}
    written = io.BytesIO()
    written.write(bytes([MAGIC_BYTE]) + new_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(written, fastavro.parse_schema(copy.deepcopy(evolved.definition)), fields)

    read = RecordCodec(registry, topic).decode(written.getvalue())

    assert read == order.model_copy(update={"is_gift": False})  # the old schema's default fills the removed field
