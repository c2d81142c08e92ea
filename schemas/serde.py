"""Avro in Confluent wire format through the schema registry, to and from the generated models.

Subjects follow `TopicRecordNameStrategy`, so one topic carries several record types; a decoder learns
the writer's record type from the schema id in the message and reads with the local schema of that type.
"""

from __future__ import annotations

import json
import struct
from typing import TypeVar

from confluent_kafka.schema_registry import (
    SchemaRegistryClient,
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from pydantic import ValidationError

from schemas.catalog import fullname_of, record
from schemas.models import RECORD_TYPES, AvroRecord
from topology.topics import HeaderSpec

Record = TypeVar("Record", bound=AvroRecord)

MAGIC_BYTE = 0
NOT_FOUND = 404


class UndecodableRecord(ValueError):
    """The bytes are not a record of the wire contract; the message says why."""


class RecordCodec:
    """Encodes and decodes the records of one topic."""

    def __init__(self, client: SchemaRegistryClient, topic: str, *, auto_register: bool = False) -> None:
        self._client = client
        self._topic = topic
        self._auto_register = auto_register
        self._serializers: dict[str, AvroSerializer] = {}
        self._deserializers: dict[str, AvroDeserializer] = {}
        self._writer_names: dict[int, str] = {}

    def encode(self, value: AvroRecord) -> bytes:
        serializer = self._serializers.get(value.AVRO_NAME)
        if serializer is None:
            serializer = AvroSerializer(
                self._client,
                record(value.AVRO_NAME).to_json(),
                to_dict=lambda model, _ctx: model.model_dump(),
                conf={
                    "auto.register.schemas": self._auto_register,
                    "subject.name.strategy": topic_record_subject_name_strategy,
                },
            )
            self._serializers[value.AVRO_NAME] = serializer
        encoded = serializer(value, SerializationContext(self._topic, MessageField.VALUE))
        assert encoded is not None
        return encoded

    def decode(self, data: bytes) -> AvroRecord:
        name = self.writer_record_name(data)
        model = RECORD_TYPES.get(name)
        if model is None:
            raise UndecodableRecord(f"record type {name} is not part of this service's contract")
        deserializer = self._deserializers.get(name)
        if deserializer is None:
            deserializer = AvroDeserializer(self._client, record(name).to_json())
            self._deserializers[name] = deserializer
        try:
            fields = deserializer(data, SerializationContext(self._topic, MessageField.VALUE))
        except (ValueError, TypeError, EOFError, IndexError) as error:
            raise UndecodableRecord(f"{name} could not be read: {type(error).__name__}: {error}") from error
        try:
            return model.model_validate(fields)
        except ValidationError as error:
            raise UndecodableRecord(f"{name} fails validation: {error}") from error

    def decode_as(self, data: bytes, kind: type[Record]) -> Record:
        """`decode`, for a topic that carries one record type: anything else is undecodable here."""
        decoded = self.decode(data)
        if not isinstance(decoded, kind):
            raise UndecodableRecord(f"{self._topic} carries {kind.AVRO_NAME}, not {type(decoded).AVRO_NAME}")
        return decoded

    def writer_record_name(self, data: bytes) -> str:
        """The full name of the record type the producer wrote, from the schema id in the message."""
        if len(data) < 5 or data[0] != MAGIC_BYTE:
            raise UndecodableRecord("not Confluent-framed Avro (no magic byte and schema id)")
        (schema_id,) = struct.unpack(">I", data[1:5])
        name = self._writer_names.get(schema_id)
        if name is None:
            try:
                schema = self._client.get_schema(schema_id)
            except SchemaRegistryError as error:
                if error.http_status_code == NOT_FOUND:
                    raise UndecodableRecord(f"schema id {schema_id} is unknown to the registry") from error
                raise
            name = fullname_of(json.loads(schema.schema_str or "{}"))
            self._writer_names[schema_id] = name
        return name


class HeaderCodec:
    """A record carried in a message header (a routing slip), in Confluent wire format.

    Its subject is the record's full name (RecordNameStrategy): a header belongs to no one topic.
    """

    def __init__(self, client: SchemaRegistryClient, header: HeaderSpec) -> None:
        self.header = header
        schema = record(header.record).to_json()
        self._model = RECORD_TYPES[header.record]
        self._serializer = AvroSerializer(
            client,
            schema,
            to_dict=lambda model, _ctx: model.model_dump(),
            conf={"auto.register.schemas": False, "subject.name.strategy": record_subject_name_strategy},
        )
        self._deserializer = AvroDeserializer(client, schema)

    def encode(self, value: AvroRecord) -> bytes:
        encoded = self._serializer(value, SerializationContext(self.header.name, MessageField.VALUE))
        assert encoded is not None
        if len(encoded) > self.header.max_bytes:
            raise ValueError(f"header {self.header.name} would be {len(encoded)} bytes, over {self.header.max_bytes}")
        return encoded

    def decode(self, data: bytes | None) -> AvroRecord:
        if data is None:
            raise UndecodableRecord(f"header {self.header.name} is missing")
        if len(data) > self.header.max_bytes:
            raise UndecodableRecord(
                f"header {self.header.name} is {len(data)} bytes, over the bound of {self.header.max_bytes}"
            )
        if len(data) < 5 or data[0] != MAGIC_BYTE:
            raise UndecodableRecord(f"header {self.header.name} is not Confluent-framed Avro")
        try:
            fields = self._deserializer(data, SerializationContext(self.header.name, MessageField.VALUE))
            return self._model.model_validate(fields)
        except SchemaRegistryError as error:
            if error.http_status_code == NOT_FOUND:
                raise UndecodableRecord(f"header {self.header.name}: schema id unknown to the registry") from error
            raise
        except (ValueError, TypeError, EOFError, IndexError) as error:
            raise UndecodableRecord(
                f"header {self.header.name} could not be read: {type(error).__name__}: {error}"
            ) from error
