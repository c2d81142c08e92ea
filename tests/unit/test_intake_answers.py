"""Every PlaceOrder is answered, in a message that fits, in words a person can read: huge orders, order ids that
break the rules, and commands that cannot be read at all."""

from __future__ import annotations

import json
import time
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest

from ops.orders import generate_orders
from processors.customer_messages import MAX_TEXT_CHARS, message_for
from processors.intake import REJECTION_CODES_HEADER, answer_unreadable, decide
from processors.intake_rules import (
    MAX_REASON_CHARS,
    MAX_REASONS,
    ORDER_ID_RULE,
    Reason,
    RejectionCode,
    bounded,
    is_duplicate_id_rejection,
    validate,
)
from processors.plain_text import cut, visible
from processors.runtime.deadletters import Received
from processors.runtime.encoder import Encoder
from processors.runtime.inprocess import InProcessRunner, memory_registry
from processors.runtime.memory import MemoryState
from processors.runtime.records import Emit, Outgoing
from processors.runtime.sizes import message_bytes
from processors.runtime.spec import stage_of
from processors.services import STREAM_PROCESSORS
from schemas.models import (
    InventoryShortage,
    NotificationKind,
    NotificationSent,
    OrderCreated,
    OrderRejected,
    OrderShipped,
    PlaceOrder,
    ShortLine,
)
from schemas.serde import RecordCodec, UndecodableRecord
from tests.factories import NOW, a_valid_order, order_of
from topology.settings import MAX_MESSAGE_BYTES, Settings
from topology.topics import ORDERS_COMMANDS, ORDERS_EVENTS

# Characters a person cannot see, that move a terminal's cursor or reverse the text around them.
HOSTILE_ID = "B1-esc-\x1b[31mRED\x1b[0m-\u202egnp.exe\u2066\u200b"
UNSEEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def unseen(text: str) -> list[str]:
    return [char for char in text if unicodedata.category(char) in UNSEEN]


def unknown_lines(count: int) -> list[dict[str, Any]]:
    return [{"sku": f"S{n}", "quantity": 1, "unit_price": {"amount_minor": 1, "currency": "EUR"}} for n in range(count)]


def rejection_of(order: PlaceOrder) -> OrderRejected:
    _, [emit] = decide(None, order, NOW)
    assert isinstance(emit.record, OrderRejected)
    return emit.record


def a_runner(tmp_path: Path, *, colocated: bool = False) -> InProcessRunner:
    return InProcessRunner(STREAM_PROCESSORS, Settings(run_dir=tmp_path), colocated=colocated)


def intake_dead_letters(runner: InProcessRunner) -> list[Outgoing]:
    """Every reader of the commands dead-letters what it cannot read; intake's are these."""
    return [letter for letter in runner.dead_letters() if dict(letter.headers)["dlq.processor"] == b"oms.intake"]


def sent_texts(tmp_path: Path) -> list[dict[str, Any]]:
    path = Settings(run_dir=tmp_path).simulators_path / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def unreadable(order: PlaceOrder, **update: Any) -> PlaceOrder:
    """`order` with fields its schema refuses: encoded as Avro all the same, as a producer outside the contract may."""
    return order.model_copy(update=update)


# --- one reason per problem, however many lines have it -----------------------------------------------


