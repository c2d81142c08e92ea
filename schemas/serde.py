"""Avro in Confluent wire format through the schema registry, to and from the generated models.

Subjects follow `TopicRecordNameStrategy`, so one topic carries several record types; a decoder learns
the writer's record type from the schema id in the message and reads with the local schema of that type.

The registry stays the source of truth for ids and writer schemas, but it is asked once per schema id or
subject: parsed schemas are cached, and records are read and written by code compiled once per record type
(schemas/avro_reader.py, schemas/avro_writer.py), or by fastavro where a schema needs what those do not
cover (confluent-kafka's Avro serdes walk the schema again on every call).
"""

from __future__ import annotations

import copy
import io
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.read import SchemaResolutionError
from pydantic import ValidationError

from schemas.avro_reader import Reader as AvroReader
from schemas.avro_reader import compile_reader
from schemas.avro_writer import UnsupportedSchema, Writer, compile_writer
from schemas.catalog import fullname_of, record
from schemas.models import RECORD_TYPES, AvroRecord
from schemas.registry import declared_subjects
from topology.topics import ROUTING_SLIP_HEADER, HeaderSpec

Record = TypeVar("Record", bound=AvroRecord)

MAGIC_BYTE = 0
NOT_FOUND = 404
_FRAME = struct.Struct(">bI")
# What fastavro or a compiled writer raises on bytes, or fields, that do not fit the schema, or on a writer's
# schema that the local one cannot resolve (a producer on an incompatible version): a bad record, not a crash.
_AVRO_ERRORS = (
    ValueError,
    TypeError,
    AttributeError,
    EOFError,
    IndexError,
    KeyError,
    OverflowError,
    struct.error,
    SchemaResolutionError,
)


class UndecodableRecord(ValueError):
    """The bytes are not a record of the wire contract; the message says why."""


class RegistryNotReady(Exception):
    """The registry does not know the contract: it is starting and has not read its store back yet, or the
    schemas were never registered. The world's fault, not the record's: an outage."""


# A subject registered with the contract in every deployment: while the registry answers "not found" for it, its
# "not found" for a schema id says nothing about the record that carries the id.
PROBE_SUBJECT = ROUTING_SLIP_HEADER.subject


@cache
def local_schema(fullname: str) -> Any:
    """The parsed local schema of a record type: what this service writes, and reads with."""
    return fastavro.parse_schema(copy.deepcopy(record(fullname).definition))


@dataclass(frozen=True)
class _Reader:
    """How to read the records a writer schema id stands for: compiled (schemas/avro_reader.py) when the
    writer's schema is the local one, by fastavro when it must be resolved to it."""

    model: type[AvroRecord]
    writer: Any
    reader: Any | None  # None when the writer's schema is the local one: nothing to resolve
    compiled: AvroReader | None = None

    def fields(self, data: bytes) -> dict[str, Any]:
        if self.compiled is not None:
            return self.compiled(data, _FRAME.size)
        buffer = io.BytesIO(data)
        buffer.seek(_FRAME.size)
        fields = fastavro.schemaless_reader(buffer, self.writer, self.reader)
        if not isinstance(fields, dict):
            raise TypeError(f"{self.model.AVRO_NAME} read as a {type(fields).__name__}, not a record")
        return fields


class _Writer:
    """Writes one record type under one subject: the registry's id, then the record's Avro body, with a writer
    compiled from the schema (schemas/avro_writer.py), or fastavro's for a schema it does not cover."""

    def __init__(self, schema_id: int, fullname: str) -> None:
        self._frame = _FRAME.pack(MAGIC_BYTE, schema_id)
        self._schema = local_schema(fullname)
        try:
            self._compiled: Writer | None = compile_writer(self._schema, self._frame)
        except UnsupportedSchema:
            self._compiled = None

    def __call__(self, fields: Mapping[str, Any]) -> bytes:
        if self._compiled is not None:
            return self._compiled(fields)
        buffer = io.BytesIO()
        buffer.write(self._frame)
        fastavro.schemaless_writer(buffer, self._schema, fields)
        return buffer.getvalue()


