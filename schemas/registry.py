"""Register the local schemas with the schema registry and check changes against what it holds.

Subjects follow `TopicRecordNameStrategy`: `<topic>-<record full name>`, so several event types share a
topic and each evolves on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas.catalog import RecordSchema, record
from topology.settings import Settings
from topology.topics import HEADERS, OPERATIONS_TOPICS, WORKFLOW_TOPICS, HeaderSpec, TopicSpec

COMPATIBILITY_LEVEL = "BACKWARD_TRANSITIVE"
SUBJECT_NOT_FOUND = 40401


def subject_name(topic: str, record_fullname: str) -> str:
    return f"{topic}-{record_fullname}"


@dataclass(frozen=True)
class Subject:
    name: str
    topic: TopicSpec | None  # None for a record carried in a header
    schema: RecordSchema

    def to_registry_schema(self) -> Schema:
        return Schema(self.schema.to_json(), "AVRO")


@dataclass(frozen=True)
class CompatibilityResult:
    subject: str
    compatible: bool
    registered_versions: int
    reasons: tuple[str, ...] = ()


def declared_subjects(
    topics: Iterable[TopicSpec] = (*WORKFLOW_TOPICS, *OPERATIONS_TOPICS), headers: Iterable[HeaderSpec] = HEADERS
) -> Iterator[Subject]:
    """One subject per record type a declared topic carries, and one per record carried in a header."""
    for topic in topics:
        for fullname in topic.records:
            yield Subject(subject_name(topic.name, fullname), topic, record(fullname))
    for header in headers:
        yield Subject(header.subject, None, record(header.record))


def registry_client(settings: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient(settings.schema_registry_config())


def ensure_compatibility_level(client: SchemaRegistryClient, level: str = COMPATIBILITY_LEVEL) -> None:
    if client.get_compatibility() != level:
        client.set_compatibility(level=level)


def register(client: SchemaRegistryClient, subjects: Iterable[Subject]) -> dict[str, int]:
    """Register each subject's local schema (a no-op when unchanged); returns schema ids by subject."""
    return {subject.name: client.register_schema(subject.name, subject.to_registry_schema()) for subject in subjects}


def check(client: SchemaRegistryClient, subject: Subject) -> CompatibilityResult:
    """Can the local schema replace every registered version of its subject?

    The registry's verdict decides; the local Avro checker explains it field by field, since the
    Confluent API answers only yes or no.
    """
    try:
        versions = client.get_versions(subject.name)
    except SchemaRegistryError as error:
        if error.error_code == SUBJECT_NOT_FOUND:
            return CompatibilityResult(subject.name, True, 0)
        raise
    compatible = client.test_compatibility_all_versions(subject.name, subject.to_registry_schema())
    reasons: list[str] = []
    if not compatible:
        for version in versions:
            registered = client.get_version(subject.name, version).schema.schema_str or "null"
            reasons += [f"against version {version}: {reason}" for reason in explain(subject.schema, registered)]
        reasons = reasons or ["the registry rejects it (no field-level detail available)"]
    return CompatibilityResult(subject.name, compatible, len(versions), tuple(reasons))


def explain(new: RecordSchema, registered_json: str) -> list[str]:
    """Why data written with the registered schema cannot be read with the new one (BACKWARD), per field."""
    reader = avro.schema.parse(new.to_json())
    writer = avro.schema.parse(registered_json)
    if not isinstance(reader, avro.schema.RecordSchema) or not isinstance(writer, avro.schema.RecordSchema):
        return _incompatibilities(reader, writer)
    reasons = []
    for field in reader.fields:
        old = writer.fields_dict.get(field.name)
        if old is None:
            if not field.has_default:
                reasons.append(f"field '{field.name}': added without a default, so old records cannot be read")
            continue
        reasons += [f"field '{field.name}': {reason}" for reason in _incompatibilities(field.type, old.type)]
    if not reasons and reader.fullname != writer.fullname:
        reasons.append(f"record renamed from {writer.fullname} to {reader.fullname}")
    return reasons


def _incompatibilities(reader: avro.schema.Schema, writer: avro.schema.Schema) -> list[str]:
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return sorted(result.messages)
