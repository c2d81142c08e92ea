"""Compiled Avro readers (schemas/avro_reader.py) read every record the processors emit as fastavro reads it,
and refuse bytes that are not a record of the schema."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import fastavro
import pytest

from processors.runtime.inprocess import memory_registry
from schemas.avro_reader import compile_reader
from schemas.avro_writer import UnsupportedSchema
from schemas.models import RECORD_TYPES
from schemas.serde import RecordCodec, UndecodableRecord, local_schema
from tests.factories import a_valid_order, order_created_from, records_the_processors_emit
from topology.topics import ORDERS_COMMANDS, ORDERS_EVENTS


def fastavro_fields(schema: Any, body: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(body), schema, None)


def body_of(schema: Any, fields: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, fields)
    return buffer.getvalue()


def test_every_record_type_of_the_contract_compiles() -> None:
    for fullname in RECORD_TYPES:
        compile_reader(local_schema(fullname))


def test_the_compiled_reader_reads_what_fastavro_reads_for_every_record_the_processors_emit(tmp_path: Path) -> None:
    records = records_the_processors_emit(tmp_path)
    readers = {fullname: compile_reader(local_schema(fullname)) for fullname in RECORD_TYPES}

    for record in records:
        schema = local_schema(record.AVRO_NAME)
        body = body_of(schema, record.model_dump())
        model = type(record)
        assert model.model_validate(readers[record.AVRO_NAME](body, 0)) == model.model_validate(
            fastavro_fields(schema, body)
        ), record

    assert len({type(record) for record in records}) >= 25


def test_it_reads_from_the_position_given_and_ignores_what_follows() -> None:
    created = order_created_from(a_valid_order("order-a"))
    schema = local_schema(created.AVRO_NAME)

    fields = compile_reader(schema)(b"\x00\x00\x00\x00\x07" + body_of(schema, created.model_dump()) + b"\x01", 5)

    assert type(created).model_validate(fields) == created


def test_blocks_maps_nulls_and_negative_counts_read_as_fastavro_reads_them() -> None:
    schema: Any = fastavro.parse_schema(
        {
            "type": "record",
            "name": "T",
            "fields": [
                {"name": "tags", "type": {"type": "map", "values": "string"}},
                {"name": "numbers", "type": {"type": "array", "items": "long"}},
                {"name": "maybe", "type": ["null", "string"]},
                {"name": "flag", "type": "boolean"},
            ],
        }
    )
    # numbers in two blocks, the second with a negative count and its size in bytes, as Java's encoders may write
    body = b"\x02\x02a\x02b\x00" + b"\x02\x02" + b"\x01\x02\x04" + b"\x00" + b"\x00" + b"\x01"

    assert (
        compile_reader(schema)(body, 0)
        == fastavro_fields(schema, body)
        == {
            "tags": {"a": "b"},
            "numbers": [1, 2],
            "maybe": None,
            "flag": True,
        }
    )


def test_every_truncation_of_a_record_is_undecodable() -> None:
    codec = RecordCodec(memory_registry(), ORDERS_EVENTS.name)
    encoded = codec.encode(order_created_from(a_valid_order("order-a")))

    for end in range(5, len(encoded)):
        with pytest.raises(UndecodableRecord):
            codec.decode(encoded[:end])


def test_a_string_in_a_uuid_field_is_valid_avro_that_the_model_refuses_naming_the_field() -> None:
    codec = RecordCodec(memory_registry(), ORDERS_COMMANDS.name)
    order = a_valid_order("order-a")
    frame = codec.encode(order)[:5]  # the magic byte and the local schema's id
    fields = order.model_dump() | {"event_id": "not-a-uuid"}

    with pytest.raises(UndecodableRecord) as refused:
        codec.decode(frame + body_of(local_schema(order.AVRO_NAME), fields))

    assert str(refused.value).startswith("oms.orders.PlaceOrder fails validation")
    assert "event_id" in str(refused.value)


def test_an_order_id_longer_than_the_contract_carries_is_refused_naming_the_field() -> None:
    codec = RecordCodec(memory_registry(), ORDERS_COMMANDS.name)
    order = a_valid_order("order-a")
    frame = codec.encode(order)[:5]
    fields = order.model_dump() | {"order_id": "o" * 20_000}

    with pytest.raises(UndecodableRecord) as refused:
        codec.decode(frame + body_of(local_schema(order.AVRO_NAME), fields))

    assert str(refused.value).startswith("oms.orders.PlaceOrder fails validation")
    assert "order_id" in str(refused.value) and "at most 128 characters" in str(refused.value)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"\x02\xff", "a string that is not UTF-8"),
        (b"\x06ab", "a string longer than what is left"),
        (b"\x05", "a negative string length"),
    ],
)
def test_bytes_that_are_not_a_record_of_the_schema_are_refused(body: bytes, why: str) -> None:
    schema: Any = fastavro.parse_schema({"type": "record", "name": "T", "fields": [{"name": "s", "type": "string"}]})

    with pytest.raises((ValueError, EOFError, IndexError)):
        compile_reader(schema)(body, 0)


def test_an_enum_index_or_a_union_branch_out_of_range_is_refused() -> None:
    schema: Any = fastavro.parse_schema(
        {
            "type": "record",
            "name": "T",
            "fields": [
                {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
                {"name": "u", "type": ["null", "long"]},
            ],
        }
    )
    reader = compile_reader(schema)

    assert reader(b"\x02\x02\x04", 0) == {"e": "B", "u": 2}
    with pytest.raises(IndexError):
        reader(b"\x04\x00", 0)  # symbol 2 of 2
    with pytest.raises(IndexError):
        reader(b"\x00\x04", 0)  # branch 2 of 2


def test_a_schema_it_does_not_cover_is_refused_when_compiled() -> None:
    schema: Any = fastavro.parse_schema({"type": "record", "name": "T", "fields": [{"name": "x", "type": "double"}]})

    with pytest.raises(UnsupportedSchema):
        compile_reader(schema)
