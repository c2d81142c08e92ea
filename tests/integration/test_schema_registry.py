"""The registry, reached through confluent-kafka's client on its Confluent-compatible API."""

from __future__ import annotations

import copy
import datetime
import uuid
from collections.abc import Callable

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
from schemas.serde import RecordCodec, UndecodableRecord
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


def test_global_compatibility_is_backward_transitive(registry: SchemaRegistryClient) -> None:
    assert registry.get_compatibility() == COMPATIBILITY_LEVEL


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


def test_incompatible_change_is_rejected_with_subject_field_and_reason(
    registry: SchemaRegistryClient, unique_name: Callable[[str], str]
) -> None:
    original = record("oms.orders.PlaceOrder")
    subject = Subject(subject_name(unique_name("orders"), original.fullname), ORDERS_COMMANDS, original)
    register(registry, [subject])
    breaking = with_extra_field(original, {"name": "loyalty_tier", "type": "string"})
    changed = Subject(subject.name, ORDERS_COMMANDS, breaking)

    result = check(registry, changed)
    with pytest.raises(SchemaRegistryError) as rejected:
        registry.register_schema(subject.name, Schema(breaking.to_json(), "AVRO"))

    assert not result.compatible
    assert result.subject == subject.name
    assert any("loyalty_tier" in reason and "without a default" in reason for reason in result.reasons)
    assert rejected.value.http_status_code == 409


def test_compatible_change_is_accepted(registry: SchemaRegistryClient, unique_name: Callable[[str], str]) -> None:
    original = record("oms.orders.PlaceOrder")
    subject = Subject(subject_name(unique_name("orders"), original.fullname), ORDERS_COMMANDS, original)
    register(registry, [subject])
    evolved = with_extra_field(original, {"name": "loyalty_tier", "type": "string", "default": "none"})
    changed = Subject(subject.name, ORDERS_COMMANDS, evolved)

    assert check(registry, changed).compatible
    register(registry, [changed])
    assert registry.get_versions(subject.name) == [1, 2]
