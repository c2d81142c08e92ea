"""The declared processors run in one process, in memory: flows end to end in milliseconds, no broker.

Every message goes where the declarations say: to each stream that reads its topic, through the same stage
as on Kafka (pass over what the stream does not handle, decode, handle with the key's state, encode, dead-
letter what fails), against an in-memory schema registry holding every declared subject, so that what runs
here is what goes on the wire. Each stream keeps a `MemoryState` per key. Messages are handled one at a
time in the order they were produced; when `run` has delivered them, it commits: what the adapters deferred
is flushed, as before a commit on Kafka. The timers service is not a stream processor: timers a saga
schedules are produced, never fired.

This is for the unit tests of whole flows (`tests/unit/test_flows.py`), and for measuring what the
processors' own code costs per message without Kafka (`oms bench --in-process`: each processor's CPU time in
its stages is counted); exactly-once, crashes and rebalances are the broker tests' business.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import State

from processors.runtime.chain import Reader as ChainReader
from processors.runtime.chain import chain_of
from processors.runtime.colocated import CHAIN_PROCESSOR, ChainStage
from processors.runtime.deadletters import Received
from processors.runtime.deferred import flush_deferred
from processors.runtime.encoder import Encoder
from processors.runtime.memory import MemoryState
from processors.runtime.records import Emit, Outgoing, Unencoded
from processors.runtime.spec import ProcessorSpec, stage_of
from processors.runtime.stage import RecordStage
from schemas.models import AvroRecord
from schemas.registry import declared_subjects
from schemas.serde import RecordCodec, UndecodableRecord
from topology.settings import Settings
from topology.topics import TopicSpec

DEFERRED_WRITES = "deferred writes"
"""What `InProcessRunner.cpu_s` charges the flushes of the adapters' deferred effects to."""


def memory_registry() -> SchemaRegistryClient:
    """A schema registry in memory, with every declared subject registered."""
    registry = SchemaRegistryClient.new_client({"url": "mock://oms"})
    for subject in declared_subjects():
        registry.register_schema(subject.name, subject.to_registry_schema())
    return registry


@dataclass
class _Reader:
    """One stream of one processor, or a chain of processors run together: what it does with a message, and
    a state per key."""

    processor: str
    process: Callable[[Received, State], list[Outgoing]]
    topics: frozenset[str]
    states: dict[bytes | None, MemoryState] = field(default_factory=lambda: defaultdict(MemoryState))


def _stage_reader(processor: str, stage: RecordStage, topics: Iterable[TopicSpec]) -> _Reader:
    return _Reader(processor, lambda received, state: stage.process(received, state)[0], _names(topics))


def _names(topics: Iterable[TopicSpec]) -> frozenset[str]:
    return frozenset(topic.name for topic in topics)


@dataclass(frozen=True)
class Delivered:
    """A message as it was produced, and its record (None for a tombstone, a dead letter, or a message that
    cannot be read: a test may produce one on purpose)."""

    outgoing: Outgoing
    record: AvroRecord | None


class _Charged:
    """A chain member's stage, its CPU time and messages counted under its processor's name."""

    def __init__(self, stage: RecordStage, runner: InProcessRunner, reader: ChainReader) -> None:
        self._stage, self._runner, self._name = stage, runner, reader.spec.name
        self.processor = stage.processor

    def receive(self, received: Received, state: State) -> list[Outgoing]:
        started = time.thread_time()
        try:
            return self._stage.receive(received, state)
        finally:
            self._runner.cpu_s[self._name] += time.thread_time() - started
            self._runner.handled[self._name] += 1

    def encode_later(self, pending: Unencoded, cause: Received) -> Outgoing:
        started = time.thread_time()
        try:
            return self._stage.encode_later(pending, cause)
        finally:
            self._runner.cpu_s[self._name] += time.thread_time() - started


