"""The local index of a compacted view: one key's latest record found without reading the topic again."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ops.view_index import ViewIndex
from topology.settings import Settings


def produce(settings: Settings, topic: str, records: list[tuple[str, bytes | None]]) -> None:
    producer = Producer(settings.producer_config())
    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(10) == 0


def test_the_index_finds_each_keys_latest_record_and_reads_only_what_is_new(
    settings: Settings, topic: str, tmp_path: Path
) -> None:
    produce(settings, topic, [(f"o-{n}", f"v1 of o-{n}".encode()) for n in range(50)])
    index = ViewIndex(settings, topic, tmp_path / "index.sqlite")

    assert index.catch_up() == 50
    assert index.lookup("o-7") == b"v1 of o-7"
    assert index.lookup("o-missing") is None

    produce(settings, topic, [("o-7", b"v2 of o-7"), ("o-8", None)])
    assert index.catch_up() == 2  # only what came since
    assert index.lookup("o-7") == b"v2 of o-7"
    assert index.lookup("o-8") is None  # a tombstone removes the key
    assert index.catch_up() == 0
    index.close()


def test_a_topic_made_again_is_indexed_afresh(
    settings: Settings, admin: AdminClient, topic: str, tmp_path: Path
) -> None:
    produce(settings, topic, [("o-1", b"old"), ("o-2", b"old")])
    index = ViewIndex(settings, topic, tmp_path / "index.sqlite")
    assert index.catch_up() == 2

    admin.delete_topics([topic])[topic].result(timeout=30)
    deadline = time.monotonic() + 30
    while True:  # deletion completes in the background: create until the name is free again
        try:
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    produce(settings, topic, [("o-2", b"new")])

    assert index.catch_up() == 1
    assert index.lookup("o-1") is None
    assert index.lookup("o-2") == b"new"
    index.close()
