"""The tracker as a declared processor: it folds only records declared for their topic and keyed by their order,
publishes the order's timeline with its summary in the headers, and a record it cannot fold or publish is its
dead letter, never a stop."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from processors.runtime.cloudevents import header
from processors.runtime.contract import BreachOfContract, TopicContract
from processors.runtime.deadletters import Received
from processors.runtime.encoder import Encoder
from processors.runtime.inprocess import memory_registry
from processors.runtime.memory import MemoryState
from processors.runtime.metrics import ACTIVITY_SECONDS
from processors.runtime.records import Emit, Outgoing
from processors.runtime.spec import stage_of
from processors.runtime.stage import Outcome, RecordStage
from processors.tracking.processor import OTHER_ACTIVITY, SPEC, TIMELINE, observe
from processors.tracking.view import PROGRESS_HEADER, SAGA_HEADER, STATUS_HEADER, progress_at
from schemas.models import (
    AvroRecord,
    Money,
    OrderTimeline,
    PaymentProcessed,
    RetrySaga,
    RoutingSlipActivityCompleted,
    RoutingSlipActivityFaulted,
)
from schemas.serde import RecordCodec
from tests.factories import NOW, a_valid_order
from topology.settings import Settings
from topology.topics import (
    ORDERS_COMMANDS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
    TRACKING_ORDERS,
    TopicSpec,
)


def charged(order_id: str) -> PaymentProcessed:
    return PaymentProcessed(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        amount=Money(amount_minor=100, currency="EUR"),
        charges=[],
    )


def refusal(topic: TopicSpec, key: bytes | None, record: AvroRecord) -> str | None:
    """Why the tracker's contract for `topic` refuses `record` under `key`; None when it may fold it."""
    try:
        contract = TopicContract(topic)
        contract.check_type(record.AVRO_NAME, [])
        contract.check_record(key, record)
    except BreachOfContract as breach:
        return str(breach)
    return None


def test_a_record_declared_for_its_topic_and_keyed_by_its_order_is_folded() -> None:
    placed = a_valid_order(order_id="o-1")

    assert refusal(ORDERS_COMMANDS, b"o-1", placed) is None


def test_a_record_of_a_type_not_declared_for_its_topic_is_refused() -> None:
    payment = charged("o-1")

    assert refusal(ORDERS_COMMANDS, b"o-1", payment) == (
        "oms.payments.PaymentProcessed is not a record type of oms.orders.commands"
    )
    assert refusal(PAYMENTS_EVENTS, b"o-1", payment) is None


def test_a_record_keyed_other_than_by_its_order_is_refused() -> None:
    placed = a_valid_order(order_id="o-1")

    assert "key 'o-2', where oms.orders.commands is keyed by" in str(refusal(ORDERS_COMMANDS, b"o-2", placed))
    assert "key '\ufffd'" in str(refusal(ORDERS_COMMANDS, b"\xff", placed))
    assert "no key" in str(refusal(ORDERS_COMMANDS, None, placed))


def completed(activity: str, duration_ms: int = 1200) -> RoutingSlipActivityCompleted:
    return RoutingSlipActivityCompleted(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=NOW,
        tracking_number=uuid.uuid4(),
        activity=activity,
        duration_ms=duration_ms,
    )


def test_a_made_up_activity_is_timed_under_one_label_not_a_label_of_its_own() -> None:
    timeline = OrderTimeline(
        event_id=uuid.uuid4(), order_id="o-1", occurred_at=NOW, status="in-flight", last_progress_at=NOW, steps=[]
    )
    made_up = [f"made-up-{index}" for index in range(50)]
    before = ACTIVITY_SECONDS.labels(OTHER_ACTIVITY)._sum.get()

    for activity in ["pick", *made_up]:
        observe(completed(activity), timeline, timeline)

    labels = {sample.labels.get("activity") for metric in REGISTRY.collect() for sample in metric.samples}
    assert "pick" in labels and OTHER_ACTIVITY in labels
    assert not labels & set(made_up)
    assert ACTIVITY_SECONDS.labels(OTHER_ACTIVITY)._sum.get() == pytest.approx(before + 50 * 1.2)