def test_an_order_of_15000_unknown_skus_is_answered_and_the_customer_told_in_messages_that_fit(
    tmp_path: Path,
) -> None:
    order = a_valid_order(lines=unknown_lines(15_000))
    runner = a_runner(tmp_path)

    runner.send(Emit(ORDERS_COMMANDS, order.order_id, order))
    runner.run()

    assert runner.dead_letters() == []
    [answer] = [d for d in runner.log if isinstance(d.record, OrderRejected)]
    rejection = answer.record
    assert isinstance(rejection, OrderRejected)
    assert rejection.codes == ["invalid-field", "unknown-sku", "tenders-mismatch"], "each code once, with its reason"
    assert rejection.reasons[:2] == [
        "an order may have at most 100 lines, this one has 15,000",
        "lines 1 to 15,000: 15,000 SKUs are not products we sell (S0, S1, S2 and 14,997 more)",
    ]
    assert message_bytes(answer.outgoing) < 2_000
    assert dict(answer.outgoing.headers)[REJECTION_CODES_HEADER] == b"invalid-field,unknown-sku,tenders-mismatch"
    [told] = runner.records(NotificationSent)
    assert told.kind == NotificationKind.ORDER_REJECTED and told.caused_by == rejection.event_id
    [sent] = sent_texts(tmp_path)
    assert sent["order_id"] == order.order_id and len(sent["text"]) <= MAX_TEXT_CHARS
    assert "a product we do not sell" in sent["text"]


def test_a_problem_on_many_lines_is_one_reason_naming_the_lines() -> None:
    lines = [{"sku": "SKU-TEA-01", "quantity": 0, "unit_price": {"amount_minor": 500, "currency": "EUR"}}] * 100
    lines[41] = {**lines[41], "sku": "SKU-TEA-99"}

    reasons = validate(a_valid_order(lines=lines))

    assert reasons[:2] == [
        Reason(RejectionCode.INVALID_FIELD, "lines 1 to 100: quantity must be at least 1"),
        Reason(RejectionCode.UNKNOWN_SKU, "line 42: SKU-TEA-99 is not a product we sell"),
    ]


def test_lines_apart_are_named_each_and_many_runs_are_counted() -> None:
    unknown = {2: "X-1", 5: "X-2", 9: "X-2", 10: "X-2", 11: "X-2"}
    lines = [
        {"sku": unknown.get(n, "SKU-TEA-01"), "quantity": 1, "unit_price": {"amount_minor": 1, "currency": "EUR"}}
        for n in range(1, 101)
    ]
    every_other = [
        {
            "sku": f"X-{n}" if n % 2 else "SKU-TEA-01",
            "quantity": 1,
            "unit_price": {"amount_minor": 1, "currency": "EUR"},
        }
        for n in range(1, 101)
    ]

    [reason] = [r.text for r in validate(a_valid_order(lines=lines)) if r.code is RejectionCode.UNKNOWN_SKU]
    [counted] = [r.text for r in validate(a_valid_order(lines=every_other)) if r.code is RejectionCode.UNKNOWN_SKU]

    assert reason == "lines 2, 5 and 9 to 11: 2 SKUs are not products we sell (X-1 and X-2)"
    assert counted == "lines 1, 3, 5 and 47 more: 50 SKUs are not products we sell (X-1, X-3, X-5 and 47 more)"


def test_reasons_are_bounded_in_number_and_length() -> None:
    many = [Reason(RejectionCode.INVALID_FIELD, f"problem {n}") for n in range(MAX_REASONS + 5)]
    long = [Reason(RejectionCode.UNKNOWN_SKU, "x" * 10_000)]

    kept = bounded(many)

    assert len(kept) == MAX_REASONS and kept[-1] == Reason(RejectionCode.INVALID_FIELD, "and 6 more problems")
    assert bounded(long) == [Reason(RejectionCode.UNKNOWN_SKU, "x" * (MAX_REASON_CHARS - 1) + "…")]


def test_the_worst_command_s_answer_fits_in_a_message() -> None:
    """Every field rule broken on every line, SKUs and currencies at their longest and full of escapes."""
    hostile = "\x1b[2J\u202e" * 32  # 128 characters, each one that must be escaped
    lines = [
        {
            "sku": f"{n:08d}{hostile}"[:128],
            "quantity": 0,
            "unit_price": {"amount_minor": 0, "currency": f"{n}{hostile}"[:64]},
        }
        for n in range(15_000)
    ]
    order = a_valid_order(order_id="o" * 128, customer_email="x" * 254, lines=lines, tenders=[])
    outgoing = encoded(Emit(ORDERS_EVENTS, order.order_id, rejection_of(order)))

    assert message_bytes(outgoing) < MAX_MESSAGE_BYTES // 20
    assert unseen("".join(rejection_of(order).reasons)) == []


