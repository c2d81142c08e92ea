"""Dead letters from the command line: list them with their errors, and redrive them to where they came from.

A redrive re-produces a dead letter's original key, value and headers (its `dlq.*` headers dropped) to its
original topic, once: the original message's coordinates (`topic/partition/offset`) are recorded on the
compacted `oms.dead-letters.redriven` in the same Kafka transaction, and a letter whose original is
recorded there is not redriven again. Several processors reading one topic each dead-letter a message they
cannot use; the original goes back once, and each of them reads it again.

Two redrives of one dead-letter topic at once (two clicks, the page and the command line) share one
transactional id: the later one fences the earlier before it reads what was redriven, so it reads all the
earlier one committed, and the earlier one can commit nothing more (it stops with `RedriveFenced`).

A letter goes back only to the topic whose dead letters it is: one whose `dlq.original.topic` names any
other topic, declared or not, or that was cut down to fit the dead-letter topic, is skipped with a reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Producer, TopicPartition

from ops.progress import Bars, bars_for
from ops.tables import read_table
from processors.runtime.clients import end_reader, read_to_end
from processors.runtime.deadletters import TRUNCATED_HEADER
from topology.settings import Settings
from topology.topics import ALL_TOPICS, DEAD_LETTERS_REDRIVEN, WORKFLOW_TOPICS, TopicSpec, topic_named

DLQ_PREFIX = "dlq."
TRANSACTION_TIMEOUT_S = 60.0

logger = logging.getLogger(__name__)
# librdkafka's own lines about a fenced producer go here; the command line says it once, in plain words.
logger.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    """As Kafka gives them: a header's value may be null."""

    def header(self, name: str) -> str:
        """The last header so named: a processor appends its `dlq.*` headers after the original's."""
        values = (value for key, value in reversed(self.headers) if key == name)
        return (next(values, b"") or b"").decode(errors="replace")

    def has_header(self, name: str) -> bool:
        return any(key == name for key, _ in self.headers)

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

    def original_headers(self) -> list[tuple[str, bytes | None]]:
        return [(key, value) for key, value in self.headers if not key.startswith(DLQ_PREFIX)]


class NotADeadLetterTopic(ValueError):
    """The topic named is neither a declared workflow topic nor the dead-letter topic of one."""


class RedriveFenced(Exception):
    """Another redrive of the same dead-letter topic started while this one ran and fenced it: this one's
    transaction is aborted, so nothing it produced is visible to committed readers."""

    def __init__(self, dead_letter_topic: str) -> None:
        super().__init__(
            f"another redrive of {dead_letter_topic} started and took over: this one stopped and sent nothing; "
            "run it again for what the other did not redrive"
        )
        self.dead_letter_topic = dead_letter_topic


class SkipReason(StrEnum):
    ALREADY_REDRIVEN = "already redriven"
    SAME_ORIGINAL = "same original as another letter"
    OTHER_TOPIC = "original topic not this one"
    NO_ORIGINAL = "no original partition/offset"
    TRUNCATED = "cut down to fit"

    @property
    def refused(self) -> bool:
        """Whether the letter needs an operator: it will never be redriven as it is."""
        return self in (SkipReason.OTHER_TOPIC, SkipReason.NO_ORIGINAL, SkipReason.TRUNCATED)


@dataclass(frozen=True)
class Skipped:
    letter: DeadLetter
    reason: SkipReason
    detail: str = ""

    def __str__(self) -> str:
        return self.detail or self.reason.value


@dataclass(frozen=True)
class RedriveReport:
    dead_letter_topic: str
    sent: list[DeadLetter]
    skipped: list[Skipped]


Filter = Callable[[DeadLetter], bool]


