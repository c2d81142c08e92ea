"""Poison on every consumed topic family: each record goes to the topic's dead letters, with a readable
reason, from every processor that reads it, and 20 normal orders afterwards all end and reconcile exactly.

The topics and their readers come from the declarations (`ProcessorSpec.inputs`, the timers' topic, the
tracker's inputs); the activities' topics are one family, tried through one step and its compensation. What a
poison leaves behind is cleared after each case (a tombstone on compacted topics; a reader stuck on it is
moved past it and restarted), so that the next case and the next test start clean.
"""

from __future__ import annotations

import datetime
import os
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.chaos import Fleet, Letter, Observer, close_the_books, seed_stock, stock_for, wait_for_endings
from ops.orders import OrderMix, generate_orders
from ops.produce import produce_orders
from ops.replay import committed
from processors import timers
from processors.adapters.fulfillment_simulators import FulfillmentLedger, default_fulfillment_ledger
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.routingslip.slip import build, step
from processors.runtime.encoder import Encoder
from processors.runtime.records import Emit, utc_now
from processors.services import SERVICES, STREAM_PROCESSORS
from schemas.models import (
    AvroRecord,
    FulfillmentRequest,
    Money,
    PaymentProcessed,
    StockLevel,
    TimerScheduled,
)
from schemas.serde import HeaderCodec
from tests.factories import Order, fulfillment_request
from tests.integration.harness import Processes, fleet_of
from topology.admin import wait_for_group
from topology.settings import Settings
from topology.topics import (
    FULFILLMENT_ACTIVITIES,
    INVENTORY_STOCK,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIP_HEADER,
    TIMERS,
    TopicSpec,
    fulfillment_activity,
    fulfillment_compensation,
    topic_named,
)

POISON_ID = "x-poison-id"
LARGE_VALUE = 900 * 1024
LARGE_HEADER = 100 * 1024
DEAD_LETTER_WAIT_S = 30.0
NORMAL_ORDERS = 20
SOURCE = "oms.poison-test"


def readers() -> dict[str, set[str]]:
    """Every consumed topic and the groups that read it, from the declarations."""
    found: dict[str, set[str]] = {}
    for spec in STREAM_PROCESSORS:
        for topic in spec.inputs:
            found.setdefault(topic.name, set()).add(spec.group)
    found.setdefault(TIMERS.name, set()).add(timers.PROCESSOR)
    return found


READERS = readers()


def readers_that_decode(topic: str, writer: str | None) -> set[str]:
    """The groups that read `topic` and decode a record of type `writer` there: a stream passes a declared
    type it does not handle over undecoded, so garbage behind that type's schema id is no concern of
    its. None: a message whose type is no declared one, which every reader reads and dead-letters."""
    if writer is None:
        return READERS[topic]
    passing_over = {
        spec.group
        for spec in STREAM_PROCESSORS
        for stream in spec.streams
        if topic in {t.name for t in stream.topics}
        and stream.handles is not None
        and writer not in {kind.AVRO_NAME for kind in stream.handles}
    }
    return READERS[topic] - passing_over


# The activities read a topic per step and per compensation: one step and its compensation stand for them all.
OTHER_ACTIVITY_TOPICS = {
    topic.name
    for activity in FULFILLMENT_ACTIVITIES[1:]
    for topic in (fulfillment_activity(activity), fulfillment_compensation(activity))
}
FAMILIES = sorted(name for name in READERS if name not in OTHER_ACTIVITY_TOPICS)
PICK, PICK_BACK = fulfillment_activity("pick"), fulfillment_compensation("pick")
SLIP_TOPICS = {PICK.name, PICK_BACK.name}
COMPACTED = {topic.name for topic in (TIMERS, INVENTORY_STOCK)}