def encoded(emit: Emit) -> Outgoing:
    """`emit` as a producer sends it, whether or not its record keeps the schema's limits."""
    return Encoder(memory_registry(), "oms.test")(emit)


# --- order ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("order_id", [HOSTILE_ID, "", " o-1", "o-1\n", "o/1", "ordre-é", "o" * 65, "o" * 128])
def test_an_order_id_out_of_the_rule_is_refused_in_words_before_money_moves(order_id: str) -> None:
    rejection = rejection_of(a_valid_order(order_id="x").model_copy(update={"order_id": order_id}))

    assert (rejection.codes, rejection.reasons) == (["invalid-field"], [ORDER_ID_RULE])
    assert ORDER_ID_RULE == "order id must be 1 to 64 letters, digits, or - _ . :"


def test_every_order_id_the_project_makes_is_accepted() -> None:
    made = [
        *(order.order_id for order in generate_orders(3, 1)),
        *(order.order_id for order in generate_orders(2, 5, prefix=f"bench-{uuid.uuid4().hex[:6]}-hop")),
        *(order.order_id for order in generate_orders(2, 7, prefix=f"chaos-{uuid.uuid4().hex[:6]}")),
        *(order.order_id for order in generate_orders(2, 8, prefix=f"s8-{int(time.time()):x}")),
        *(order.order_id for order in generate_orders(2, 9, prefix=f"demo-{int(time.time()):x}-3")),
        a_valid_order().order_id,
        order_of("slips", {"SKU-TEA-01": 1}).order_id,
        f"ext-{uuid.uuid4().hex[:10]}",  # docs/examples/place_order.py
        f"msg-rejected-{uuid.uuid4().hex[:8]}",
        "ord-1",
        "A.b_c:d-9" + "z" * 55,
    ]

    assert {order_id: validate(a_valid_order(order_id=order_id)) for order_id in made} == {
        order_id: [] for order_id in made
    }


# --- what customers read ------------------------------------------------------------------------------


def test_a_refused_escape_laden_id_reaches_the_customer_escaped(tmp_path: Path) -> None:
    order = a_valid_order(order_id="x").model_copy(update={"order_id": HOSTILE_ID})
    runner = a_runner(tmp_path)

    runner.send(Emit(ORDERS_COMMANDS, order.order_id, order))
    runner.run()

    [rejection] = runner.records(OrderRejected)
    assert rejection.reasons == [ORDER_ID_RULE]
    [sent] = sent_texts(tmp_path)
    assert unseen(sent["text"]) == []
    assert "B1-esc-\\x1b[31mRED\\x1b[0m-\\u202egnp.exe\\u2066\\u200b" in sent["text"]


@pytest.mark.parametrize(
    "record",
    [
        OrderShipped(event_id=uuid.uuid4(), order_id=HOSTILE_ID, occurred_at=NOW, carrier="dhl", label_id="l-1"),
        OrderRejected(
            event_id=uuid.uuid4(),
            order_id=HOSTILE_ID,
            occurred_at=NOW,
            reasons=[f"a reason from elsewhere: {HOSTILE_ID}"],
            codes=["some-code-we-do-not-know"],
        ),
        InventoryShortage(
            event_id=uuid.uuid4(),
            order_id="o-1",
            occurred_at=NOW,
            short_lines=[ShortLine(sku=HOSTILE_ID, requested=2, available=0)],
        ),
    ],
    ids=["order id", "quoted reason", "sku"],
)
def test_customer_texts_carry_no_control_escape_or_bidi_characters(record: Any) -> None:
    text = message_for(record).text

    assert unseen(text) == []
    assert visible(HOSTILE_ID) in text