class InProcessRunner:
    """`colocated`: the processors of `specs`' chain run as one engine (`processors/runtime/colocated.py`),
    the others alone, as `oms run all` runs them by default; otherwise every processor alone."""

    def __init__(
        self,
        specs: Sequence[ProcessorSpec],
        settings: Settings,
        source: str = "oms.test",
        *,
        colocated: bool = False,
    ) -> None:
        self._registry = memory_registry()
        chain = chain_of(specs) if colocated else None
        alone = [spec for spec in specs if chain is None or spec not in chain.members]
        self._readers = [
            _stage_reader(spec.name, stage_of(spec, stream, settings, self._registry), stream.topics)
            for spec in alone
            for stream in spec.streams
        ]
        if chain is not None:
            stage = ChainStage(
                chain,
                lambda reader: _Charged(reader.stage(settings, self._registry, CHAIN_PROCESSOR), self, reader),
                settings,
            )
            self._readers.append(_Reader(CHAIN_PROCESSOR, stage.process, _names(chain.inputs)))
        self._encode = Encoder(self._registry, source)
        self._codecs: dict[str, RecordCodec] = {}
        self._queue: deque[Outgoing] = deque()
        self._held_topics: set[str] = set()
        self._held: list[Outgoing] = []
        self.log: list[Delivered] = []
        """Every message produced, in order."""
        self.cpu_s: defaultdict[str, float] = defaultdict(float)
        """Per processor (its spec's name): CPU seconds spent in its stages; a chain (`oms.orders`), in what it
        does besides its members' stages; `DEFERRED_WRITES`, in writing out what the adapters deferred."""
        self.handled: Counter[str] = Counter()
        """Per processor: messages its stages were given."""

    def send(self, *emits: Emit) -> None:
        """Produce records from outside the processors (a user, an operator)."""
        self._queue.extend(self._encode(emit) for emit in emits)

    def send_raw(self, *messages: Outgoing) -> None:
        """Produce messages as they are, bytes and headers: what a producer outside the contract may send."""
        self._queue.extend(messages)

    def hold(self, topic: str) -> None:
        """Deliver nothing produced to `topic` until `release`: a reader of it that is behind."""
        self._held_topics.add(topic)

    def release(self, topic: str) -> None:
        """Deliver what `topic` held, in the order produced, before anything produced after it."""
        self._held_topics.discard(topic)
        released = [outgoing for outgoing in self._held if outgoing.topic == topic]
        self._held = [outgoing for outgoing in self._held if outgoing.topic != topic]
        self._queue.extendleft(reversed(released))

    def run(
        self, until: Callable[[Delivered], bool] | None = None, limit: int = 100_000, *, commit: bool = True
    ) -> None:
        """Deliver messages until none is left, or until one for which `until` is true has been handled; then,
        unless told not to `commit`, `commit`."""
        try:
            self._deliver_until(until, limit)
        finally:
            if commit:
                self.commit()

    def commit(self) -> None:
        """What happens before a commit on Kafka: the adapters write out what they deferred."""
        started = time.thread_time()
        flush_deferred()
        self.cpu_s[DEFERRED_WRITES] += time.thread_time() - started

    def _deliver_until(self, until: Callable[[Delivered], bool] | None, limit: int) -> None:
        for _ in range(limit):
            if not self._queue:
                return
            outgoing = self._queue.popleft()
            if outgoing.topic in self._held_topics:
                self._held.append(outgoing)
                continue
            delivered = self._deliver(outgoing)
            if until is not None and until(delivered):
                return
        raise RuntimeError(f"still delivering after {limit} messages: a loop?")

    def records(self, kind: type[AvroRecord] | None = None, order_id: str | None = None) -> list[Any]:
        """The records produced so far, of `kind` and about `order_id` when given, in order."""
        return [
            delivered.record
            for delivered in self.log
            if delivered.record is not None
            and (kind is None or isinstance(delivered.record, kind))
            and (order_id is None or getattr(delivered.record, "order_id", None) == order_id)
        ]

    def dead_letters(self) -> list[Outgoing]:
        return [delivered.outgoing for delivered in self.log if delivered.outgoing.topic.endswith(".dlq")]

    def _deliver(self, outgoing: Outgoing) -> Delivered:
        delivered = Delivered(outgoing, self._decode(outgoing))
        self.log.append(delivered)
        offset = len(self.log)
        for reader in self._readers:
            if outgoing.topic in reader.topics:
                self._queue.extend(self._handle(reader, outgoing, offset))
        return delivered

    def _handle(self, reader: _Reader, outgoing: Outgoing, offset: int) -> Iterable[Outgoing]:
        received = Received(
            outgoing.topic, 0, offset, outgoing.timestamp_ms or 0, outgoing.key, outgoing.value, outgoing.headers
        )
        charged_before = sum(self.cpu_s.values())
        started = time.thread_time()
        produced = reader.process(received, reader.states[outgoing.key])
        elapsed = time.thread_time() - started
        # A chain's members are charged for their own stages (`_Charged`); the chain, for the rest.
        self.cpu_s[reader.processor] += elapsed - (sum(self.cpu_s.values()) - charged_before)
        self.handled[reader.processor] += 1
        return produced

    def _decode(self, outgoing: Outgoing) -> AvroRecord | None:
        if outgoing.value is None or outgoing.topic.endswith(".dlq"):
            return None
        codec = self._codecs.get(outgoing.topic)
        if codec is None:
            codec = self._codecs[outgoing.topic] = RecordCodec(self._registry, outgoing.topic)
        try:
            return codec.decode(outgoing.value)
        except UndecodableRecord:
            return None
