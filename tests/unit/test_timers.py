from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable, Iterable
from typing import cast

import pytest
from confluent_kafka import Message
from confluent_kafka.schema_registry.error import SchemaRegistryError
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from processors import timers
from processors.runtime.encoder import Encoder
from processors.runtime.errors import is_outage
from processors.runtime.inprocess import memory_registry
from processors.runtime.records import Emit, Outgoing
from processors.runtime.tracing import TRACEPARENT, parent_of, trace_id_of
from processors.timers import Cancelled, PendingTimers, TimerService, UnusableTimer, firing, read_timer
from schemas.models import AvroRecord, TimerScheduled
from schemas.serde import RecordCodec
from tests.factories import NOW, record_of
from topology.settings import get_settings
from topology.topics import SAGA_TIMERS, TIMERS


def timer(timer_id: str, in_seconds: float) -> TimerScheduled:
    return TimerScheduled(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=NOW,
        timer_id=timer_id,
        due_at=NOW + datetime.timedelta(seconds=in_seconds),
        fire_topic="oms.sagas.timers",
        purpose="refund-timeout",
    )


def test_due_timers_come_earliest_first_and_later_ones_wait() -> None:
    pending = PendingTimers()
    for timer_id, seconds in (("b", 2), ("a", 1), ("c", 10)):
        pending.schedule(timer(timer_id, seconds))

    assert [t.timer_id for t in pending.due(NOW + datetime.timedelta(seconds=5))] == ["a", "b"]
    assert pending.next_due() == NOW + datetime.timedelta(seconds=1)


def test_a_cancelled_timer_never_comes_due() -> None:
    pending = PendingTimers()
    pending.schedule(timer("a", 1))
    pending.cancel("a")

    assert pending.due(NOW + datetime.timedelta(seconds=5)) == []
    assert pending.next_due() is None


def test_scheduling_a_timer_again_replaces_it() -> None:
    pending = PendingTimers()
    pending.schedule(timer("a", 1))
    pending.schedule(timer("a", 30))

    assert pending.due(NOW + datetime.timedelta(seconds=5)) == []
    assert pending.next_due() == NOW + datetime.timedelta(seconds=30)


def test_a_timer_read_twice_comes_due_once() -> None:
    pending = PendingTimers()
    pending.schedule(timer("a", 1))
    pending.schedule(timer("a", 1))

    assert [t.timer_id for t in pending.due(NOW + datetime.timedelta(seconds=5))] == ["a"]


def test_a_firing_derives_its_id_from_the_timer() -> None:
    scheduled = timer("a", 1)

    first, again = firing(scheduled, NOW), firing(scheduled, NOW + datetime.timedelta(seconds=1))

    assert first.event_id == again.event_id and first.timer_id == "a" and first.purpose == "refund-timeout"


# --- what the service may fire, and what goes to oms.timers.dlq -------------------------------------


def decoding(record: AvroRecord) -> Callable[[bytes], AvroRecord]:
    return lambda value: record


def test_a_timer_keyed_by_its_id_that_fires_to_the_sagas_is_scheduled() -> None:
    scheduled = timer("o-1/cancellation", 1)

    assert read_timer(b"o-1/cancellation", b"...", decoding(scheduled)) == scheduled


def test_a_tombstone_cancels_its_timer_and_one_with_a_key_no_timer_has_cancels_nothing() -> None:
    assert read_timer(b"o-1/cancellation", None, decoding(timer("x", 1))) == Cancelled("o-1/cancellation")
    assert read_timer(b"\xff\xfe", None, decoding(timer("x", 1))) == Cancelled(None)


def test_a_timer_that_would_fire_to_another_topic_is_unusable() -> None:
    elsewhere = timer("t-1", 1).model_copy(update={"fire_topic": "oms.orders.events"})

    with pytest.raises(UnusableTimer, match=re.escape("would fire to 'oms.orders.events', not oms.sagas.timers")):
        read_timer(b"t-1", b"...", decoding(elsewhere))


def test_a_timer_whose_key_is_not_utf8_is_unusable_before_it_is_decoded() -> None:
    def never(value: bytes) -> AvroRecord:
        raise AssertionError("not decoded")

    with pytest.raises(UnusableTimer, match="UTF-8"):
        read_timer(b"\xff\xfe", b"...", never)


def test_a_timer_keyed_other_than_by_its_id_is_unusable() -> None:
    with pytest.raises(UnusableTimer, match="keyed 'other'"):
        read_timer(b"other", b"...", decoding(timer("t-1", 1)))


def test_a_record_of_another_type_is_unusable() -> None:
    with pytest.raises(UnusableTimer, match=re.escape("not oms.sagas.TimerFired")):
        read_timer(b"t-1", b"...", decoding(firing(timer("t-1", 1), NOW)))


def test_an_outage_while_decoding_is_no_verdict_on_the_timer() -> None:
    def registry_down(value: bytes) -> AvroRecord:
        raise SchemaRegistryError(503, 50301, "unavailable")

    with pytest.raises(SchemaRegistryError) as raised:
        read_timer(b"t-1", b"...", registry_down)

    assert is_outage(raised.value)