@dataclass
class Poison:
    topic: str
    key: bytes
    value: bytes | None
    headers: list[tuple[str, bytes]]
    writer: str | None = None
    """The declared record type its schema id names, if any (its readers that handle that type decode it)."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    partition: int = -1
    offset: int = -1

    def produce(self, producer: Producer, errors: list[str]) -> None:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                errors.append(f"{self.topic}: {error}")
            else:
                self.partition, self.offset = message.partition(), message.offset()

        headers = [*self.headers, (POISON_ID, self.id.encode())]
        producer.produce(self.topic, key=self.key, value=self.value, headers=headers, on_delivery=delivered)


@dataclass(frozen=True)
class Kit:
    """What poison is made with: the registry, and an encoder as a third party's producer would have."""

    registry: SchemaRegistryClient
    encode: Encoder

    def schema_id(self, topic: TopicSpec) -> int:
        subject = f"{topic.name}-{topic.records[0]}"
        return int(self.registry.get_latest_version(subject).schema_id)

    def valid(self, topic: TopicSpec, key: str, record: AvroRecord) -> bytes:
        value = self.encode(Emit(topic, key, record)).value
        assert value is not None
        return value


def key_of() -> bytes:
    return f"poison-{uuid.uuid4().hex[:10]}".encode()


def random_bytes(kit: Kit, topic: TopicSpec) -> list[Poison]:
    return [Poison(topic.name, key_of(), os.urandom(64), [])]


def unknown_schema_id(kit: Kit, topic: TopicSpec) -> list[Poison]:
    return [Poison(topic.name, key_of(), b"\x00" + struct.pack(">I", 0x7FFFFFF0) + b"\x02\x00", [])]


def another_type(kit: Kit, topic: TopicSpec) -> list[Poison]:
    """A record of a registered type the topic does not carry, as registered for its own topic, with its
    CloudEvents headers (e.g. a `PaymentProcessed` on the orders' commands)."""
    key = key_of()
    order_id = key.decode()
    record: AvroRecord
    if PaymentProcessed.AVRO_NAME in topic.records:
        home = INVENTORY_STOCK
        record = StockLevel(event_id=uuid.uuid4(), sku=order_id, available=5, occurred_at=utc_now())
    else:
        home = PAYMENTS_EVENTS
        record = PaymentProcessed(
            event_id=uuid.uuid4(),
            order_id=order_id,
            occurred_at=utc_now(),
            amount=Money(amount_minor=100, currency="EUR"),
            charges=[],
        )
    outgoing = kit.encode(Emit(home, order_id, record))
    assert outgoing.value is not None
    return [Poison(topic.name, key, outgoing.value, list(outgoing.headers))]


def large_value(kit: Kit, topic: TopicSpec) -> list[Poison]:
    """900 KB behind the frame of a schema the topic carries: the dead letter copies all of it."""
    frame = b"\x00" + struct.pack(">I", kit.schema_id(topic))
    value = frame + b"\x01" + os.urandom(LARGE_VALUE)
    return [Poison(topic.name, key_of(), value, [], writer=topic.records[0])]


def large_header(kit: Kit, topic: TopicSpec) -> list[Poison]:
    return [Poison(topic.name, key_of(), os.urandom(64), [("x-large", os.urandom(LARGE_HEADER))])]


def non_utf8_key(kit: Kit, topic: TopicSpec) -> list[Poison]:
    """Not on the compacted topics: their tombstone has the same key, and both stay in the shared broker's
    log until the cleaner gets to them, for every table reader of every checkout (the timers' own tests
    cover theirs)."""
    if topic.name in COMPACTED:
        return []
    return [Poison(topic.name, b"\xff\xfe" + key_of(), os.urandom(64), [])]


def slip_request(kit: Kit, topic: TopicSpec, key: str) -> bytes:
    request = fulfillment_request(Order(units={"SKU-TEE-01": 1})).model_copy(
        update={"order_id": key, "event_id": uuid.uuid4()}
    )
    assert isinstance(request, FulfillmentRequest)
    return kit.valid(topic, key, request)


def garbled_slip_header(kit: Kit, topic: TopicSpec) -> list[Poison]:
    if topic.name not in SLIP_TOPICS:
        return []
    key = key_of()
    return [Poison(topic.name, key, slip_request(kit, topic, key.decode()), [(ROUTING_SLIP_HEADER.name, b"garbled")])]


