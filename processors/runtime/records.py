"""What a decision emits, and the bytes that go to Kafka for it."""

from __future__ import annotations

import datetime
import hashlib
import uuid
from dataclasses import dataclass, field

from processors.runtime.tracing import Resumable
from schemas.models import AvroRecord
from topology.topics import TopicSpec

Headers = tuple[tuple[str, bytes], ...]

# Namespace for event ids derived from the event that caused them, so that a re-run emits the same ids.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d3c1e-8a57-4d52-9a0c-5b1f0c0e7a11")


@dataclass(frozen=True)
class Emit:
    """A record a decision wants published on a topic, under a key (the order id, or a SKU)."""

    topic: TopicSpec
    key: str
    record: AvroRecord | None
    """None: a tombstone, which deletes the key's record from a compacted topic (a saga's timer cancelled)."""
    headers: Headers = ()
    """Headers besides the CloudEvents ones, e.g. a routing slip."""


@dataclass(frozen=True)
class Outgoing:
    """A message ready for a topic: what the pipeline's last step produces."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None = None
    """When the record's fact happened; None keeps the input's timestamp (dead letters)."""
    record: AvroRecord | None = field(default=None, compare=False, repr=False)
    """What `value` encodes, for a reader in the same process (docs/adr/0002-co-location.md)."""


@dataclass(frozen=True)
class Unencoded(Outgoing):
    """A record a stage hands back without encoding it, for the engine of processors run together to encode
    only if it publishes it: of a view (`TopicSpec.view`), only the last record of each key that one message
    leads to is published. Never published as it is."""

    emit: Emit | None = field(default=None, compare=False, repr=False)
    span: Resumable | None = field(default=None, compare=False, repr=False)
    """The span it was handed back in, which its send span is a child of when it is encoded."""


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes


def derive_event_id(cause: uuid.UUID | str, purpose: str) -> uuid.UUID:
    """The id of the event that `cause` leads to for `purpose`; the same on every re-run.

    `uuid.uuid5(EVENT_ID_NAMESPACE, f"{cause}/{purpose}")`, computed without re-reading the namespace's bytes
    on every call: every emitted event needs one."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + f"{cause}/{purpose}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


def utc_now() -> datetime.datetime:
    """Now, at the millisecond precision of Avro's timestamp-millis."""
    now = datetime.datetime.now(datetime.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