def test_an_unusable_record_under_a_key_that_is_not_utf8_is_replaced_by_a_tombstone_of_that_key() -> None:
    service = TimerService(get_settings())

    replacement = service._replacement(b"\xff\xfe")

    assert (replacement.topic, replacement.key, replacement.value) == ("oms.timers", b"\xff\xfe", None)


def as_json(emit: Emit) -> Outgoing:
    return Outgoing(emit.topic.name, emit.key.encode(), record_of(emit).model_dump_json().encode(), ())


def test_an_unusable_record_over_a_pending_timer_is_replaced_by_that_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    service = TimerService(get_settings())
    pending = timer("o-1/cancellation", 30)
    service.pending.schedule(pending)
    monkeypatch.setattr(service, "_encode", as_json)

    replacement = service._replacement(b"o-1/cancellation")

    assert replacement.key == b"o-1/cancellation"
    assert replacement.value == pending.model_dump_json().encode()


class TimerMessage:
    """A record of `oms.timers` as the consumer hands it over."""

    def __init__(self, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self._value, self._headers = value, headers

    def key(self) -> bytes:
        return b"o-1/cancellation"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def partition(self) -> int:
        return 3


def test_a_fired_timer_continues_the_trace_of_the_message_that_scheduled_it() -> None:
    registry = memory_registry()
    service = TimerService(get_settings())
    service._codec = RecordCodec(registry, TIMERS.name)
    service._encode = Encoder(registry, "oms.timers")
    scheduled = timer("o-1/cancellation", -1)
    traceparent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    value = RecordCodec(registry, TIMERS.name).encode(scheduled)
    service._take(
        cast(Message, TimerMessage(value, [("ce_type", b"oms.TimerScheduled"), ("traceparent", traceparent)]))
    )

    [due] = service.pending.due(NOW)
    (fired, _), _ = service._firing(due, NOW)

    span = parent_of(fired.headers)
    assert span is not None and span.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert span.span_id != "b7ad6b7169203331"


def test_a_fired_timer_is_handled_in_a_process_span_of_its_topic_and_its_firing_sent_under_it(
    spans: InMemorySpanExporter,
) -> None:
    registry = memory_registry()
    service = TimerService(get_settings())
    service._codec = RecordCodec(registry, TIMERS.name)
    service._encode = Encoder(registry, "oms.timers")
    traceparent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    value = RecordCodec(registry, TIMERS.name).encode(timer("o-1/cancellation", -1))
    service._take(cast(Message, TimerMessage(value, [("traceparent", traceparent)])))

    [due] = service.pending.due(NOW)
    (fired, _), _ = service._firing(due, NOW)

    sent, process = spans.get_finished_spans()
    assert (process.name, process.kind) == (f"process {TIMERS.name}", SpanKind.CONSUMER)
    assert process.parent is not None and format(process.parent.span_id, "016x") == "b7ad6b7169203331"
    attributes = process.attributes or {}
    assert attributes["messaging.consumer.group.name"] == timers.PROCESSOR
    assert attributes["messaging.destination.partition.id"] == "3"
    assert (attributes["messaging.kafka.message.key"], attributes["oms.order_id"]) == ("o-1/cancellation", "o-1")
    assert (sent.name, sent.kind) == (f"send {SAGA_TIMERS.name}", SpanKind.PRODUCER)
    assert sent.parent is not None and process.context is not None
    assert sent.parent.span_id == process.context.span_id
    named = parent_of(fired.headers)
    assert sent.context is not None and named is not None and named.span_id == format(sent.context.span_id, "016x")


def test_a_fired_timer_scheduled_without_trace_context_starts_a_trace() -> None:
    service = TimerService(get_settings())
    service._encode = Encoder(memory_registry(), "oms.timers")
    service.pending.schedule(timer("o-1/cancellation", -1))

    (fired, _), _ = service._firing(timer("o-1/cancellation", -1), NOW)

    assert trace_id_of(fired.headers) is not None


def test_a_fired_or_cancelled_timer_leaves_no_trace_context_behind() -> None:
    pending = PendingTimers()
    pending.schedule(timer("t-1", 1), ((TRACEPARENT, b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),))

    pending.cancel("t-1")

    assert pending.traces == {}


def test_timers_due_together_fire_in_one_transaction_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    service = TimerService(get_settings())
    service._encode = Encoder(memory_registry(), "oms.timers")
    transactions: list[list[str]] = []

    def commit(outgoing: Callable[[], Iterable[tuple[Outgoing, int | None]]], what: str) -> None:
        transactions.append([message.topic for message, _ in outgoing()])

    monkeypatch.setattr(service, "_commit", commit)
    monkeypatch.setattr(timers, "FIRE_BATCH", 2)
    for number in range(3):
        service.pending.schedule(timer(f"o-{number}/cancellation", -1))
    service.pending.schedule(timer("o-9/cancellation", 10**9))  # not due for decades

    service._fire_due()

    fired_and_tombstone = [SAGA_TIMERS.name, TIMERS.name]
    assert transactions == [fired_and_tombstone * 2, fired_and_tombstone]
    assert list(service.pending.by_id) == ["o-9/cancellation"]