def slip_to_a_topic_that_is_no_activity(kit: Kit, topic: TopicSpec) -> list[Poison]:
    """A well-formed slip whose step after pick is addressed to the orders' events."""
    if topic.name != PICK.name:
        return []
    key = key_of()
    slip = build(key.decode(), [step("pick", PICK.name), step("publish", ORDERS_EVENTS.name)], utc_now())
    header = HeaderCodec(kit.registry, ROUTING_SLIP_HEADER).encode(slip)
    return [Poison(topic.name, key, slip_request(kit, topic, key.decode()), [(ROUTING_SLIP_HEADER.name, header)])]


def timer_firing_elsewhere(kit: Kit, topic: TopicSpec) -> list[Poison]:
    """A due timer whose firing would go to a topic that is not the sagas' timers."""
    if topic.name != TIMERS.name:
        return []
    key = key_of()
    timer = TimerScheduled(
        event_id=uuid.uuid4(),
        order_id=key.decode(),
        occurred_at=utc_now(),
        timer_id=key.decode(),
        due_at=utc_now() - datetime.timedelta(seconds=1),
        fire_topic=ORDERS_EVENTS.name,
        purpose="poison",
    )
    return [Poison(topic.name, key, kit.valid(TIMERS, key.decode(), timer), [])]


POISONS: dict[str, Callable[[Kit, TopicSpec], list[Poison]]] = {
    "random-bytes": random_bytes,
    "unknown-schema-id": unknown_schema_id,
    "another-type": another_type,
    "900KB-value": large_value,
    "100KB-header": large_header,
    "non-utf8-key": non_utf8_key,
    "garbled-slip-header": garbled_slip_header,
    "slip-to-a-topic-that-is-no-activity": slip_to_a_topic_that_is_no_activity,
    "timer-firing-elsewhere": timer_firing_elsewhere,
}


@pytest.fixture
def processors(pipeline: Processes) -> Fleet:
    """The session's processors, to revive when a poison stops one (the platform is not stopped)."""
    return fleet_of(pipeline)


@pytest.fixture
def observer(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Observer]:
    watching = Observer(settings, registry)
    yield watching
    watching.close()


def produce_poison(settings: Settings, poisons: list[Poison]) -> None:
    """Each poison once; the broker must take each (a 100 KB header and a 900 KB value are within its limit)."""
    producer = Producer(settings.kafka_config())
    errors: list[str] = []
    for poison in poisons:
        poison.produce(producer, errors)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == [], f"the broker refused poison: {errors}"


def missing_letters(observer: Observer, poisons: list[Poison]) -> list[str]:
    """Each (poison, reader) without its dead letter."""
    got = {(letter.says(POISON_ID), letter.says("dlq.processor")) for letter in observer.letters}
    return [
        f"{poison.topic} by {group}"
        for poison in poisons
        for group in sorted(readers_that_decode(poison.topic, poison.writer))
        if (poison.id, group) not in got
    ]


def unreadable_reasons(letters: list[Letter]) -> list[str]:
    """Dead letters whose reason is no sentence a person can read."""
    bad = []
    for letter in letters:
        reason = letter.headers.get("dlq.error.message", b"")
        try:
            text = reason.decode()
        except UnicodeDecodeError:
            text = ""
        if not text.strip() or len(text) > 2000 or not text.isprintable():
            bad.append(f"{letter.topic} by {letter.says('dlq.processor')}: {reason[:120]!r}")
    return bad


def effects_of(settings: Settings, poisons: list[Poison]) -> dict[str, list[str]]:
    """What the outside world was made to do for the poison's keys: nothing, for a record nobody could use."""
    fulfillment = FulfillmentLedger(default_fulfillment_ledger(settings))
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    touched: dict[str, list[str]] = {}
    for poison in poisons:
        order_id = poison.key.decode(errors="replace")
        done: list[str] = [effect.kind for effect in fulfillment.effects(order_id)]
        done += [f"charge {charge.status}" for charge in gateway.charges(order_id)]
        if done:
            touched[f"{poison.topic} {order_id}"] = done
    return touched


def tombstone(settings: Settings, poisons: list[Poison]) -> None:
    """Poison on a compacted topic would stay there, read by every rebuild and every `oms stock show`: a
    tombstone removes it (carrying the poison's id, so that its own dead letters are told apart)."""
    producer = Producer(settings.kafka_config())
    for poison in poisons:
        if poison.topic in COMPACTED:
            producer.produce(poison.topic, key=poison.key, value=None, headers=[(POISON_ID, poison.id.encode())])
    assert producer.flush(30) == 0