class Tracker:
    """The tracker's stage over an in-memory registry, one state per order, as it runs alone."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.registry = memory_registry()
        self.stage: RecordStage = stage_of(SPEC, SPEC.streams[0], settings or Settings(), self.registry)
        self.states: dict[str, MemoryState] = {}

    def message(self, topic: TopicSpec, record: AvroRecord, headers: tuple[tuple[str, bytes], ...] = ()) -> Received:
        written = Encoder(self.registry, "oms.test")(Emit(topic, record.order_id, record))  # type: ignore[attr-defined]
        return Received(topic.name, 0, 1, 0, written.key, written.value, (*written.headers, *headers))

    def take(self, message: Received) -> tuple[list[Outgoing], Outcome]:
        key = (message.key or b"").decode()
        return self.stage.process(message, self.states.setdefault(key, MemoryState()))


def test_each_change_of_an_order_publishes_its_timeline_with_where_it_stands_in_the_headers() -> None:
    tracker = Tracker()
    placed = a_valid_order(order_id="o-1")

    [view], outcome = tracker.take(tracker.message(ORDERS_COMMANDS, placed))
    [again], _ = tracker.take(tracker.message(PAYMENTS_EVENTS, charged("o-1")))

    assert outcome is Outcome.OK
    assert view.topic == again.topic == TRACKING_ORDERS.name and view.key == again.key == b"o-1"
    timeline = RecordCodec(tracker.registry, TRACKING_ORDERS.name).decode_as(again.value or b"", OrderTimeline)
    assert [step.name for step in timeline.steps][:2] == ["intake", "payment"]
    headers = again.headers
    assert header(headers, STATUS_HEADER) == "in-flight" and header(headers, SAGA_HEADER) == ""
    assert progress_at(header(headers, PROGRESS_HEADER) or "") == timeline.last_progress_at
    kept = TIMELINE.load(tracker.states["o-1"])
    assert kept is not None and len(kept.steps) == len(timeline.steps)


def test_an_event_folded_twice_publishes_nothing_the_second_time() -> None:
    tracker = Tracker()
    message = tracker.message(ORDERS_COMMANDS, a_valid_order(order_id="o-1"))

    tracker.take(message)
    published, outcome = tracker.take(message)

    assert published == [] and outcome is Outcome.OK


def test_a_retry_command_is_passed_over_by_its_schema_and_a_header_claiming_one_is_read() -> None:
    tracker = Tracker()
    claiming = (("ce_type", b"oms.RetrySaga"),)
    retry = RetrySaga(event_id=uuid.uuid4(), order_id="o-1", occurred_at=NOW)

    assert tracker.take(tracker.message(ORDERS_COMMANDS, retry)) == ([], Outcome.PASSED_OVER)
    [letter], outcome = tracker.take(tracker.message(ORDERS_COMMANDS, a_valid_order(order_id="o-1"), claiming))
    assert outcome is Outcome.DEAD_LETTERED
    assert "the ce_type header says oms.RetrySaga" in (header(letter.headers, "dlq.error.message") or "")


def test_a_duration_no_clock_can_hold_is_the_records_dead_letter_not_a_stop() -> None:
    tracker = Tracker()
    tracker.take(tracker.message(ORDERS_COMMANDS, a_valid_order(order_id="o-1")))

    [letter], outcome = tracker.take(tracker.message(ROUTING_SLIPS_EVENTS, completed("pick", duration_ms=10**14)))
    [view], after = tracker.take(tracker.message(PAYMENTS_EVENTS, charged("o-1")))

    assert outcome is Outcome.DEAD_LETTERED and letter.topic == f"{ROUTING_SLIPS_EVENTS.name}.dlq"
    assert after is Outcome.OK and view.topic == TRACKING_ORDERS.name


def test_a_timeline_too_large_to_publish_dead_letters_the_event_that_made_it_and_keeps_the_one_before() -> None:
    tracker = Tracker(Settings(max_message_bytes=200_000))
    tracker.take(tracker.message(ORDERS_COMMANDS, a_valid_order(order_id="o-1")))
    slip = uuid.uuid4()

    def faulted(index: int) -> RoutingSlipActivityFaulted:
        return RoutingSlipActivityFaulted(
            event_id=uuid.uuid4(),
            order_id="o-1",
            occurred_at=NOW,
            tracking_number=slip,
            activity=f"made-up-{index}",
            reason="x" * 2000,
        )

    for index in range(150):  # each reason is within its bound; a step each, together they outgrow a message
        published, outcome = tracker.take(tracker.message(ROUTING_SLIPS_EVENTS, faulted(index)))
        if outcome is Outcome.DEAD_LETTERED:
            break

    assert outcome is Outcome.DEAD_LETTERED
    assert "a message may have" in (header(published[0].headers, "dlq.error.message") or "")
    kept = TIMELINE.load(tracker.states["o-1"])
    assert kept is not None and len(kept.steps) == 1 + index  # intake, and every fault before the one refused
