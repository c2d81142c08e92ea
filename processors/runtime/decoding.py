"""Building blocks for processors with several steps: decode first, dead-letter anything a step rejects.

A step's results are a mix of values for the next step and `Outgoing` messages (dead letters, records to
publish); `split` routes the `Outgoing` ones to their topics and lets the rest flow on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import State
from quixstreams.context import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Topic

from processors.runtime.deadletters import Received, dead_letter
from processors.runtime.records import Outgoing
from processors.runtime.stage import is_outage, publish
from schemas.models import AvroRecord
from schemas.serde import RecordCodec

logger = logging.getLogger(__name__)

Value = TypeVar("Value")


@dataclass(frozen=True)
class Decoded:
    """A record and the message it came in."""

    record: AvroRecord
    received: Received


class Decode:
    """First step of a pipeline: bytes to a record of the topic's contract, or a dead letter."""

    def __init__(self, processor: str, registry: SchemaRegistryClient) -> None:
        self._processor = processor
        self._registry = registry
        self._codecs: dict[str, RecordCodec] = {}

    def __call__(self, value: bytes | None, key: bytes | None, timestamp: int, headers: Any) -> Decoded | Outgoing:
        context = message_context()
        received = Received(
            context.topic, context.partition, context.offset, timestamp, key, value, tuple(headers or ())
        )
        codec = self._codecs.get(received.topic)
        if codec is None:
            codec = self._codecs[received.topic] = RecordCodec(self._registry, received.topic)
        try:
            if value is None:
                raise ValueError("a tombstone (null value) carries no record")
            return Decoded(codec.decode(value), received)
        except Exception as error:
            if is_outage(error):
                raise
            return _dead_letter(received, error, self._processor)


def guarded(
    processor: str, step: Callable[[Decoded, State], Iterable[Value]]
) -> Callable[[Decoded | Outgoing, State], list[Value | Outgoing]]:
    """A stateful step over decoded records whose failure dead-letters the record instead of stopping.

    Steps must write state only once they cannot fail any more, so that a dead letter leaves none behind.
    """

    def run(item: Decoded | Outgoing, state: State) -> list[Value | Outgoing]:
        if isinstance(item, Outgoing):
            return [item]
        try:
            return list(step(item, state))
        except Exception as error:
            if is_outage(error):
                raise
            return [_dead_letter(item.received, error, processor)]

    return run


def split(sdf: StreamingDataFrame, topics: Iterable[Topic]) -> StreamingDataFrame:
    """Publish the `Outgoing` values of `sdf` to their topics; return the branch of everything else."""
    publish(sdf.filter(lambda value: isinstance(value, Outgoing)), topics)
    return sdf.filter(lambda value: not isinstance(value, Outgoing))


def _dead_letter(received: Received, error: BaseException, processor: str) -> Outgoing:
    logger.warning(
        "dead-lettering %s[%d]@%d: %s: %s",
        received.topic,
        received.partition,
        received.offset,
        type(error).__name__,
        error,
    )
    return dead_letter(received, error, processor)
