"""RecordStage, the step every processor is built from, on one key's state (no broker): what a message cannot
be used for becomes a dead letter returned with its outputs (so it leaves in the message's transaction) and
leaves nothing behind; an outage is retried in place and then raised, never dead-lettered; every message is
held to its topic's contract."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import replace

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from quixstreams import State

from processors.adapters.sqlite_file import BUSY_TIMEOUT_S
from processors.runtime.cloudevents import header
from processors.runtime.deadletters import Received, bounded
from processors.runtime.encoder import Encoder
from processors.runtime.errors import OUTAGE_EXIT_CODE
from processors.runtime.inprocess import memory_registry
from processors.runtime.lifecycle import exit_on_outage
from processors.runtime.memory import MemoryState
from processors.runtime.records import Emit, Outgoing
from processors.runtime.sizes import message_bytes
from processors.runtime.spec import stage_of
from processors.runtime.stage import Handler, Outcome, RecordStage
from processors.sagas import processor as sagas
from processors.sagas.cancellation import Phase
from schemas import models
from schemas.domains import AT_LEAST
from schemas.models import (
    AvroRecord,
    CancelOrder,
    Money,
    OrderRejected,
    PaymentProcessed,
    PlaceOrder,
    StockRequest,
    StockRequestKind,
)
from tests.factories import NOW, a_valid_order, order_created_from
from topology.settings import Settings
from topology.topics import (
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    STOCK_REQUESTS,
    TopicSpec,
)


@pytest.fixture(scope="module")
def registry() -> SchemaRegistryClient:
    return memory_registry()


class Recorder:
    """A handler that remembers what it was given, writes `writes` to the state, and emits `emits`."""

    def __init__(self, emits: Iterable[Emit] = (), writes: dict[str, object] | None = None) -> None:
        self.records: list[AvroRecord] = []
        self.emits = list(emits)
        self.writes = writes or {}

    def __call__(self, value: AvroRecord, state: State, message: Received) -> list[Emit]:
        self.records.append(value)
        for key, written in self.writes.items():
            state.set(key, written)
        return self.emits


class Failing(Recorder):
    def __init__(self, error: Exception, writes: dict[str, object] | None = None, times: int = 1_000) -> None:
        super().__init__(writes=writes)
        self.error, self.times = error, times

    def __call__(self, value: AvroRecord, state: State, message: Received) -> list[Emit]:
        emits = super().__call__(value, state, message)
        if len(self.records) <= self.times:
            raise self.error
        return emits


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def a_stage(
    registry: SchemaRegistryClient,
    handle: Handler,
    topics: Iterable[TopicSpec] = (ORDERS_COMMANDS,),
    time: FakeTime | None = None,
    **settings: object,
) -> RecordStage:
    time = time or FakeTime()
    return RecordStage(
        "oms.test",
        topics,
        registry,
        handle,
        Settings(**settings),  # type: ignore[arg-type]
        handles=(PlaceOrder, StockRequest),
        sleep=time.sleep,
        clock=time.clock,
    )


def message(
    registry: SchemaRegistryClient,
    emit: Emit,
    *,
    topic: str | None = None,
    key: bytes | None = None,
    headers: dict[str, bytes] | None = None,
) -> Received:
    """`emit` as its processor would produce it, arriving on `topic` (its own unless given), optionally with
    another key or headers replaced."""
    sent = Encoder(registry, "oms.somebody")(emit)
    sent_headers = tuple((name, (headers or {}).get(name, value)) for name, value in sent.headers)
    return Received(topic or sent.topic, 2, 41, 1_000, key or sent.key, sent.value, sent_headers)


def place(order: PlaceOrder | None = None) -> Emit:
    order = order or a_valid_order("o-1")
    return Emit(ORDERS_COMMANDS, order.order_id, order)


def stock_request(quantity: int) -> Emit:
    request = StockRequest(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=NOW,
        request_id="r-1",
        kind=StockRequestKind.RESERVE,
        sku="SKU-MUG-01",
        quantity=quantity,
        line_count=1,
    )
    return Emit(STOCK_REQUESTS, request.sku, request)


def error_of(letter: Outgoing) -> str:
    return f"{header(letter.headers, 'dlq.error.class')}: {header(letter.headers, 'dlq.error.message')}"


def assert_dead_letter_of(received: Received, result: tuple[list[Outgoing], Outcome], reason: str) -> None:
    [letter], outcome = result
    assert outcome is Outcome.DEAD_LETTERED
    assert letter.topic == f"{received.topic}.dlq"
    assert (letter.key, letter.value) == (received.key, received.value)
    assert letter.headers[: len(received.headers)] == received.headers
    assert reason in error_of(letter)
    assert header(letter.headers, "dlq.original.topic") == received.topic
    assert header(letter.headers, "dlq.original.offset") == str(received.offset)


# --- dead letters, inside the message's transaction ---------------------------------------------------


def test_a_failing_handler_makes_a_dead_letter_returned_with_the_original_bytes(registry: SchemaRegistryClient) -> None:
    stage = a_stage(registry, Failing(ValueError("no such warehouse")))
    received = message(registry, place())

    result = stage.process(received, MemoryState())

    assert_dead_letter_of(received, result, "ValueError: no such warehouse")
    assert header(result[0][0].headers, "dlq.processor") == "oms.test"


def test_a_dead_lettered_message_leaves_nothing_in_the_state(registry: SchemaRegistryClient) -> None:
    state = MemoryState()
    state.set("seen", ["earlier"])
    stage = a_stage(registry, Failing(ValueError("late failure"), writes={"seen": ["earlier", "o-1"], "new": 1}))

    stage.process(message(registry, place()), state)

    assert state.values == {"seen": ["earlier"]}


def test_a_handled_message_keeps_what_its_handler_wrote(registry: SchemaRegistryClient) -> None:
    state = MemoryState()
    stage = a_stage(registry, Recorder(writes={"seen": ["o-1"]}))

    _, outcome = stage.process(message(registry, place()), state)

    assert outcome is Outcome.OK
    assert state.values == {"seen": ["o-1"]}


def test_an_output_that_cannot_be_encoded_dead_letters_its_input_and_leaves_no_state(
    registry: SchemaRegistryClient,
) -> None:
    order = a_valid_order("o-1")
    # A declared topic that does not carry the record: no schema is registered for it there.
    wrong = Emit(ORDERS_EVENTS, "o-1", order)
    state = MemoryState()
    stage = a_stage(registry, Recorder([wrong], writes={"done": True}))

    received = message(registry, place(order))
    result = stage.process(received, state)

    assert_dead_letter_of(received, result, "SchemaRegistryError")
    assert state.values == {}


def test_an_output_to_a_topic_the_processor_does_not_write_is_a_dead_letter(registry: SchemaRegistryClient) -> None:
    created = order_created_from(a_valid_order("o-1"))
    stage = RecordStage(
        "oms.test",
        (ORDERS_COMMANDS,),
        registry,
        Recorder([Emit(ORDERS_EVENTS, "o-1", created)]),
        Settings(),
        outputs=(PAYMENTS_EVENTS,),
    )
    received = message(registry, place())

    assert_dead_letter_of(received, stage.process(received, MemoryState()), "does not write to oms.orders.events")


def test_an_output_over_the_message_limit_dead_letters_its_input(registry: SchemaRegistryClient) -> None:
    huge = OrderRejected(event_id=uuid.uuid4(), order_id="o-1", occurred_at=NOW, reasons=["x" * 20_000])
    stage = a_stage(registry, Recorder([Emit(ORDERS_EVENTS, "o-1", huge)]), max_message_bytes=10_000)
    received = message(registry, place())

    assert_dead_letter_of(received, stage.process(received, MemoryState()), "over the 10000 a message may have")


def test_a_dead_letter_of_a_message_near_the_limit_is_cut_to_fit_and_says_so(registry: SchemaRegistryClient) -> None:
    limit = 50_000
    value = b"\x00" + b"x" * (limit - 200)
    received = Received(ORDERS_COMMANDS.name, 3, 77, 1_000, b"o-1", value, (("big", b"h" * 30_000), ("ce_id", b"1")))
    stage = a_stage(registry, Recorder(), max_message_bytes=limit)

    [letter], outcome = stage.process(received, MemoryState())

    assert outcome is Outcome.DEAD_LETTERED
    assert message_bytes(letter) <= limit
    assert letter.value is not None and value.startswith(letter.value) and len(letter.value) < len(value)
    assert header(letter.headers, "big") is None
    assert header(letter.headers, "ce_id") == "1"
    truncated = header(letter.headers, "dlq.truncated") or ""
    assert "header big: 30000 bytes, dropped" in truncated and "value:" in truncated
    pointer = [header(letter.headers, f"dlq.original.{part}") for part in ("topic", "partition", "offset")]
    assert pointer == [ORDERS_COMMANDS.name, "3", "77"]


def test_a_dead_letter_within_the_limit_is_left_whole() -> None:
    letter = Outgoing("t.dlq", b"k", b"v" * 100, (("dlq.original.topic", b"t"),))
    assert bounded(letter, 1_000) is letter


# --- outages: retried in place, then raised, never dead-lettered ----------------------------------------


@pytest.mark.parametrize(
    "outage",
    [
        SchemaRegistryError(503, 50301, "the registry is unavailable"),
        SchemaRegistryError(401, 40101, "unauthorised"),
        sqlite3.OperationalError("database is locked"),
        OSError(28, "No space left on device"),
    ],
    ids=["registry-5xx", "registry-401", "sqlite-locked", "disk-full"],
)
def test_an_outage_is_retried_with_backoff_then_raised_never_dead_lettered(
    registry: SchemaRegistryClient, outage: Exception
) -> None:
    time = FakeTime()
    handler = Failing(outage, writes={"half": True})
    state = MemoryState()
    stage = a_stage(registry, handler, time=time, outage_retry_s=10.0)

    with pytest.raises(type(outage)):
        stage.process(message(registry, place()), state)

    assert time.sleeps[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert sum(time.sleeps) == pytest.approx(10.0)
    assert len(handler.records) == len(time.sleeps) + 1
    assert state.values == {}


def test_a_message_that_met_a_short_outage_is_handled_once_it_is_over(registry: SchemaRegistryClient) -> None:
    time = FakeTime()
    handler = Failing(sqlite3.OperationalError("database is locked"), writes={"seen": 1}, times=2)
    state = MemoryState()
    stage = a_stage(registry, handler, time=time)

    outgoing, outcome = stage.process(message(registry, place()), state)

    assert (outgoing, outcome) == ([], Outcome.OK)
    assert time.sleeps == pytest.approx([0.1, 0.2])
    assert state.values == {"seen": 1}


def test_an_outage_that_ends_a_run_exits_with_the_outage_status(caplog: pytest.LogCaptureFixture) -> None:
    def run() -> None:
        raise RuntimeError("stage gave up") from SchemaRegistryError(-1, -1, "connection refused\nat host")

    with pytest.raises(SystemExit) as exited:
        exit_on_outage("intake", run)

    assert exited.value.code == OUTAGE_EXIT_CODE
    [line] = [entry.getMessage() for entry in caplog.records]
    assert "oms run intake: stopped by an outage" in line and "\n" not in line


def test_a_crash_that_is_no_outage_is_not_disguised_as_one() -> None:
    def run() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        exit_on_outage("intake", run)


def test_outages_are_given_up_on_well_within_the_transaction_timeout() -> None:
    settings = Settings()
    transaction_s = settings.transaction_timeout_ms / 1000
    registry_call_s = settings.schema_registry_timeout_s * (settings.schema_registry_max_retries + 1) + 1
    assert settings.outage_retry_s + registry_call_s < transaction_s
    assert transaction_s / 4 >= BUSY_TIMEOUT_S
    assert settings.schema_registry_config()["timeout"] == settings.schema_registry_timeout_s


# --- the topic contract -----------------------------------------------------------------------------


def test_a_record_type_not_declared_for_the_topic_is_a_dead_letter_and_not_handled(
    registry: SchemaRegistryClient,
) -> None:
    charged = PaymentProcessed(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=NOW,
        amount=Money(amount_minor=3000, currency="EUR"),
        charges=[],
    )
    handler = Recorder()
    stage = a_stage(registry, handler)
    received = message(registry, Emit(PAYMENTS_EVENTS, "o-1", charged), topic=ORDERS_COMMANDS.name)

    result = stage.process(received, MemoryState())

    assert_dead_letter_of(received, result, "oms.payments.PaymentProcessed is not a record type of oms.orders.commands")
    assert handler.records == []


def test_a_key_that_is_not_the_records_identity_is_a_dead_letter(registry: SchemaRegistryClient) -> None:
    handler = Recorder()
    stage = a_stage(registry, handler)
    received = message(registry, place(a_valid_order("o-1")), key=b"o-2")

    assert_dead_letter_of(
        received,
        stage.process(received, MemoryState()),
        "key 'o-2', where oms.orders.commands is keyed by the oms.orders.PlaceOrder's order_id 'o-1'",
    )
    assert handler.records == []


def test_dlq_headers_that_came_with_a_message_are_not_passed_off_as_the_dead_letters_own(
    registry: SchemaRegistryClient,
) -> None:
    stage = a_stage(registry, Failing(ValueError("no such warehouse")))
    forged = (("dlq.processor", b"oms.forged"), ("dlq.original.offset", b"0"), ("dlq.redriven", b"yes"))
    received = replace(message(registry, place()), headers=(*forged, ("trace", b"kept")))

    [letter], _ = stage.process(received, MemoryState())

    dlq_headers = [(name, value) for name, value in letter.headers if name.startswith("dlq.")]
    names = [name for name, _ in dlq_headers]
    assert len(names) == len(set(names)), names
    assert ("dlq.processor", b"oms.test") in dlq_headers and ("dlq.processor", b"oms.forged") not in dlq_headers
    assert header(letter.headers, "dlq.original.offset") == str(received.offset)
    assert ("trace", b"kept") in letter.headers


def test_a_record_without_a_key_is_a_dead_letter(registry: SchemaRegistryClient) -> None:
    stage = a_stage(registry, Recorder())
    received = replace(message(registry, place()), key=None)

    assert_dead_letter_of(received, stage.process(received, MemoryState()), "no key, where")


def test_a_value_outside_its_domain_is_a_dead_letter_with_the_reason(registry: SchemaRegistryClient) -> None:
    handler = Recorder()
    stage = a_stage(registry, handler, topics=(STOCK_REQUESTS,))
    received = message(registry, stock_request(-5))

    assert_dead_letter_of(received, stage.process(received, MemoryState()), "quantity is -5, must be at least 1")
    assert handler.records == []
    assert stage.process(message(registry, stock_request(2)), MemoryState())[1] is Outcome.OK


def test_a_users_order_is_left_to_intakes_rules_not_the_wires_domain(registry: SchemaRegistryClient) -> None:
    order = a_valid_order("o-1")
    zero = order.model_copy(update={"lines": [order.lines[0].model_copy(update={"quantity": 0})]})
    handler = Recorder()

    _, outcome = a_stage(registry, handler).process(message(registry, place(zero)), MemoryState())

    assert outcome is Outcome.OK and handler.records == [zero]


def test_every_declared_domain_names_a_number_field_of_its_type() -> None:
    named = {
        kind.AVRO_NAME: kind
        for kind in vars(models).values()
        if isinstance(kind, type) and issubclass(kind, AvroRecord) and "AVRO_NAME" in vars(kind)
    }
    for fullname, least in AT_LEAST.items():
        for name in least:
            assert named[fullname].model_fields[name].annotation is int, f"{fullname}.{name}"


def test_a_spoofed_ce_type_does_not_get_a_record_passed_over(registry: SchemaRegistryClient) -> None:
    handler = Recorder()
    stage = a_stage(registry, handler)
    # This stage handles PlaceOrder and passes CancelOrder over: a PlaceOrder dressed as a CancelOrder.
    received = message(registry, place(), headers={"ce_type": b"oms.CancelOrder"})

    result = stage.process(received, MemoryState())

    assert_dead_letter_of(received, result, "the ce_type header says oms.CancelOrder, the schema says")
    assert handler.records == []


def test_a_passed_over_record_is_known_by_its_schema_and_never_decoded(registry: SchemaRegistryClient) -> None:
    cancel = CancelOrder(event_id=uuid.uuid4(), order_id="o-1", occurred_at=NOW, reason="changed my mind")
    received = message(registry, Emit(ORDERS_COMMANDS, "o-1", cancel))
    assert received.value is not None
    unreadable_body = replace(received, value=received.value[:5] + b"\xff")
    handler = Recorder()

    assert a_stage(registry, handler).process(unreadable_body, MemoryState()) == ([], Outcome.PASSED_OVER)
    assert handler.records == []


def test_a_record_without_cloudevents_headers_is_read_by_its_schema(registry: SchemaRegistryClient) -> None:
    handler = Recorder()
    bare = replace(message(registry, place()), headers=())

    assert a_stage(registry, handler).process(bare, MemoryState())[1] is Outcome.OK
    assert len(handler.records) == 1


# --- the saga keeps its trigger when `advance` fails ----------------------------------------------------


def test_the_saga_keeps_its_facts_and_so_its_trigger_when_advance_fails(
    registry: SchemaRegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    [stream] = sagas.SPEC.streams
    stage = stage_of(sagas.SPEC, stream, Settings(), registry)
    state = MemoryState()
    order = a_valid_order("o-1")
    cancel = CancelOrder(event_id=uuid.uuid4(), order_id="o-1", occurred_at=NOW, reason="changed my mind")
    for emit in (place(order), Emit(ORDERS_COMMANDS, "o-1", cancel)):
        assert stage.process(message(registry, emit), state)[1] is Outcome.OK
    assert (saga := sagas.CANCELLATION.load(state)) is not None and saga.phase == Phase.AWAITING_ORDER
    facts_before = sagas.FACTS.load(state)
    created = message(registry, Emit(ORDERS_EVENTS, "o-1", order_created_from(order)))
    real_advance = sagas.advance

    def failing_advance(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the saga could not decide")

    monkeypatch.setattr(sagas, "advance", failing_advance)
    _, outcome = stage.process(created, state)

    assert outcome is Outcome.DEAD_LETTERED
    assert sagas.FACTS.load(state) == facts_before
    assert (saga := sagas.CANCELLATION.load(state)) is not None and saga.phase == Phase.AWAITING_ORDER

    monkeypatch.setattr(sagas, "advance", real_advance)
    redriven, outcome = stage.process(created, state)  # the dead letter redriven

    assert outcome is Outcome.OK and redriven, "the redriven OrderCreated moves the saga on"
    assert (saga := sagas.CANCELLATION.load(state)) is not None and saga.phase == Phase.AWAITING_PAYMENT
    assert (facts := sagas.FACTS.load(state)) is not None and facts.created


# --- an answer to what cannot be read -----------------------------------------------------------------


class Answering:
    """An `answer_unreadable` hook that remembers what it was given, writes to the state, and answers."""

    def __init__(self, error: Exception | None = None) -> None:
        self.given: list[tuple[BaseException, str | None]] = []
        self.error = error

    def __call__(self, received: Received, error: BaseException, writer: str | None, state: State) -> list[Emit]:
        self.given.append((error, writer))
        state.set("answered", True)
        if self.error is not None:
            raise self.error
        answer = OrderRejected(event_id=uuid.uuid4(), order_id="o-1", occurred_at=NOW, reasons=["unreadable"])
        return [Emit(ORDERS_EVENTS, "o-1", answer)]


def answering_stage(registry: SchemaRegistryClient, handle: Handler, answer: Answering) -> RecordStage:
    return RecordStage(
        "oms.test",
        (ORDERS_COMMANDS,),
        registry,
        handle,
        Settings(),
        handles=(PlaceOrder,),
        outputs=(ORDERS_EVENTS,),
        answer_unreadable=answer,
    )


def test_a_message_that_cannot_be_read_is_answered_beside_its_dead_letter(registry: SchemaRegistryClient) -> None:
    answer, state = Answering(), MemoryState()
    stage = answering_stage(registry, Recorder(), answer)
    received = message(registry, place(), key=b"not-o-1")

    (letter, answered), outcome = stage.process(received, state)

    assert outcome is Outcome.DEAD_LETTERED and letter.topic == f"{ORDERS_COMMANDS.name}.dlq"
    assert answered.topic == ORDERS_EVENTS.name and isinstance(answered.record, OrderRejected)
    [(error, writer)] = answer.given
    assert "keyed by" in str(error) and writer == PlaceOrder.AVRO_NAME
    assert state.values == {}, "a dead-lettered message leaves nothing behind, its answer's writes neither"


def test_bytes_that_are_no_record_are_answered_without_a_writer(registry: SchemaRegistryClient) -> None:
    answer = Answering()
    stage = answering_stage(registry, Recorder(), answer)

    outgoing, _ = stage.process(Received(ORDERS_COMMANDS.name, 0, 1, 0, b"o-1", b"not avro", ()), MemoryState())

    assert len(outgoing) == 2 and answer.given[0][1] is None


def test_a_message_read_but_failing_its_handler_is_not_answered(registry: SchemaRegistryClient) -> None:
    answer = Answering()
    stage = answering_stage(registry, Failing(ValueError("no such warehouse")), answer)

    [letter], _ = stage.process(message(registry, place()), MemoryState())

    assert answer.given == [] and letter.topic == f"{ORDERS_COMMANDS.name}.dlq"


def test_an_answer_that_fails_leaves_the_dead_letter_alone(registry: SchemaRegistryClient) -> None:
    stage = answering_stage(registry, Recorder(), Answering(ValueError("cannot say")))
    received = message(registry, place(), key=b"not-o-1")

    assert_dead_letter_of(received, stage.process(received, MemoryState()), "keyed by")
