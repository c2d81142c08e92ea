"""Dead letters from the command line: list them with their errors, and redrive them to where they came from.

A redrive re-produces a dead letter's original key, value and headers (its `dlq.*` headers dropped) to its
original topic, once: the original message's coordinates (`topic/partition/offset`) are recorded on the
compacted `oms.dead-letters.redriven` in the same Kafka transaction, and a letter whose original is
recorded there is not redriven again. Several processors reading one topic each dead-letter a message they
cannot use; the original goes back once, and each of them reads it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from ops.tables import read_table
from processors.runtime.clients import end_reader, read_to_end
from topology.settings import Settings
from topology.topics import DEAD_LETTERS_REDRIVEN

DLQ_PREFIX = "dlq."


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    def header(self, name: str) -> str:
        return next((value.decode(errors="replace") for key, value in self.headers if key == name), "")

    @property
    def processor(self) -> str:
        return self.header("dlq.processor")

    @property
    def error(self) -> str:
        return f"{self.header('dlq.error.class').rsplit('.', 1)[-1]}: {self.header('dlq.error.message')}"

    @property
    def original(self) -> str:
        """Where the message was when it failed: topic/partition/offset."""
        return "/".join(self.header(f"dlq.original.{part}") for part in ("topic", "partition", "offset"))

    @property
    def original_topic(self) -> str:
        return self.header("dlq.original.topic")

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(key, value) for key, value in self.headers if not key.startswith(DLQ_PREFIX)]


def dead_letters(settings: Settings, topic: str) -> list[DeadLetter]:
    """Every dead letter of `topic` (`topic` or its `.dlq`), oldest first per partition."""
    dlq = topic if topic.endswith(".dlq") else f"{topic}.dlq"
    consumer = end_reader(settings, "oms-dlq-reader")
    try:
        partitions = consumer.list_topics(dlq, timeout=10).topics[dlq].partitions
        beginnings = [TopicPartition(dlq, partition, OFFSET_BEGINNING) for partition in partitions]
        letters = [
            DeadLetter(message.partition(), message.offset(), message.key(), message.value(), message.headers() or [])
            for message in read_to_end(consumer, beginnings)
        ]
        return letters
    finally:
        consumer.close()


Filter = Callable[[DeadLetter], bool]


def matching(processor: str | None = None, error: str | None = None, key: str | None = None) -> Filter:
    def matches(letter: DeadLetter) -> bool:
        return (
            (processor is None or letter.processor == processor)
            and (error is None or error in letter.error)
            and (key is None or (letter.key or b"").decode(errors="replace") == key)
        )

    return matches


def redriven(settings: Settings) -> set[str]:
    """Originals already redriven, as topic/partition/offset."""
    return set(read_table(settings, DEAD_LETTERS_REDRIVEN.name))


def redrive(settings: Settings, topic: str, wanted: Filter, dry_run: bool = False) -> list[DeadLetter]:
    """Re-produce the matching dead letters' originals not yet redriven, each once; the letters redriven."""
    done = redriven(settings)
    chosen: dict[str, DeadLetter] = {}
    for letter in dead_letters(settings, topic):
        if wanted(letter) and letter.original not in done:
            chosen.setdefault(letter.original, letter)
    letters = list(chosen.values())
    if dry_run or not letters:
        return letters
    producer = Producer(
        {
            **settings.producer_config(),
            "transactional.id": f"oms-dlq-redrive-{uuid.uuid4().hex}",
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for letter in letters:
        producer.produce(letter.original_topic, key=letter.key, value=letter.value, headers=letter.original_headers())
        producer.produce(DEAD_LETTERS_REDRIVEN.name, key=letter.original.encode(), value=b"redriven")
    producer.commit_transaction(60)
    return letters
