"""The dashboard's follower: nothing a record carries and no outage stops it, and the view says when it is
stale instead of serving old data silently."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from ops.dashboard.view import Delivered, Follower, View
from processors.tracking.timeline import new_timeline
from processors.tracking.view import SAGA_HEADER, STATUS_HEADER
from schemas.models import OrderTimeline
from schemas.serde import UndecodableRecord
from tests.factories import NOW

TOPIC = "oms.tracking.orders"


@dataclass
class Record:
    offset_: int
    value_: bytes | None
    key_: bytes | None = None
    error_: KafkaError | None = None
    headers_: list[tuple[str, bytes]] | None = None

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self.headers_

    def error(self) -> KafkaError | None:
        return self.error_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.offset_


@dataclass
class FakeReader:
    """One partition's records, handed out from the assigned offset on; `fail` runs before each consume."""

    records: list[Record]
    fail: Callable[[], None] = lambda: None
    assigned: list[int] = field(default_factory=list)
    position: int = 0

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None})})

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.position = max(partitions[0].offset, 0)
        self.assigned.append(partitions[0].offset)

    def consume(self, num_messages: int, timeout: float) -> list[Delivered]:
        self.fail()
        found = [record for record in self.records if record.offset_ >= self.position]
        self.position = max((record.offset_ + 1 for record in found), default=self.position)
        if not found:
            time.sleep(0.01)
        return list(found)

    def close(self) -> None:
        pass


def encode(timeline: OrderTimeline) -> bytes:
    return timeline.model_dump_json().encode()


def decode(value: bytes) -> OrderTimeline:
    try:
        return OrderTimeline.model_validate(json.loads(value))
    except ValueError as error:
        raise UndecodableRecord(str(error)) from error


def timeline(order_id: str) -> OrderTimeline:
    return new_timeline(order_id, NOW)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"not within 10s: {what}"
        time.sleep(0.005)


def following(view: View, readers: list[FakeReader]) -> Follower:
    opened = iter(readers)
    follower = Follower(TOPIC, lambda: next(opened), view, first_backoff_s=0.001)
    follower.start()
    return follower


def test_an_undecodable_record_is_skipped_counted_and_the_next_one_is_read() -> None:
    view = View(decode)
    reader = FakeReader([Record(0, b"\x00\x00\x00\x00\x07garbage"), Record(1, encode(timeline("after")))])
    follower = following(view, [reader])
    try:
        wait_for(lambda: view.get("after") is not None, "the record after the garbage")
        health = view.health_json()
        assert health["skipped"] == 1
        assert health["last_skipped"].startswith(f"{TOPIC}/0/0: UndecodableRecord")
        assert health["stale_since"] is None
        assert follower.is_alive()
    finally:
        follower.stop()


def test_an_outage_while_decoding_marks_the_view_stale_and_retries_the_same_record() -> None:
    registry_up = threading.Event()
    attempts: list[bytes] = []

    def decode_when_up(value: bytes) -> OrderTimeline:
        attempts.append(value)
        if not registry_up.is_set():
            raise httpx.ConnectError("registry down")
        return decode(value)

    view = View(decode_when_up)
    value = encode(timeline("waited"))
    follower = following(view, [FakeReader([Record(0, value)])])
    try:
        wait_for(lambda: len(attempts) >= 3, "retries of the record")
        health = view.health_json()
        assert health["stale_since"] is not None
        assert "outage" in health["problem"] and "registry down" in health["problem"]
        assert view.get("waited") is None
        registry_up.set()
        wait_for(lambda: view.get("waited") is not None, "the record, once the registry is back")
        assert set(attempts) == {value}, "the same record, retried"
        assert view.health_json() == {"stale_since": None, "problem": None, "skipped": 0, "last_skipped": None}
    finally:
        follower.stop()


def test_a_failing_reader_is_reopened_where_it_left_off_and_the_view_is_stale_meanwhile() -> None:
    view = View(decode)
    broken = threading.Event()

    def break_once_read() -> None:
        if view.get("first") is not None and not broken.is_set():
            broken.set()
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker gone"))

    first = FakeReader([Record(0, encode(timeline("first")))], fail=break_once_read)
    again = FakeReader([Record(0, encode(timeline("first"))), Record(1, encode(timeline("second")))])
    stale_seen: list[Any] = []
    original_stale = view.stale

    def recording_stale(problem: str) -> None:
        original_stale(problem)
        stale_seen.append(problem)

    view.stale = recording_stale  # type: ignore[method-assign]
    follower = following(view, [first, again])
    try:
        wait_for(lambda: view.get("second") is not None, "the record read by the reopened reader")
        assert again.assigned == [1], "resumed after the last record read, not from the beginning"
        assert any("broker gone" in problem for problem in stale_seen)
        assert view.health_json()["stale_since"] is None
    finally:
        follower.stop()


def test_a_tombstone_removes_the_order_from_the_view() -> None:
    view = View(decode)
    reader = FakeReader(
        [Record(0, encode(timeline("gone"))), Record(1, None, key_=b"gone"), Record(2, encode(timeline("kept")))]
    )
    follower = following(view, [reader])
    try:
        wait_for(lambda: view.get("kept") is not None, "the last record")
        assert view.get("gone") is None
    finally:
        follower.stop()


def test_an_unexpected_failure_does_not_end_the_follower() -> None:
    view = View(decode)
    readers = iter([FakeReader([Record(0, encode(timeline("read")))])])

    def open_reader() -> FakeReader:
        if not view.health_json()["stale_since"]:
            view.stale("not yet")  # the first attempt fails before the view was ever current
            raise RuntimeError("a bug in a library")
        return next(readers)

    follower = Follower(TOPIC, open_reader, view, first_backoff_s=0.001)
    follower.start()
    try:
        wait_for(lambda: view.get("read") is not None, "the record read after the failure")
        assert follower.is_alive()
    finally:
        follower.stop()


def test_the_fleet_answer_says_since_when_the_view_is_stale() -> None:
    view = View(decode)
    assert view.fleet(datetime.timedelta(minutes=5))["view"]["stale_since"] is None
    view.stale("decoding: outage: ConnectError: registry down")
    stale = view.fleet(datetime.timedelta(minutes=5))["view"]
    assert stale["stale_since"] is not None and stale["problem"].endswith("registry down")
    view.current()
    assert view.fleet(datetime.timedelta(minutes=5))["view"]["stale_since"] is None


def test_a_record_its_headers_mark_completed_is_kept_undecoded_until_it_is_asked_for() -> None:
    decoded: list[bytes] = []

    def counting(value: bytes) -> OrderTimeline:
        decoded.append(value)
        return decode(value)

    view = View(counting)
    done = timeline("done").model_copy(update={"status": "completed"})
    marked = [(STATUS_HEADER, b"completed"), (SAGA_HEADER, b"")]
    unfinished = encode(timeline("open"))
    reader = FakeReader([Record(0, encode(done), b"done", headers_=marked), Record(1, unfinished, b"open")])
    follower = following(view, [reader])
    try:
        wait_for(lambda: "open" in view.active, "the unfinished order")
        assert decoded == [unfinished], "only the unfinished order was decoded"
        assert view.fleet(datetime.timedelta(seconds=30))["counts"]["completed"] == 1
        found = view.get("done")
        assert found is not None and found.status == "completed"
    finally:
        follower.stop()