class _WireFormat:
    """Reading and writing Confluent-framed Avro against one registry, asking it once per id or subject."""

    def __init__(self, client: SchemaRegistryClient, *, auto_register: bool = False) -> None:
        self._client = client
        self._auto_register = auto_register
        self._writers: dict[tuple[str, str], _Writer] = {}
        self._readers: dict[int, _Reader | str] = {}

    def write(self, subject: str, fullname: str, fields: Mapping[str, Any]) -> bytes:
        writer = self._writers.get((subject, fullname))
        if writer is None:
            writer = self._writers[(subject, fullname)] = _Writer(self._schema_id(subject, fullname), fullname)
        try:
            return writer(fields)
        except _AVRO_ERRORS as error:
            raise ValueError(f"{fullname} cannot be written as Avro: {type(error).__name__}: {error}") from error

    def _schema_id(self, subject: str, fullname: str) -> int:
        schema = Schema(record(fullname).to_json(), "AVRO")
        if self._auto_register:
            return self._client.register_schema(subject, schema)
        try:
            registered = self._client.lookup_schema(subject, schema)
        except SchemaRegistryError as error:
            if error.http_status_code == NOT_FOUND and subject in _declared_subjects():
                raise RegistryNotReady(
                    f"the registry does not know {fullname} under {subject}: it is still loading, or "
                    "`oms schemas register` has not run"
                ) from error
            raise
        assert registered.schema_id is not None
        return registered.schema_id

    def schema_id(self, data: bytes, what: str) -> int:
        if len(data) < 5 or data[0] != MAGIC_BYTE:
            raise UndecodableRecord(f"{what}not Confluent-framed Avro (no magic byte and schema id)")
        return _FRAME.unpack_from(data)[1]

    def writer_name(self, schema_id: int, what: str) -> str:
        """The full name of the record type behind `schema_id`."""
        reader = self._reader(schema_id, what)
        return reader if isinstance(reader, str) else reader.model.AVRO_NAME

    def read(self, data: bytes, what: str) -> AvroRecord:
        schema_id = self.schema_id(data, what)
        reader = self._reader(schema_id, what)
        if isinstance(reader, str):
            raise UndecodableRecord(f"record type {reader} is not part of this service's contract")
        name = reader.model.AVRO_NAME
        try:
            fields = reader.fields(data)
        except _AVRO_ERRORS as error:
            raise UndecodableRecord(f"{name} could not be read: {type(error).__name__}: {error}") from error
        try:
            return reader.model.model_validate(fields)
        except ValidationError as error:
            raise UndecodableRecord(f"{name} fails validation: {error}") from error

    def _reader(self, schema_id: int, what: str) -> _Reader | str:
        """The reader for `schema_id`, or the writer's record name when it is not a type of the contract."""
        reader = self._readers.get(schema_id)
        if reader is None:
            reader = self._readers[schema_id] = self._fetch_reader(schema_id, what)
        return reader

    def _knows_the_contract(self) -> bool:
        try:
            self._client.get_latest_version(PROBE_SUBJECT)
        except SchemaRegistryError as error:
            if error.http_status_code == NOT_FOUND:
                return False
            raise
        return True

    def _fetch_reader(self, schema_id: int, what: str) -> _Reader | str:
        try:
            registered = self._client.get_schema(schema_id)
        except SchemaRegistryError as error:
            if error.http_status_code != NOT_FOUND:
                raise
            if not self._knows_the_contract():
                raise RegistryNotReady(
                    f"{what}schema id {schema_id} is not found, nor is {PROBE_SUBJECT}: the registry is still "
                    "loading, or the schemas were never registered"
                ) from error
            raise UndecodableRecord(f"{what}schema id {schema_id} is unknown to the registry") from error
        definition = json.loads(registered.schema_str or "{}")
        name = fullname_of(definition)
        model = RECORD_TYPES.get(name)
        if model is None:
            return name
        try:
            writer = fastavro.parse_schema(definition)
        except Exception as error:  # a registered schema this client cannot parse is as unreadable as garbage
            raise UndecodableRecord(f"{what}schema id {schema_id} cannot be parsed: {error}") from error
        local = local_schema(name)
        if writer != local:
            return _Reader(model, writer, local)
        try:
            return _Reader(model, writer, None, compile_reader(local))
        except UnsupportedSchema:
            return _Reader(model, writer, None)


