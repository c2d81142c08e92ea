"""Which processors run together, and which topics they hand each other in memory: derived from the declarations.

Like Flink's operator chaining and a Kafka Streams sub-topology, the decision follows from the graph the
`ProcessorSpec`s declare, never from a list written by hand (docs/adr/0002-co-location.md):

- a processor joins the chain when every topic it reads is partitioned like the chain's (keyed by the order id,
  with the order topics' partition count), so that all it reads about an order meets in one partition and one
  state;
- a topic is chained, its records handed over in memory, when a member writes it, no processor outside the chain
  writes it, it is partitioned like the chain and its declaration allows it (`TopicSpec.chainable`);
- every other topic a member reads is an input of the chain, read from Kafka.

Every record a member emits is still published to its topic, chained or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka.schema_registry import SchemaRegistryClient

from processors.runtime.spec import ProcessorSpec, Stream, stage_of
from processors.runtime.stage import RecordStage
from topology.settings import Settings
from topology.topics import ORDER_PARTITIONS, ORDERS_COMMANDS, TopicSpec


@dataclass(frozen=True)
class Reader:
    """One stream of one member: what reads a topic inside the chain."""

    spec: ProcessorSpec
    stream: Stream
    views: frozenset[str] = frozenset()
    """The chain's views (`Chain.views`): its stage hands their records back unencoded."""

    @property
    def name(self) -> str:
        """Names its part of an order's state in the chain's one store: the processor and its stream's first
        topic (a processor's streams each have their own state when it runs alone)."""
        return f"{self.spec.name}/{self.stream.topics[0].name}"

    def stage(self, settings: Settings, registry: SchemaRegistryClient, group: str | None = None) -> RecordStage:
        """The stage its messages go through, as when its processor runs alone; `group`, the engine's consumer
        group, which its spans name."""
        return stage_of(self.spec, self.stream, settings, registry, encode_later=self.views, group=group)


@dataclass(frozen=True)
class Chain:
    members: tuple[ProcessorSpec, ...]
    inputs: tuple[TopicSpec, ...]
    """What the chain reads from Kafka: what comes from outside it, and the topics that must be crossed."""
    chained: frozenset[str]
    """Topics whose records members hand each other in memory."""
    readers: dict[str, tuple[Reader, ...]]
    """By topic name: the members' streams that read it."""
    views: frozenset[str] = frozenset()
    """Views (`TopicSpec.view`) members write and none reads: of each key, the engine publishes only the last
    record that one message leads to, and encodes no other."""

    @property
    def outputs(self) -> tuple[TopicSpec, ...]:
        """Everything the chain publishes: its members' outputs, and the dead letters of every topic it reads,
        from Kafka or in memory."""
        by_name = {topic.name: topic for spec in self.members for topic in spec.outputs}
        for spec in self.members:
            for topic in spec.dead_letter_topics:
                by_name[topic.name] = topic
        return tuple(by_name.values())


def partitioned_like_orders(topic: TopicSpec) -> bool:
    return topic.key == ORDERS_COMMANDS.key and topic.partitions == ORDER_PARTITIONS


def chain_of(specs: Sequence[ProcessorSpec]) -> Chain:
    """The chain of `specs`' processors that share the order key."""
    members = tuple(spec for spec in specs if all(partitioned_like_orders(topic) for topic in spec.inputs))
    written_inside = {topic.name for spec in members for topic in spec.outputs}
    written_outside = {topic.name for spec in specs if spec not in members for topic in spec.outputs}
    read = {topic.name: topic for spec in members for topic in spec.inputs}
    chained = frozenset(
        name
        for name, topic in read.items()
        if name in written_inside and name not in written_outside and topic.chainable and partitioned_like_orders(topic)
    )
    views = frozenset(topic.name for spec in members for topic in spec.outputs if topic.view and topic.name not in read)
    readers = {
        name: tuple(
            Reader(spec, stream, views)
            for spec in members
            for stream in spec.streams
            if any(topic.name == name for topic in stream.topics)
        )
        for name in read
    }
    inputs = tuple(topic for name, topic in read.items() if name not in chained)
    return Chain(members, inputs, chained, readers, views)