def plain(text: str) -> str:
    """`text` with control characters escaped: keys and errors come from records, and a terminal would obey
    escape sequences in them."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def shown_key(letter: DeadLetter) -> str:
    return plain((letter.key or b"").decode(errors="replace"))


def summary(report: RedriveReport, dry_run: bool = False) -> str:
    """One line: how many went back and how many were skipped, by reason."""
    by_reason = Counter(skipped.reason for skipped in report.skipped)
    reasons = ", ".join(f"{count} {reason.value}" for reason, count in by_reason.items())
    sent, skip = ("would redrive", "would skip") if dry_run else ("redrove", "skipped")
    line = f"{report.dead_letter_topic}: {sent} {len(report.sent)}, {skip} {len(report.skipped)}"
    return f"{line} ({reasons})" if reasons else line


def owner_of(topic: str) -> TopicSpec:
    """The declared workflow topic whose dead letters `topic` (the topic or its `.dlq`) names."""
    name = topic.removesuffix(".dlq")
    try:
        owner = topic_named(name)
    except KeyError:
        raise NotADeadLetterTopic(f"{topic}: no such topic is declared in topology/topics.py") from None
    if owner not in WORKFLOW_TOPICS:
        raise NotADeadLetterTopic(f"{topic}: {name} has no dead-letter topic")
    return owner


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


def refusal(letter: DeadLetter, owner: TopicSpec) -> Skipped | None:
    """Why `letter`, a dead letter of `owner`, can never be redriven as it is; None if it can."""
    named = letter.original_topic
    if named != owner.name:
        declared = any(topic.name == named for topic in ALL_TOPICS)
        where = f"{named}, another topic" if declared else f"{named!r}, which is not a declared topic"
        return Skipped(letter, SkipReason.OTHER_TOPIC, f"its original topic is {where}; it is not sent there")
    coordinates = (letter.header("dlq.original.partition"), letter.header("dlq.original.offset"))
    if not all(part.isdigit() for part in coordinates):
        return Skipped(letter, SkipReason.NO_ORIGINAL, f"no original partition/offset ({'/'.join(coordinates)!r})")
    if letter.has_header(TRUNCATED_HEADER):
        note = letter.header(TRUNCATED_HEADER)
        return Skipped(letter, SkipReason.TRUNCATED, f"cut down to fit ({note}); the original is {letter.original}")
    return None


def candidates(
    letters: Iterable[DeadLetter], wanted: Filter, owner: TopicSpec
) -> tuple[list[DeadLetter], list[Skipped]]:
    """The wanted letters that could go back to `owner`, and those refused."""
    sendable: list[DeadLetter] = []
    refused: list[Skipped] = []
    for letter in letters:
        if not wanted(letter):
            continue
        skipped = refusal(letter, owner)
        if skipped is None:
            sendable.append(letter)
        else:
            refused.append(skipped)
    return sendable, refused


def choose(sendable: Iterable[DeadLetter], done: set[str]) -> tuple[list[DeadLetter], list[Skipped]]:
    """One letter per original not yet redriven, the first of each; the others skipped."""
    chosen: dict[str, DeadLetter] = {}
    skipped: list[Skipped] = []
    for letter in sendable:
        if letter.original in done:
            skipped.append(Skipped(letter, SkipReason.ALREADY_REDRIVEN))
        elif letter.original in chosen:
            detail = f"same original as the letter at offset {chosen[letter.original].offset}, sent once"
            skipped.append(Skipped(letter, SkipReason.SAME_ORIGINAL, detail))
        else:
            chosen[letter.original] = letter
    return list(chosen.values()), skipped


def redrive_transactional_id(dead_letter_topic: str) -> str:
    """One per dead-letter topic, whoever redrives it: a redrive that starts fences one still running."""
    return f"oms-dlq-redrive-{dead_letter_topic}"


def redrive_report(
    settings: Settings, topic: str, wanted: Filter, dry_run: bool = False, progress: Bars | bool | None = False
) -> RedriveReport:
    """Re-produce the wanted dead letters' originals not yet redriven, each once, to the topic whose dead
    letters they are; what was sent and what was skipped, with why. `progress`: bars of the reading and sending.

    Raises `RedriveFenced` if another redrive of the same topic started meanwhile (nothing of this one is
    then visible), `NotADeadLetterTopic` for a topic that has no declared dead letters."""
    owner = owner_of(topic)
    dlq = owner.dead_letter_topic.name
    with bars_for(progress) as bars:
        reading = bars.bar(f"reading {dlq}")
        sendable, refused = candidates(dead_letters(settings, dlq), wanted, owner)
        reading.done()
        if not sendable:
            return RedriveReport(dlq, [], refused)
        if dry_run:
            chosen, skipped = choose(sendable, _redriven(settings, bars))
            return RedriveReport(dlq, chosen, refused + skipped)
        producer = Producer(
            {
                **settings.producer_config(),
                "transactional.id": redrive_transactional_id(dlq),
                "transaction.timeout.ms": settings.transaction_timeout_ms,
                "logger": logger,
            }
        )
        try:
            # Fence first, then read: whatever an earlier redrive of this topic committed is in `redriven`, and
            # whatever it has not committed yet it never will.
            producer.init_transactions(TRANSACTION_TIMEOUT_S)
            chosen, skipped = choose(sendable, _redriven(settings, bars))
            if chosen:
                sending = bars.bar(f"redriving to {owner.name}", total=len(chosen))
                producer.begin_transaction()
                for letter in chosen:
                    producer.produce(owner.name, key=letter.key, value=letter.value, headers=letter.original_headers())
                    producer.produce(DEAD_LETTERS_REDRIVEN.name, key=letter.original.encode(), value=b"redriven")
                    sending.advance()
                producer.commit_transaction(TRANSACTION_TIMEOUT_S)
        except KafkaException as failure:
            if is_fenced(failure):
                raise RedriveFenced(dlq) from failure
            if failure.args and isinstance(failure.args[0], KafkaError) and failure.args[0].txn_requires_abort():
                producer.abort_transaction(TRANSACTION_TIMEOUT_S)
            raise
    return RedriveReport(dlq, chosen, refused + skipped)


def _redriven(settings: Settings, bars: Bars) -> set[str]:
    reading = bars.bar(f"reading {DEAD_LETTERS_REDRIVEN.name}")
    done = redriven(settings)
    reading.done()
    return done


def redrive(settings: Settings, topic: str, wanted: Filter, dry_run: bool = False) -> list[DeadLetter]:
    """The letters `redrive_report` sends back (or would, with `dry_run`)."""
    return redrive_report(settings, topic, wanted, dry_run).sent


def is_fenced(failure: KafkaException) -> bool:
    """Whether a newer producer with the same transactional id took over (librdkafka reports it as fatal)."""
    error = failure.args[0] if failure.args else None
    fenced = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)
    return isinstance(error, KafkaError) and error.code() in fenced
