"""Which dead letters a redrive sends back and why the others stay, how it tells a fence, and what `oms dlq
redrive` prints: without a broker."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest
from confluent_kafka import KafkaError, KafkaException

from ops import cli, deadletters
from ops.deadletters import (
    DeadLetter,
    NotADeadLetterTopic,
    RedriveFenced,
    RedriveReport,
    Skipped,
    SkipReason,
    candidates,
    choose,
    is_fenced,
    matching,
    owner_of,
    redrive_transactional_id,
    summary,
)
from topology.settings import Settings
from topology.topics import DEAD_LETTERS_REDRIVEN, ORDERS_COMMANDS, PAYMENTS_EVENTS

everything = matching()


def letter(
    offset: int,
    original_offset: str = "7",
    topic: str = ORDERS_COMMANDS.name,
    processor: str = "oms.intake",
    key: bytes = b"o-1",
    extra: tuple[tuple[str, bytes | None], ...] = (),
) -> DeadLetter:
    return DeadLetter(
        partition=0,
        offset=offset,
        key=key,
        value=b"original",
        headers=[
            ("trace", b"kept"),
            ("dlq.original.topic", topic.encode()),
            ("dlq.original.partition", b"2"),
            ("dlq.original.offset", original_offset.encode()),
            ("dlq.error.class", b"schemas.serde.UndecodableRecord"),
            ("dlq.error.message", b"magic byte"),
            ("dlq.processor", processor.encode()),
            *extra,
        ],
    )


def test_a_topic_or_its_dead_letter_topic_names_the_declared_owner() -> None:
    assert owner_of(ORDERS_COMMANDS.name) == ORDERS_COMMANDS
    assert owner_of(ORDERS_COMMANDS.dead_letter_topic.name) == ORDERS_COMMANDS


@pytest.mark.parametrize("topic", ["oms.nowhere", "oms.nowhere.dlq", DEAD_LETTERS_REDRIVEN.name])
def test_a_topic_without_declared_dead_letters_is_refused(topic: str) -> None:
    with pytest.raises(NotADeadLetterTopic):
        owner_of(topic)


def test_a_letter_naming_another_topic_is_refused_declared_or_not() -> None:
    declared, undeclared, mine = (
        letter(1, topic=PAYMENTS_EVENTS.name),
        letter(2, topic="oms.elsewhere"),
        letter(3),
    )

    sendable, refused = candidates([declared, undeclared, mine], everything, ORDERS_COMMANDS)

    assert sendable == [mine]
    assert [(skipped.letter, skipped.reason) for skipped in refused] == [
        (declared, SkipReason.OTHER_TOPIC),
        (undeclared, SkipReason.OTHER_TOPIC),
    ]
    assert PAYMENTS_EVENTS.name in str(refused[0]) and "not a declared topic" in str(refused[1])


@pytest.mark.parametrize("original_offset", ["", "-1", "7; drop"])
def test_a_letter_without_usable_coordinates_is_refused(original_offset: str) -> None:
    _, [refused] = candidates([letter(1, original_offset=original_offset)], everything, ORDERS_COMMANDS)

    assert refused.reason == SkipReason.NO_ORIGINAL


def test_a_letter_cut_down_to_fit_is_refused_with_where_its_original_is() -> None:
    cut = letter(1, extra=(("dlq.truncated", b"value: 1048000 bytes, the first 900000 kept"),))

    _, [refused] = candidates([cut], everything, ORDERS_COMMANDS)

    assert refused.reason == SkipReason.TRUNCATED
    assert f"{ORDERS_COMMANDS.name}/2/7" in str(refused)


def test_letters_the_filter_leaves_out_are_neither_sent_nor_skipped() -> None:
    sendable, refused = candidates(
        [letter(1, key=b"o-1"), letter(2, key=b"o-2", topic=PAYMENTS_EVENTS.name)], matching(key="o-3"), ORDERS_COMMANDS
    )

    assert sendable == [] and refused == []


def test_one_letter_per_original_not_yet_redriven_is_chosen() -> None:
    by_intake, by_sagas = letter(1, "7", processor="oms.intake"), letter(2, "7", processor="oms.sagas")
    earlier = letter(3, "5")

    chosen, skipped = choose([by_intake, by_sagas, earlier], done={f"{ORDERS_COMMANDS.name}/2/5"})

    assert chosen == [by_intake]
    assert [(s.letter, s.reason) for s in skipped] == [
        (by_sagas, SkipReason.SAME_ORIGINAL),
        (earlier, SkipReason.ALREADY_REDRIVEN),
    ]


def test_a_letter_is_read_by_the_dlq_headers_the_processor_appended_not_by_a_forged_copy_before_them() -> None:
    forged_first = [("dlq.original.offset", b"5"), ("dlq.processor", b"oms.forged")]
    genuine = letter(1, "7")
    carrying = replace(genuine, headers=[*forged_first, *genuine.headers])

    chosen, skipped = choose([carrying], done={f"{ORDERS_COMMANDS.name}/2/5"})

    assert (carrying.original, carrying.processor) == (f"{ORDERS_COMMANDS.name}/2/7", "oms.intake")
    assert chosen == [carrying] and skipped == []


def test_a_null_header_value_reads_as_empty_and_is_redriven_as_it_came() -> None:
    with_null = letter(1, extra=(("dlq.error.message", None), ("note", None)))

    assert with_null.header("dlq.error.message") == ""
    assert ("note", None) in with_null.original_headers()
    assert candidates([with_null], everything, ORDERS_COMMANDS)[0] == [with_null]


def test_every_redrive_of_one_dead_letter_topic_shares_a_transactional_id() -> None:
    dlq = ORDERS_COMMANDS.dead_letter_topic.name

    assert redrive_transactional_id(dlq) == redrive_transactional_id(dlq)
    assert redrive_transactional_id(dlq) != redrive_transactional_id(PAYMENTS_EVENTS.dead_letter_topic.name)


@pytest.mark.parametrize("code", [KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH])
def test_a_newer_producer_taking_over_is_a_fence(code: int) -> None:
    assert is_fenced(KafkaException(KafkaError(code, "fenced by newer producer instance", fatal=True)))


def test_other_producer_failures_are_not_a_fence() -> None:
    assert not is_fenced(KafkaException(KafkaError(KafkaError._TIMED_OUT, "commit timed out", retriable=True)))


def test_the_summary_counts_sent_and_skipped_by_reason() -> None:
    report = RedriveReport(
        "oms.orders.commands.dlq",
        sent=[letter(1)],
        skipped=[
            Skipped(letter(2), SkipReason.ALREADY_REDRIVEN),
            Skipped(letter(3), SkipReason.ALREADY_REDRIVEN),
            Skipped(letter(4), SkipReason.OTHER_TOPIC, "its original topic is oms.payments.events"),
        ],
    )

    assert summary(report) == (
        "oms.orders.commands.dlq: redrove 1, skipped 3 (2 already redriven, 1 original topic not this one)"
    )
    assert summary(RedriveReport("x.dlq", [], []), dry_run=True) == "x.dlq: would redrive 0, would skip 0"


def redrive_args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "topic": ORDERS_COMMANDS.name,
        "processor": None,
        "error": None,
        "key": None,
        "dry_run": False,
    }
    return argparse.Namespace(**(values | overrides))


def test_the_command_prints_each_letter_sent_each_refused_and_the_counts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = Skipped(letter(4), SkipReason.OTHER_TOPIC, "its original topic is oms.payments.events, another topic")
    report = RedriveReport(
        "oms.orders.commands.dlq", sent=[letter(1)], skipped=[Skipped(letter(2), SkipReason.ALREADY_REDRIVEN), foreign]
    )
    monkeypatch.setattr(deadletters, "redrive_report", lambda *args, **kwargs: report)

    assert cli.cmd_dlq_redrive(redrive_args(), Settings()) == 0

    assert capsys.readouterr().out.splitlines() == [
        "redrove oms.orders.commands/2/7 (key o-1): UndecodableRecord: magic byte",
        "skipped the letter at offset 4 (key o-1): its original topic is oms.payments.events, another topic",
        "oms.orders.commands.dlq: redrove 1, skipped 2 (1 already redriven, 1 original topic not this one)",
    ]


def test_the_command_fenced_by_another_redrive_says_so_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fenced(*args: object, **kwargs: object) -> RedriveReport:
        raise RedriveFenced("oms.orders.commands.dlq")

    monkeypatch.setattr(deadletters, "redrive_report", fenced)

    assert cli.cmd_dlq_redrive(redrive_args(), Settings()) == cli.REDRIVE_FENCED != 0

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("oms: another redrive of oms.orders.commands.dlq started and took over")
    assert "sent nothing" in err


def test_the_command_refuses_a_topic_without_dead_letters(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.cmd_dlq_redrive(redrive_args(topic="oms.nowhere"), Settings()) == 2

    assert "oms.nowhere: no such topic is declared" in capsys.readouterr().err


def test_the_command_escapes_what_a_record_could_make_a_terminal_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sneaky = letter(1, key=b"o-1\x1b]0;owned\x07\x1b[2J")
    monkeypatch.setattr(deadletters, "redrive_report", lambda *args, **kwargs: RedriveReport("x.dlq", [sneaky], []))

    cli.cmd_dlq_redrive(redrive_args(), Settings())

    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "(key o-1\\x1b]0;owned\\x07\\x1b[2J)" in out