def test_visible_escapes_what_cannot_be_seen_and_keeps_the_rest() -> None:
    assert visible("a\x1bb\u202ec\U000e0001\n") == "a\\x1bb\\u202ec\\U000e0001\\x0a"
    assert visible("Café ☕ für Åsa") == "Café ☕ für Åsa"
    assert cut("abcdef", 4) == "abc…" and cut("abcd", 4) == "abcd"


# --- commands that cannot be read ---------------------------------------------------------------------


def test_a_too_long_order_id_is_answered_beside_its_dead_letter(tmp_path: Path) -> None:
    order = unreadable(a_valid_order(), order_id="o" * 300)
    runner = a_runner(tmp_path)

    runner.send(Emit(ORDERS_COMMANDS, order.order_id, order))
    runner.run()

    [letter] = intake_dead_letters(runner)
    assert letter.topic == f"{ORDERS_COMMANDS.name}.dlq"
    [rejection] = runner.records(OrderRejected)
    assert rejection.order_id == "o" * 127 + "…", "the id, cut to what the answer may carry"
    assert (rejection.codes, rejection.reasons) == (["invalid-field"], [ORDER_ID_RULE])
    assert rejection.command_event_id == order.event_id
    assert rejection.customer_email is None and sent_texts(tmp_path) == [], "the cut id is not the customer's"


@pytest.mark.parametrize("colocated", [False, True], ids=["alone", "co-located"])
def test_an_unreadable_command_with_an_id_that_fits_is_told_to_its_customer(tmp_path: Path, colocated: bool) -> None:
    order = unreadable(a_valid_order(), customer_id="c" * 129)
    runner = a_runner(tmp_path, colocated=colocated)

    runner.send(Emit(ORDERS_COMMANDS, order.order_id, order))
    runner.run()

    [rejection] = runner.records(OrderRejected)
    assert rejection.order_id == order.order_id and rejection.reasons == ["customer id must be at most 128 characters"]
    assert rejection.customer_email == order.customer_email and rejection.customer_id == "c" * 127 + "…"
    [sent] = sent_texts(tmp_path)
    assert sent["kind"] == NotificationKind.ORDER_REJECTED and "some of its details" in sent["text"]
    assert [letter.topic for letter in intake_dead_letters(runner)] == [f"{ORDERS_COMMANDS.name}.dlq"]


def test_the_answer_and_the_dead_letter_leave_in_one_step() -> None:
    """One step's outputs are one transaction on Kafka: the answer cannot be lost while the letter is kept."""
    [spec] = [spec for spec in STREAM_PROCESSORS if spec.name == "intake"]
    registry = memory_registry()
    stage = stage_of(spec, spec.streams[0], Settings(), registry)
    order = unreadable(a_valid_order(), order_id="o" * 129)
    sent = encoded(Emit(ORDERS_COMMANDS, order.order_id, order))

    outgoing, _ = stage.process(
        Received(ORDERS_COMMANDS.name, 1, 9, 0, sent.key, sent.value, sent.headers), MemoryState()
    )

    assert [message.topic for message in outgoing] == [f"{ORDERS_COMMANDS.name}.dlq", ORDERS_EVENTS.name]
    assert outgoing[0].value == sent.value, "the dead letter keeps the original bytes"


def test_bytes_that_are_no_record_are_answered_under_their_key() -> None:
    message = Received(ORDERS_COMMANDS.name, 0, 12, 0, b"o-garbled", b'{"order_id": "o-garbled"}', ())

    [emit] = answer_unreadable(message, decoding_error(message), None, MemoryState())

    assert isinstance(emit.record, OrderRejected) and emit.key == "o-garbled"
    assert emit.record.codes == ["invalid-field"]
    assert emit.record.reasons[0].startswith("the command could not be read: not Confluent-framed Avro")
    assert emit.record.command_event_id is None and emit.record.customer_email is None