@cache
def _declared_subjects() -> frozenset[str]:
    """The subjects the topology declares: one the registry cannot find is missing from it, not from the code."""
    return frozenset(subject.name for subject in declared_subjects())


class RecordCodec:
    """Encodes and decodes the records of one topic."""

    def __init__(self, client: SchemaRegistryClient, topic: str, *, auto_register: bool = False) -> None:
        self._topic = topic
        self._wire = _WireFormat(client, auto_register=auto_register)

    @property
    def topic(self) -> str:
        return self._topic

    def encode(self, value: AvroRecord) -> bytes:
        return self.encode_fields(value.AVRO_NAME, value.model_dump())

    def encode_fields(self, fullname: str, fields: Mapping[str, Any]) -> bytes:
        """Encode a record already dumped to its fields (`model_dump()`), so that a caller that also needs
        the fields (for headers, key and timestamp) walks the record once."""
        return self._wire.write(f"{self._topic}-{fullname}", fullname, fields)

    def decode(self, data: bytes) -> AvroRecord:
        return self._wire.read(data, "")

    def decode_as(self, data: bytes, kind: type[Record]) -> Record:
        """`decode`, for a topic that carries one record type: anything else is undecodable here."""
        decoded = self.decode(data)
        if not isinstance(decoded, kind):
            raise UndecodableRecord(f"{self._topic} carries {kind.AVRO_NAME}, not {type(decoded).AVRO_NAME}")
        return decoded

    def writer_record_name(self, data: bytes) -> str:
        """The full name of the record type the producer wrote, from the schema id in the message."""
        return self._wire.writer_name(self._wire.schema_id(data, ""), "")


# Headers this process wrote lately, by their bytes, with the record each was written from: shared by every
# codec of the process (the starter writes a slip that the activity host reads).
RECENT_HEADERS = 256  # about 9 KB each, a slip and its bytes
_recently_written: dict[bytes, AvroRecord] = {}


class HeaderCodec:
    """A record carried in a message header (a routing slip), in Confluent wire format.

    Its subject is the record's full name (RecordNameStrategy): a header belongs to no one topic.

    A header is read far more often in the process that wrote it than elsewhere: a slip handed to the next
    step in memory, or read back from a topic its engine crosses. Those bytes are answered with the record
    they were written from, not decoded and validated again; what is read is then the same either way, as
    the records' times are whole milliseconds (`processors.runtime.records.utc_now`), which Avro keeps.
    """

    def __init__(self, client: SchemaRegistryClient, header: HeaderSpec) -> None:
        self.header = header
        self._wire = _WireFormat(client)
        self._what = f"header {header.name}: "

    def encode(self, value: AvroRecord) -> bytes:
        encoded = self._wire.write(self.header.subject, self.header.record, value.model_dump())
        if len(encoded) > self.header.max_bytes:
            raise ValueError(f"header {self.header.name} would be {len(encoded)} bytes, over {self.header.max_bytes}")
        _recently_written[encoded] = value
        if len(_recently_written) > RECENT_HEADERS:
            del _recently_written[next(iter(_recently_written))]  # the oldest
        return encoded

    def decode(self, data: bytes | None) -> AvroRecord:
        if data is None:
            raise UndecodableRecord(f"header {self.header.name} is missing")
        written = _recently_written.get(data)
        if written is not None and self.header.record == written.AVRO_NAME:
            return written
        if len(data) > self.header.max_bytes:
            raise UndecodableRecord(
                f"header {self.header.name} is {len(data)} bytes, over the bound of {self.header.max_bytes}"
            )
        if len(data) < 5 or data[0] != MAGIC_BYTE:
            raise UndecodableRecord(f"header {self.header.name} is not Confluent-framed Avro")
        decoded = self._wire.read(data, self._what)
        if self.header.record != decoded.AVRO_NAME:
            raise UndecodableRecord(f"header {self.header.name} carries {decoded.AVRO_NAME}, not {self.header.record}")
        return decoded
