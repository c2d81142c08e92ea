"""What a processor cannot use goes to `<topic>.dlq` with its original bytes and the error; it goes on. A redrive
sends each original back to that topic once, even when two run at once."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from ops import deadletters
from ops.deadletters import DeadLetter, RedriveFenced, SkipReason, redrive, redrive_report, redriven
from processors.runtime.clients import end_reader, read_to_end
from schemas.catalog import record
from schemas.models import OrderCreated, OrderRejected
from schemas.serde import RecordCodec
from tests.factories import a_valid_order
from tests.integration.harness import Processes, Seen, Watcher
from topology.settings import Settings
from topology.topics import DEAD_LETTERS_REDRIVEN, ORDERS_COMMANDS, ORDERS_EVENTS, PAYMENTS_EVENTS

DLQ = ORDERS_COMMANDS.dead_letter_topic.name


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [ORDERS_EVENTS.name], raw=[DLQ])
    yield watching
    watching.close()


def raw_place_order(registry: SchemaRegistryClient, **fields: object) -> bytes:
    """A PlaceOrder that is valid Avro but breaks the model (e.g. an event id that is no UUID)."""
    serializer = AvroSerializer(
        registry,
        record("oms.orders.PlaceOrder").to_json(),
        conf={"auto.register.schemas": False, "subject.name.strategy": topic_record_subject_name_strategy},
    )
    value = a_valid_order().model_dump() | fields
    encoded = serializer(value, SerializationContext(ORDERS_COMMANDS.name, MessageField.VALUE))
    assert encoded is not None
    return encoded


def test_poison_goes_to_the_dead_letter_topic_and_valid_orders_still_flow(
    settings: Settings, registry: SchemaRegistryClient, watcher: Watcher
) -> None:
    run = uuid.uuid4().hex[:8]
    poison = {
        f"not-avro-{run}": b'{"order_id": "o-1"}',
        f"unknown-schema-{run}": b"\x00\x7f\xff\xff\xf0\x02\x00",
        f"bad-uuid-{run}": raw_place_order(registry, event_id="not-a-uuid", order_id=f"bad-uuid-{run}"),
    }
    valid = a_valid_order(order_id=f"after-poison-{run}")
    producer = Producer(settings.kafka_config())
    for key, value in poison.items():
        producer.produce(ORDERS_COMMANDS.name, key=key.encode(), value=value, headers=[("trace", run.encode())])
    producer.produce(
        ORDERS_COMMANDS.name,
        key=valid.order_id.encode(),
        value=RecordCodec(registry, ORDERS_COMMANDS.name).encode(valid),
    )
    producer.flush(30)

    # Both processors that read the commands, intake and the sagas, dead-letter each; `dlq.processor` says whose.
    def letters_by(seen: list[Seen], processor: bytes) -> dict[str, Seen]:
        return {
            str(s.key): s
            for s in seen
            if s.topic == DLQ and s.key in poison and s.headers["dlq.processor"] == processor
        }

    # Intake also answers each under its key, in the transaction of its dead letter.
    def answers_to(seen: list[Seen]) -> dict[str, OrderRejected]:
        return {str(s.key): s.record for s in seen if isinstance(s.record, OrderRejected) and s.key in poison}

    seen = watcher.wait_until(
        lambda seen: (
            set(letters_by(seen, b"oms.intake")) == set(letters_by(seen, b"oms.sagas")) == set(poison)
            and set(answers_to(seen)) == set(poison)
            and any(isinstance(s.record, OrderCreated) and s.key == valid.order_id for s in seen)
        ),
        what="three dead letters from each reader, an answer to each, and the valid order created",
    )
    answered = answers_to(seen)
    assert all(answer.codes == ["invalid-field"] for answer in answered.values()), answered
    assert answered[f"not-avro-{run}"].reasons[0].startswith("the command could not be read: not Confluent-framed")
    assert answered[f"bad-uuid-{run}"].reasons[0].startswith("event id input should be a valid UUID")

    dead = letters_by(seen, b"oms.intake")
    for key, letter in dead.items():
        assert letter.value == poison[key], "the original bytes are kept"
        assert letter.headers["trace"] == run.encode(), "the original headers are kept"
        assert letter.headers["dlq.original.topic"] == ORDERS_COMMANDS.name.encode()
        assert int(letter.headers["dlq.original.offset"]) >= 0
        assert int(letter.headers["dlq.original.partition"]) in range(ORDERS_COMMANDS.partitions)
        assert int(letter.headers["dlq.original.timestamp"]) > 0
        assert letter.headers["dlq.processor"] == b"oms.intake"
    assert dead[f"not-avro-{run}"].headers["dlq.error.class"] == b"schemas.serde.UndecodableRecord"
    assert b"magic byte" in dead[f"not-avro-{run}"].headers["dlq.error.message"]
    assert b"schema id" in dead[f"unknown-schema-{run}"].headers["dlq.error.message"]
    assert dead[f"bad-uuid-{run}"].headers["dlq.error.class"] == b"schemas.serde.UndecodableRecord"
    # A string in a uuid field is valid Avro; the model refuses it, and says which field.
    bad_uuid = dead[f"bad-uuid-{run}"].headers["dlq.error.message"]
    assert bad_uuid.startswith(b"oms.orders.PlaceOrder fails validation"), bad_uuid
    assert b"event_id" in bad_uuid and b"UUID" in bad_uuid, bad_uuid


def letter_headers(original_topic: str, original_offset: int, processor: str) -> list[tuple[str, bytes]]:
    return [
        ("trace", b"kept"),
        ("dlq.original.topic", original_topic.encode()),
        ("dlq.original.partition", b"0"),
        ("dlq.original.offset", str(original_offset).encode()),
        ("dlq.error.class", b"httpx.ConnectError"),
        ("dlq.error.message", b"registry unreachable"),
        ("dlq.processor", processor.encode()),
    ]


def an_unused_offset() -> int:
    """An original offset no earlier run recorded as redriven (the record of redrives is kept for ever)."""
    return uuid.uuid4().int % 10**12


def ends_of(settings: Settings, topic: str) -> list[TopicPartition]:
    """Where each partition of `topic` ends now, for reading what is published from here on."""
    consumer = end_reader(settings, "test-ends")
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return [
            TopicPartition(topic, partition, consumer.get_watermark_offsets(TopicPartition(topic, partition))[1])
            for partition in partitions
        ]
    finally:
        consumer.close()


def committed_keys_since(settings: Settings, since: list[TopicPartition]) -> Counter[str]:
    """How many committed records per key were published after `since` (read_committed)."""
    consumer = end_reader(settings, "test-redriven")
    try:
        return Counter((message.key() or b"").decode(errors="replace") for message in read_to_end(consumer, since))
    finally:
        consumer.close()


def of_run(run: str) -> deadletters.Filter:
    return lambda letter: (letter.key or b"").decode(errors="replace").startswith(run)


def test_two_redrives_at_once_send_each_original_once(
    settings: Settings, registry: SchemaRegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = f"twice-{uuid.uuid4().hex[:8]}"
    codec = RecordCodec(registry, ORDERS_COMMANDS.name)
    producer = Producer(settings.kafka_config())
    keys = [f"{run}-{index}" for index in range(3)]
    for key in keys:
        offset, value = an_unused_offset(), codec.encode(a_valid_order(order_id=key))
        for processor in ("oms.intake", "oms.sagas"):  # two readers of one original: two letters, one original
            producer.produce(
                DLQ, key=key.encode(), value=value, headers=letter_headers(ORDERS_COMMANDS.name, offset, processor)
            )
    producer.flush(10)
    since = ends_of(settings, ORDERS_COMMANDS.name) + ends_of(settings, DEAD_LETTERS_REDRIVEN.name)

    # The race: both redrives have read what was already redriven before either sends anything, as two clicks
    # (or a click and `oms dlq redrive`) a moment apart do.
    both_have_read = threading.Barrier(2, timeout=60)
    read_redriven = deadletters.redriven

    def read_then_wait_for_the_other(settings: Settings) -> set[str]:
        done = read_redriven(settings)
        both_have_read.wait()
        return done

    monkeypatch.setattr(deadletters, "redriven", read_then_wait_for_the_other)
    outcomes: list[list[DeadLetter] | Exception] = []

    def redrive_in_thread() -> None:
        try:
            outcomes.append(redrive(settings, ORDERS_COMMANDS.name, of_run(run)))
        except Exception as error:
            outcomes.append(error)

    threads = [threading.Thread(target=redrive_in_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    monkeypatch.undo()

    published = committed_keys_since(settings, since)
    described = [type(outcome).__name__ if isinstance(outcome, Exception) else len(outcome) for outcome in outcomes]
    assert {key: published[key] for key in keys} == dict.fromkeys(keys, 1), f"each original once; {described}"
    originals = [letter.original for letter in deadletters.dead_letters(settings, DLQ) if of_run(run)(letter)]
    assert {original: published[original] for original in originals} == dict.fromkeys(originals, 1)
    [fenced] = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert isinstance(fenced, RedriveFenced), "the one that started first stops, having sent nothing"
    assert [len(outcome) for outcome in outcomes if isinstance(outcome, list)] == [len(keys)], "the other sent all"

    third = redrive_report(settings, ORDERS_COMMANDS.name, of_run(run))
    assert third.sent == [], "a third redrive sends nothing"
    assert [skipped.reason for skipped in third.skipped] == [SkipReason.ALREADY_REDRIVEN] * len(originals)


def test_a_dead_letter_naming_another_topic_is_not_redriven_there(
    settings: Settings, registry: SchemaRegistryClient
) -> None:
    run = f"elsewhere-{uuid.uuid4().hex[:8]}"
    undeclared = f"oms.nowhere-{run}"
    value = RecordCodec(registry, ORDERS_COMMANDS.name).encode(a_valid_order(order_id=run))
    producer = Producer(settings.kafka_config())
    for original_topic in (PAYMENTS_EVENTS.name, undeclared):
        headers = letter_headers(original_topic, an_unused_offset(), "oms.intake")
        producer.produce(DLQ, key=run.encode(), value=value, headers=headers)
    producer.flush(10)
    since = ends_of(settings, PAYMENTS_EVENTS.name)

    report = redrive_report(settings, ORDERS_COMMANDS.name, of_run(run))

    assert report.sent == []
    assert [skipped.reason for skipped in report.skipped] == [SkipReason.OTHER_TOPIC] * 2
    assert PAYMENTS_EVENTS.name in str(report.skipped[0]) and "not a declared topic" in str(report.skipped[1])
    assert committed_keys_since(settings, since)[run] == 0, "nothing reached the topic the header names"
    assert undeclared not in Producer(settings.kafka_config()).list_topics(timeout=10).topics, "no topic made up"
    mine = [letter for letter in deadletters.dead_letters(settings, DLQ) if of_run(run)(letter)]
    assert len(mine) == 2 and not {letter.original for letter in mine} & redriven(settings), "they stay, unsent"