@pytest.mark.parametrize(
    ("key", "headers", "writer"),
    [
        (None, (), None),
        (b"", (), None),
        (b"o-1", (("ce_type", b"oms.CancelOrder"),), None),
        (b"o-1", (), "oms.orders.CancelOrder"),
    ],
    ids=["no key", "empty key", "a CancelOrder by its header", "a CancelOrder by its schema"],
)
def test_what_is_no_placeorder_or_has_no_readable_id_gets_only_its_dead_letter(
    key: bytes | None, headers: tuple[tuple[str, bytes], ...], writer: str | None
) -> None:
    message = Received(ORDERS_COMMANDS.name, 0, 12, 0, key, b"garbage", headers)

    assert answer_unreadable(message, decoding_error(message), writer, MemoryState()) == []


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # the event id is no UUID, on purpose
def test_what_the_schema_refuses_is_told_field_by_field_and_visibly(tmp_path: Path) -> None:
    order = unreadable(a_valid_order(), event_id="\x1b[31m-not-a-uuid")
    runner = a_runner(tmp_path)

    runner.send(Emit(ORDERS_COMMANDS, order.order_id, order))
    runner.run()

    [rejection] = runner.records(OrderRejected)
    [reason] = rejection.reasons
    assert reason.startswith("event id input should be a valid UUID") and "\\x1b" in reason
    assert unseen(reason) == [] and rejection.command_event_id is None


def test_an_unreadable_command_for_a_held_id_is_answered_as_a_duplicate(tmp_path: Path) -> None:
    order = a_valid_order()
    runner = a_runner(tmp_path)
    runner.send(Emit(ORDERS_COMMANDS, order.order_id, order))
    runner.run()
    garbled = unreadable(a_valid_order(order_id=order.order_id), customer_email="x" * 300)

    runner.send(Emit(ORDERS_COMMANDS, order.order_id, garbled))
    runner.run()

    [created] = runner.records(OrderCreated)
    [rejection] = runner.records(OrderRejected)
    assert created.order_id == rejection.order_id == order.order_id
    assert rejection.codes == ["duplicate-order-id", "invalid-field"]
    assert rejection.reasons[1] == "email address must be at most 254 characters"
    assert is_duplicate_id_rejection(rejection), "it says nothing of the order that holds the id"
    assert len(intake_dead_letters(runner)) == 1


def decoding_error(message: Received) -> Exception:
    """Why `message`'s value is no record of its topic."""
    assert message.value is not None
    with pytest.raises(UndecodableRecord) as raised:
        RecordCodec(memory_registry(), message.topic).decode(message.value)
    return raised.value


def test_many_currencies_are_named_three_and_counted() -> None:
    lines = [
        {"sku": "SKU-TEA-01", "quantity": 1, "unit_price": {"amount_minor": 500, "currency": currency}}
        for currency in ("AAA", "BBB", "CCC", "DDD")
    ]

    [reason] = [r.text for r in validate(a_valid_order(lines=lines)) if r.code is RejectionCode.CURRENCY_MISMATCH]

    assert reason == "lines and payments must all be in one currency, this order uses AAA, BBB, CCC and 2 more"


def test_an_order_dressed_as_a_cancellation_is_answered_and_never_taken(tmp_path: Path) -> None:
    order = a_valid_order()
    sent = encoded(Emit(ORDERS_COMMANDS, order.order_id, order))
    headers = tuple((name, b"oms.CancelOrder" if name == "ce_type" else value) for name, value in sent.headers)
    runner = a_runner(tmp_path)

    runner.send_raw(Outgoing(sent.topic, sent.key, sent.value, headers))
    runner.run()

    assert runner.records(OrderCreated) == []
    [rejection] = runner.records(OrderRejected)
    assert rejection.order_id == order.order_id and rejection.command_event_id == order.event_id
    assert rejection.reasons[0].startswith("the command could not be read: the ce_type header says oms.CancelOrder")
