"""The contract of a topic, as its readers hold every message to it (`topology/topics.py` declares it).

A message on a topic must carry a record type declared for that topic, say the same type in its CloudEvents
header as in its schema, be keyed by the record's identity (the field the topic is keyed by), and hold values
inside their declared domains (`schemas/domains.py`). Anything else is a breach: its reader dead-letters it
with the reason, rather than act on it (a `PaymentProcessed` on the commands topic must not charge an order)
or let it vanish (a lying `ce_type` must not get a record passed over unread).
"""

from __future__ import annotations

from collections.abc import Sequence

from processors.runtime.cloudevents import header, type_of
from schemas.domains import violations
from schemas.models import AvroRecord
from topology.topics import TopicSpec

SHOWN_KEY_BYTES = 200


class BreachOfContract(ValueError):
    """The message is not what its topic carries; the message says how."""


class TopicContract:
    def __init__(self, topic: TopicSpec) -> None:
        self.topic = topic
        self._types = {name: type_of(name) for name in topic.records}

    def check_type(self, writer: str, headers: Sequence[tuple[str, bytes]]) -> None:
        """The writer's record type (from its schema id) is declared here, and the `ce_type` header, if any,
        names the same type: a header costs nothing to forge, a schema id must be registered for the topic."""
        declared = self._types.get(writer)
        if declared is None:
            raise BreachOfContract(f"{writer} is not a record type of {self.topic.name}")
        said = header(headers, "ce_type")
        if said is not None and said != declared:
            raise BreachOfContract(f"the ce_type header says {said}, the schema says {writer} ({declared})")

    def check_record(self, key: bytes | None, value: AvroRecord) -> None:
        """The record is keyed by its identity and its values are inside their domains."""
        identity = str(getattr(value, self.topic.key))
        if key is None or key != identity.encode():
            shown = "no key" if key is None else f"key {key[:SHOWN_KEY_BYTES].decode(errors='replace')!r}"
            raise BreachOfContract(
                f"{shown}, where {self.topic.name} is keyed by the {value.AVRO_NAME}'s {self.topic.key} {identity!r}"
            )
        problems = violations(value)
        if problems:
            raise BreachOfContract(f"{value.AVRO_NAME} out of its domain: {'; '.join(problems)}")
