"""Exactly-once rests on transactions: the local broker must commit and abort them for real."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from ops.tables import open_transactions
from topology.settings import Settings


def read_until(settings: Settings, topic: str, isolation: str, last: bytes) -> list[bytes]:
    """Values of partition 0 from the start up to and including `last`."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while last not in values and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                values.append(message.value())
    finally:
        consumer.close()
    return values


def test_aborted_transaction_stays_invisible_to_read_committed(settings: Settings, topic: str) -> None:
    producer = Producer({**settings.kafka_config(), "transactional.id": f"test-{uuid.uuid4().hex}"})
    producer.init_transactions(30)

    producer.begin_transaction()
    producer.produce(topic, key=b"o-1", value=b"committed-1")
    producer.produce(topic, key=b"o-1", value=b"committed-2")
    producer.commit_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, key=b"o-1", value=b"aborted")
    producer.flush(30)
    producer.abort_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, key=b"o-1", value=b"committed-3")
    producer.commit_transaction(30)

    committed = read_until(settings, topic, "read_committed", last=b"committed-3")
    everything = read_until(settings, topic, "read_uncommitted", last=b"committed-3")

    assert committed == [b"committed-1", b"committed-2", b"committed-3"]
    assert b"aborted" in everything, "the aborted record was written, only hidden by read_committed"


def test_a_transaction_left_open_is_found_until_it_ends(settings: Settings, admin: AdminClient, topic: str) -> None:
    producer = Producer({**settings.kafka_config(), "transactional.id": f"test-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, partition=0, key=b"o-1", value=b"undecided")
    producer.flush(30)

    opened = open_transactions(admin)

    assert [tp for tp in opened if tp.topic == topic] == [TopicPartition(topic, 0)]
    mine = {tp: end for tp, end in opened.items() if tp.topic == topic}
    assert open_transactions(admin, mine) == mine, "still open"
    producer.abort_transaction(30)
    deadline = time.monotonic() + 30
    while open_transactions(admin, mine) and time.monotonic() < deadline:
        time.sleep(0.1)  # the coordinator writes the abort marker after it answers
    assert open_transactions(admin, mine) == {}
