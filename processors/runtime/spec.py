"""A processor declared once, and its wiring derived from the declaration.

A `ProcessorSpec` names the processor, the topics it reads (as streams: topics merged into one per-key
stream share one state) and writes, and the handler of each stream. `wire` turns it into a Quix Streams
pipeline: topic objects, merges, the decoding stage, and publishing to the declared outputs and to the
dead-letter topic of every input. `oms run`, the metrics ports, the docs' table of processors and the
in-process runner all read the same declarations (`processors/services.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import Application
from quixstreams.dataframe import StreamingDataFrame

from processors.runtime.app import app_topic
from processors.runtime.stage import AnswerUnreadable, Handler, RecordStage, Skip, publish
from schemas.models import AvroRecord
from topology.settings import Settings
from topology.topics import TopicSpec

HandlerFactory = Callable[[Settings, SchemaRegistryClient], Handler]
"""Builds a stream's handler once per process, with the adapters and codecs it needs."""


@dataclass(frozen=True)
class Stream:
    """Topics read as one per-key stream, and what handles their records.

    Several topics are merged in timestamp order, so that one state per key sees them all (they must share
    their key and partition count). `handles` lists the record types the handler acts on: anything else
    its topics declare is passed over undecoded; `skip` passes over more by the message's headers;
    `answer_unreadable` answers a message that cannot be read, beside its dead letter."""

    topics: tuple[TopicSpec, ...]
    handler: HandlerFactory
    handles: tuple[type[AvroRecord], ...] | None = None
    skip: Skip | None = None
    answer_unreadable: AnswerUnreadable | None = None


@dataclass(frozen=True)
class ProcessorSpec:
    name: str
    """What `oms run` calls it, e.g. `intake`."""
    group: str
    """Its consumer group, and the `ce_source` of what it emits, e.g. `oms.intake`."""
    streams: tuple[Stream, ...]
    outputs: tuple[TopicSpec, ...]
    state: str
    """What it keeps per key, in words, for the docs."""

    @property
    def inputs(self) -> tuple[TopicSpec, ...]:
        """Every topic it reads, once, in the order the streams name them."""
        by_name = {topic.name: topic for stream in self.streams for topic in stream.topics}
        return tuple(by_name.values())

    @property
    def dead_letter_topics(self) -> tuple[TopicSpec, ...]:
        return tuple(topic.dead_letter_topic for topic in self.inputs)


def wire(app: Application, spec: ProcessorSpec, settings: Settings, registry: SchemaRegistryClient) -> None:
    """Build `spec`'s pipelines on `app`: each stream merged, decoded, handled, and published."""
    outputs = [app_topic(app, topic, settings) for topic in (*spec.outputs, *spec.dead_letter_topics)]
    uses = Counter(topic.name for stream in spec.streams for topic in stream.topics)
    frames = {topic.name: app.dataframe(app_topic(app, topic, settings)) for topic in spec.inputs}
    for stream in spec.streams:
        # A topic several streams read (the fulfillment control topic) is read once, as a branch per stream.
        sources = [
            frames[topic.name].filter(_always) if uses[topic.name] > 1 else frames[topic.name]
            for topic in stream.topics
        ]
        merged: StreamingDataFrame = reduce(StreamingDataFrame.concat, sources)
        stage = stage_of(spec, stream, settings, registry)
        publish(merged.apply(stage, stateful=True, expand=True, metadata=True), outputs)


def stage_of(
    spec: ProcessorSpec,
    stream: Stream,
    settings: Settings,
    registry: SchemaRegistryClient,
    encode_later: frozenset[str] = frozenset(),
    group: str | None = None,
) -> RecordStage:
    """The stage a stream's messages go through, on Kafka or in the in-process runner; `encode_later`, the
    topics whose records it hands back unencoded (`RecordStage`), and `group`, the consumer group that reads
    them, in an engine of processors run together."""
    return RecordStage(
        spec.group,
        stream.topics,
        registry,
        stream.handler(settings, registry),
        settings,
        handles=stream.handles,
        skip=stream.skip,
        outputs=spec.outputs,
        encode_later=encode_later,
        answer_unreadable=stream.answer_unreadable,
        group=group,
    )


def shared(factory: HandlerFactory) -> HandlerFactory:
    """One handler for several streams of a processor, so that they share its adapters: made once per
    settings and registry (a process has one of each; tests and the in-process runner make their own)."""
    made: list[tuple[Settings, SchemaRegistryClient, Handler]] = []

    def handler(settings: Settings, registry: SchemaRegistryClient) -> Handler:
        for known_settings, known_registry, known in made:
            if known_settings is settings and known_registry is registry:
                return known
        made.append((settings, registry, factory(settings, registry)))
        return made[-1][2]

    return handler


def _always(value: object) -> bool:
    return True


def read_by(specs: Sequence[ProcessorSpec], topic: TopicSpec) -> list[tuple[ProcessorSpec, Stream]]:
    """The streams that read `topic`, with their processors."""
    return [
        (spec, stream)
        for spec in specs
        for stream in spec.streams
        if any(read.name == topic.name for read in stream.topics)
    ]
