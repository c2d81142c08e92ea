"""The processors of a chain run as one engine: one consumer group, one transaction, one state per order.

The engine reads the chain's inputs from Kafka (`Chain.inputs`: what comes from outside it, and the topics
that must be crossed) merged into one per-order stream. A message goes through the stage of every member
stream that reads its topic, each with its own part of the order's one state; what a stage emits to a chained
topic is handed, in the order emitted, to the member streams that read that topic, as the record object
it was encoded from. The order's state is read once per message and written back once (`SharedState`).
Everything emitted is published to its topic, in the same transaction as the offsets
of what the engine read, as each processor would publish it alone; of a view (`TopicSpec.view`: each record
restates its key), only the last record of each key that one message leads to. See docs/adr/0002-co-location.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import reduce
from typing import Any, NamedTuple, Protocol

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import Application, State
from quixstreams.dataframe import StreamingDataFrame

from processors.runtime.app import app_topic
from processors.runtime.chain import Chain, Reader
from processors.runtime.deadletters import Received, dead_letter
from processors.runtime.records import Outgoing, Unencoded
from processors.runtime.scoped import SharedState
from processors.runtime.stage import publish, received_now
from topology.settings import Settings

# A member that emits to a topic it reads itself hands the record back to itself; a chain of handovers
# this long from one message is a loop, not a workflow.
MAX_HANDOVERS = 10_000

CHAIN_PROCESSOR = "oms.orders"
"""The engine's consumer group: the processors of the order-keyed chain, run together."""


class MemberStage(Protocol):
    """What the chain asks of a member stream's stage (a `RecordStage`)."""

    processor: str

    def receive(self, received: Received, state: State) -> list[Outgoing]: ...

    def encode_later(self, pending: Unencoded, cause: Received) -> Outgoing: ...


class ChainStage:
    """What one message read from Kafka leads to, through every member of the chain it reaches."""

    def __init__(self, chain: Chain, stages: Callable[[Reader], MemberStage], settings: Settings) -> None:
        self._readers = {
            topic: tuple((reader.name, stages(reader)) for reader in readers)
            for topic, readers in chain.readers.items()
        }
        self._chained = chain.chained
        self._max_message_bytes = settings.max_message_bytes

    def __call__(
        self, value: bytes | None, key: bytes | None, timestamp: int, headers: Any, state: State
    ) -> list[Outgoing]:
        return self.process(received_now(value, key, timestamp, headers), state)

    def process(self, received: Received, state: State) -> list[Outgoing]:
        """Everything `received` leads to inside the chain, in the order emitted: to be published."""
        published: list[Outgoing] = []
        views: dict[tuple[str, bytes | None], _View] = {}
        order = SharedState(state)
        waiting = deque([received])
        for _ in range(MAX_HANDOVERS):
            if not waiting:
                order.save()
                return _with_views(published, views)
            message = waiting.popleft()
            for scope, stage in self._readers.get(message.topic, ()):
                for outgoing in stage.receive(message, order.scope(scope)):
                    if isinstance(outgoing, Unencoded):
                        views[(outgoing.topic, outgoing.key)] = _View(len(published), stage, message)
                    published.append(outgoing)
                    if outgoing.topic in self._chained:
                        handed = self._handed_over(outgoing, message, stage.processor)
                        if isinstance(handed, Received):
                            waiting.append(handed)
                        else:
                            published.append(handed)
        raise RuntimeError(f"{received.topic}[{received.partition}]@{received.offset} led to a loop of handovers")

    def _handed_over(self, outgoing: Outgoing, cause: Received, processor: str) -> Received | Outgoing:
        """The message a chained record makes for its readers here; a dead letter of it instead when it is keyed
        by another order than its cause: its readers keep their state in the cause's partition."""
        handed = Received(
            outgoing.topic,
            cause.partition,
            -1,  # not read from Kafka: a dead letter of it points to its topic by `ce_id`, not by offset
            outgoing.timestamp_ms if outgoing.timestamp_ms is not None else cause.timestamp,
            outgoing.key,
            outgoing.value,
            outgoing.headers,
            outgoing.record,
        )
        if outgoing.key == cause.key:
            return handed
        error = ValueError(f"{processor} emitted it under key {outgoing.key!r} while handling key {cause.key!r}")
        return dead_letter(handed, error, processor, self._max_message_bytes)


class _View(NamedTuple):
    """The last unencoded record of a view's key: where it stands among what is published, the stage that
    encodes it, and the message that led to it."""

    position: int
    stage: MemberStage
    cause: Received


def _with_views(published: list[Outgoing], views: dict[tuple[str, bytes | None], _View]) -> list[Outgoing]:
    """`published` with only the last record of each view's key, encoded, where it stood: each restates the
    whole of its key, so a message that moves an order through ten steps encodes and publishes its view once."""
    if not views:
        return published
    last = {view.position: view for view in views.values()}
    return [
        last[index].stage.encode_later(outgoing, last[index].cause) if isinstance(outgoing, Unencoded) else outgoing
        for index, outgoing in enumerate(published)
        if not isinstance(outgoing, Unencoded) or index in last
    ]


def wire_chain(app: Application, chain: Chain, settings: Settings, registry: SchemaRegistryClient) -> None:
    """Build the engine's pipeline on `app`: the chain's inputs merged, the chain stage, publishing."""
    outputs = [app_topic(app, topic, settings) for topic in chain.outputs]
    sources = [app.dataframe(app_topic(app, topic, settings)) for topic in chain.inputs]
    merged: StreamingDataFrame = reduce(StreamingDataFrame.concat, sources)
    stage = ChainStage(chain, lambda reader: reader.stage(settings, registry, CHAIN_PROCESSOR), settings)
    publish(merged.apply(stage, stateful=True, expand=True, metadata=True), outputs)