def wait_until_empty(admin: AdminClient, group: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while admin.describe_consumer_groups([group])[group].result(30).members:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group} still has members after {timeout_s:.0f}s")
        time.sleep(0.5)


def clear_away(admin: AdminClient, fleet: Fleet, poisons: list[Poison]) -> list[str]:
    """Every reader still before a poison (stuck on it) stopped, moved past it and started again; dead
    readers revived. Returns the groups that were stuck."""
    names = {service.group: name for name, service in SERVICES.items()}
    stuck: dict[str, dict[tuple[str, int], int]] = {}
    for poison in poisons:
        for group in READERS[poison.topic]:
            done = {(tp.topic, tp.partition): tp.offset for tp in committed(admin, group)}
            if poison.topic != TIMERS.name and done.get((poison.topic, poison.partition), -1) <= poison.offset:
                past = stuck.setdefault(group, {})
                where = (poison.topic, poison.partition)
                past[where] = max(past.get(where, 0), poison.offset + 1)
    for group, past in stuck.items():
        name = names[group]
        fleet.kill(name)
        wait_until_empty(admin, group)
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in past.items()]
        admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, offsets)])[group].result(30)
    fleet.revive()
    for name in fleet.processes:
        try:
            wait_for_group(admin, SERVICES[name].group, members=1, timeout_s=60)
        except TimeoutError:
            stuck.setdefault(SERVICES[name].group, {})  # crash-looping: named with the stuck ones
    return sorted(stuck)


@pytest.mark.parametrize("kind", list(POISONS))
def test_poison_is_dead_lettered_by_every_reader_with_a_reason_and_orders_still_end(
    kind: str,
    settings: Settings,
    admin: AdminClient,
    registry: SchemaRegistryClient,
    processors: Fleet,
    observer: Observer,
) -> None:
    kit = Kit(registry, Encoder(registry, SOURCE))
    poisons = [poison for family in FAMILIES for poison in POISONS[kind](kit, topic_named(family))]
    problems: list[str] = []
    try:
        produce_poison(settings, poisons)
        try:
            observer.wait_until(lambda: not missing_letters(observer, poisons), DEAD_LETTER_WAIT_S, "dead letters")
        except TimeoutError:
            problems.append(f"not dead-lettered within {DEAD_LETTER_WAIT_S:.0f}s: {missing_letters(observer, poisons)}")
        tombstone(settings, poisons)
        if touched := effects_of(settings, poisons):
            problems.append(f"a dead-lettered record still had effects: {touched}")
        ids = {poison.id for poison in poisons}
        ours = [letter for letter in observer.letters if letter.says(POISON_ID) in ids]
        if unreadable := unreadable_reasons(ours):
            problems.append(f"unreadable reasons: {unreadable}")
        print(f"{kind}: {len(ours)} dead letters, e.g.", *{letter.says("dlq.error.message")[:160] for letter in ours})

        orders = generate_orders(NORMAL_ORDERS, seed=5, prefix=f"after-{kind}-{uuid.uuid4().hex[:6]}", mix=OrderMix())
        seeded = stock_for(orders)
        seed_stock(settings, observer, seeded)
        produce_orders(settings, [order.record for order in orders], progress=False)
        unfinished = wait_for_endings(observer, [order.order_id for order in orders], {}, 120, processors)
        if unfinished:
            problems.append(f"{len(unfinished)} of {NORMAL_ORDERS} orders never ended, e.g. {sorted(unfinished)[:3]}")
        books = close_the_books(
            settings, observer, orders, {}, seeded, counted=lambda letter: letter.says(POISON_ID) == ""
        )
        if not books.ok:
            problems.append(books.report())
        if processors.exited:
            problems.append(f"processors exited: {processors.exited}")
    finally:
        if stuck := clear_away(admin, processors, poisons):
            problems.append(f"stuck before the poison and moved past it: {stuck}")
    assert not problems, "\n".join(problems)
