"""Register the local schemas with the schema registry and check changes against what it holds.

Subjects follow `TopicRecordNameStrategy`: `<topic>-<record full name>`, so several event types share a
topic and each evolves on its own.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import httpx
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas.catalog import RecordSchema, record
from schemas.evolution import breaking_changes, versions_checked
from topology.settings import Settings
from topology.topics import HEADERS, OPERATIONS_TOPICS, WORKFLOW_TOPICS, HeaderSpec, TopicSpec

# Producers and consumers upgrade independently, in any order, and a consumer may replay a topic from its
# start: a new reader meets records of every older version (BACKWARD), and a reader not yet upgraded meets
# records of every newer one (FORWARD). So every subject, topic record or header, is FULL_TRANSITIVE.
COMPATIBILITY_LEVEL = "FULL_TRANSITIVE"
SUBJECT_NOT_FOUND = 40401
NOT_FOUND = 404
# Registering is an operator's step, run while a registry may still be starting or busy: a request the registry
# does not answer in time is asked again (registering the same schema twice gives the same id), for up to
# about a minute, before the step fails.
REGISTER_PAUSES_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)

logger = logging.getLogger(__name__)
Answer = TypeVar("Answer")


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
    """The registry-wide default, for subjects that set none (a registry this project runs itself)."""
    if client.get_compatibility() != level:
        client.set_compatibility(level=level)


def subject_level(client: SchemaRegistryClient, subject: str) -> str | None:
    """The level set on `subject` itself, or None when the registry answers 404 for it (Confluent, for a subject
    without a level of its own; Apicurio answers `NONE` then, and 404 only for an unknown subject)."""
    try:
        return client.get_compatibility(subject)
    except SchemaRegistryError as error:
        if error.http_status_code == NOT_FOUND:
            return None
        raise


def register(
    client: SchemaRegistryClient,
    subjects: Iterable[Subject],
    level: str = COMPATIBILITY_LEVEL,
    pauses: tuple[float, ...] = REGISTER_PAUSES_S,
) -> dict[str, int]:
    """Set each subject's compatibility level, then register its local schema (a no-op when unchanged);
    returns schema ids by subject. The level goes first, so the registry checks the new version under it. Each
    subject is registered `patiently`, after `pauses`."""
    return {
        subject.name: patiently(functools.partial(_register, client, subject, level), pauses) for subject in subjects
    }


def _register(client: SchemaRegistryClient, subject: Subject, level: str) -> int:
    if subject_level(client, subject.name) != level:
        client.set_compatibility(subject_name=subject.name, level=level)
    return client.register_schema(subject.name, subject.to_registry_schema())


def patiently(
    ask: Callable[[], Answer], pauses: Iterable[float] = REGISTER_PAUSES_S, sleep: Callable[[float], None] = time.sleep
) -> Answer:
    """`ask()`, asked again after each pause while the registry cannot be reached or does not answer in time;
    the last failure propagates. An answer, even a refusal, is final."""
    for pause in pauses:
        try:
            return ask()
        except httpx.TransportError as error:
            logger.warning("the schema registry did not answer (%r); asking again in %.0f s", error, pause)
            sleep(pause)
    return ask()


def check(client: SchemaRegistryClient, subject: Subject, level: str = COMPATIBILITY_LEVEL) -> CompatibilityResult:
    """Can the local schema follow every registered version of its subject under `level`? Only reads.

    Decided here, by Avro's rules against each version, whatever level the registry holds for the subject, so
    that the answer names the field; the registry's own verdict is asked too, and a refusal it gives alone is
    reported as such.
    """
    try:
        versions = client.get_versions(subject.name)
    except SchemaRegistryError as error:
        if error.error_code == SUBJECT_NOT_FOUND:
            return CompatibilityResult(subject.name, True, 0)
        raise
    registered = {
        version: client.get_version(subject.name, version).schema.schema_str or "null"
        for version in versions_checked(level, versions)
    }
    reasons = breaking_changes(subject.schema.to_json(), registered, level)
    if not reasons and not client.test_compatibility_all_versions(subject.name, subject.to_registry_schema()):
        reasons = ["the registry refuses it under the level it holds for this subject (it names no field)"]
    return CompatibilityResult(subject.name, not reasons, len(versions), tuple(reasons))
