"""Pausing through an outage (the timers, the tracker): the same call again while the world is down, a bad
message's failure at once, and the process's exit status when an outage outlasts the retries or meets a commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from quixstreams.kafka.exceptions import KafkaProducerDeliveryError

from processors.adapters.sqlite_file import SqliteFile
from processors.runtime.errors import OUTAGE_EXIT_CODE, is_outage
from processors.runtime.lifecycle import exit_on_outage
from processors.runtime.outages import through_outages
from processors.runtime.retries import RetryPolicy

NO_WAIT = RetryPolicy(attempts=3, first_delay_s=0, max_delay_s=0)


def test_an_outage_is_waited_out_and_the_same_call_made_again() -> None:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert through_outages(call, "a test", NO_WAIT) == "done"
    assert len(calls) == 3


def test_an_outage_that_outlasts_the_retries_propagates() -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        through_outages(call, "a test", NO_WAIT)
    assert len(calls) == NO_WAIT.attempts


def test_a_failure_that_is_not_an_outage_is_not_tried_again() -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise ValueError("a bad record")

    with pytest.raises(ValueError, match="a bad record"):
        through_outages(call, "a test", NO_WAIT)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "code", [KafkaError._MSG_TIMED_OUT, KafkaError._ALL_BROKERS_DOWN, KafkaError.NOT_ENOUGH_REPLICAS]
)
def test_a_broker_error_quix_streams_raises_at_commit_ends_the_run_as_an_outage(code: int) -> None:
    def commit() -> None:
        raise KafkaProducerDeliveryError(KafkaError(code))

    with pytest.raises(SystemExit) as ended:
        exit_on_outage("payments", commit)

    assert ended.value.code == OUTAGE_EXIT_CODE


def test_a_message_the_broker_refuses_for_itself_is_no_outage() -> None:
    refused = KafkaProducerDeliveryError(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))

    assert not is_outage(refused)


def test_a_ledger_that_is_no_database_stops_the_processor_as_an_outage_does(tmp_path: Path) -> None:
    ledger = tmp_path / "payments.sqlite"
    ledger.write_bytes(b"not a database " * 1000)

    with pytest.raises(sqlite3.DatabaseError) as broken:
        SqliteFile(ledger, "CREATE TABLE IF NOT EXISTS t (x)")

    assert is_outage(broken.value)
    assert not is_outage(sqlite3.IntegrityError("UNIQUE constraint failed"))
