"""Compiled Avro writers (schemas/avro_writer.py) write exactly fastavro's bytes for every record the processors
emit, and refuse what fastavro refuses."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import fastavro
import pytest

from schemas.avro_writer import UnsupportedSchema, compile_writer
from schemas.models import RECORD_TYPES
from schemas.serde import local_schema
from tests.factories import a_valid_order, order_created_from, records_the_processors_emit


def fastavro_bytes(fullname: str, fields: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, local_schema(fullname), fields)
    return buffer.getvalue()


def test_every_record_type_of_the_contract_compiles() -> None:
    for fullname in RECORD_TYPES:
        compile_writer(local_schema(fullname))


def test_the_compiled_writer_writes_fastavros_bytes_for_every_record_the_processors_emit(tmp_path: Path) -> None:
    records = records_the_processors_emit(tmp_path)
    writers = {fullname: compile_writer(local_schema(fullname)) for fullname in RECORD_TYPES}

    for record in records:
        fields = record.model_dump()
        assert writers[record.AVRO_NAME](fields) == fastavro_bytes(record.AVRO_NAME, fields), record

    assert len({type(record) for record in records}) >= 25


def test_the_frame_comes_first() -> None:
    created = order_created_from(a_valid_order("order-a"))
    writer = compile_writer(local_schema(created.AVRO_NAME), b"\x00\x00\x00\x00\x07")

    written = writer(created.model_dump())

    assert written == b"\x00\x00\x00\x00\x07" + fastavro_bytes(created.AVRO_NAME, created.model_dump())


@pytest.mark.parametrize(
    ("field", "value"), [("order_id", None), ("priority", "UNHEARD_OF"), ("lines", None), ("total", None)]
)
def test_fields_that_do_not_fit_the_schema_are_refused_as_fastavro_refuses_them(field: str, value: object) -> None:
    created = order_created_from(a_valid_order("order-a"))
    fields = {**created.model_dump(), field: value}
    writer = compile_writer(local_schema(created.AVRO_NAME))

    with pytest.raises((ValueError, TypeError, AttributeError, KeyError)):
        fastavro_bytes(created.AVRO_NAME, fields)
    with pytest.raises((ValueError, TypeError, AttributeError, KeyError)):
        writer(fields)


def test_a_long_beyond_64_bits_is_refused() -> None:
    schema: Any = fastavro.parse_schema(
        {"type": "record", "name": "T", "fields": [{"name": "n", "type": "long"}, {"name": "i", "type": "int"}]}
    )
    writer = compile_writer(schema)

    assert writer({"n": 2**62, "i": -(2**31)}) == fastavro_bytes_of(schema, {"n": 2**62, "i": -(2**31)})
    with pytest.raises(ValueError, match="out of range"):
        writer({"n": 2**64, "i": 0})
    with pytest.raises(ValueError, match="out of range"):
        writer({"n": 0, "i": 2**31})


def test_a_schema_it_does_not_cover_is_refused_when_compiled() -> None:
    schema: Any = fastavro.parse_schema({"type": "record", "name": "T", "fields": [{"name": "x", "type": "double"}]})

    with pytest.raises(UnsupportedSchema):
        compile_writer(schema)


def fastavro_bytes_of(schema: Any, fields: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, fields)
    return buffer.getvalue()
