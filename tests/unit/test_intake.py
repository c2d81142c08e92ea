from __future__ import annotations

import uuid
from typing import Any

import pytest

from processors.intake import (
    DUPLICATE_ORDER_ID,
    ORDER,
    REJECTION_CODES_HEADER,
    IntakeState,
    decide,
    fingerprint,
    is_duplicate_id_rejection_message,
)
from processors.intake_rules import MAX_LINES, Reason, RejectionCode, is_duplicate_id_rejection, validate
from processors.runtime.memory import MemoryState
from schemas.models import OrderCreated, OrderRejected, PlaceOrder, ShippingPriority
from tests.factories import NOW, a_valid_order
from topology.topics import ORDERS_EVENTS

UNKNOWN_SKU = "SKU-NOSUCH-99"


def line(sku: str, quantity: int = 1, amount_minor: int = 500, currency: str = "EUR") -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "unit_price": {"amount_minor": amount_minor, "currency": currency}}


def texts(order: PlaceOrder) -> list[str]:
    return [reason.text for reason in validate(order)]


def the_same_again(order: PlaceOrder) -> PlaceOrder:
    """The same content sent again by a producer that retried: a new event id and time."""
    return order.model_copy(update={"event_id": uuid.uuid4(), "occurred_at": NOW.replace(hour=13)})


def only_rejection(emits: list[Any]) -> OrderRejected:
    [emit] = emits
    assert isinstance(emit.record, OrderRejected)
    return emit.record


def test_valid_order_is_created_with_its_total() -> None:
    order = a_valid_order()

    state, [emit] = decide(None, order, NOW)

    assert emit.topic == ORDERS_EVENTS and emit.key == order.order_id
    assert isinstance(emit.record, OrderCreated)
    assert emit.record.total.amount_minor == 2 * 1250 + 500
    assert emit.record.lines == order.lines and emit.record.customer_email == order.customer_email
    assert state == IntakeState(
        outcome="created", command_event_id=str(order.event_id), fingerprint=fingerprint(order), answered_at=NOW
    )


# --- the rules, in plain words ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lines": []}, "an order needs at least 1 line"),
        ({"customer_email": "not-an-email"}, "email address is not valid"),
        ({"customer_id": "  "}, "customer id must not be blank"),
        ({"tenders": []}, "an order needs at least 1 payment"),
        ({"lines": [line("SKU-TEA-01", quantity=1001)]}, "line 1: quantity must be at most 1,000"),
        ({"lines": [line("SKU-TEA-01", currency="eur")]}, "line 1: currency must be a three-letter code"),
    ],
)
def test_invalid_field_is_named_in_plain_words(change: dict[str, Any], reason: str) -> None:
    reasons = validate(a_valid_order(**change))

    assert any(r.text.startswith(reason) and r.code is RejectionCode.INVALID_FIELD for r in reasons), reasons


def test_every_reason_is_listed_at_once_each_with_its_code() -> None:
    order = a_valid_order()
    broken = a_valid_order(
        lines=[line("SKU-MUG-01", quantity=-1, amount_minor=1250), line(" ", amount_minor=0, currency="USD")],
        shipping_address=order.shipping_address.model_copy(update={"country": "Germany"}),
    )

    assert [(reason.code, reason.text) for reason in validate(broken)] == [
        ("invalid-field", "line 1: quantity must be at least 1"),
        ("invalid-field", "line 2: SKU must not be blank"),
        ("invalid-field", "line 2: unit price must be more than 0"),
        ("invalid-field", "shipping address: country must be a two-letter code in capitals, such as DE"),
        ("currency-mismatch", "lines and payments must all be in one currency, this order uses EUR and USD"),
        ("tenders-mismatch", "the payments add up to 30.00 EUR, the order totals -12.50 EUR"),
    ]


def test_more_than_a_hundred_lines_is_rejected() -> None:
    order = a_valid_order(
        lines=[line("SKU-MUG-01", amount_minor=100)] * (MAX_LINES + 1),
        tenders=[{"method": "CARD", "token": "tok_ok", "amount": {"amount_minor": 10100, "currency": "EUR"}}],
    )

    assert texts(order) == ["an order may have at most 100 lines, this one has 101"]


def test_an_order_over_the_limit_is_rejected_with_its_total() -> None:
    order = a_valid_order(
        lines=[line("SKU-BIKE-01", quantity=112, amount_minor=89900)],
        tenders=[{"method": "CARD", "token": "tok_ok", "amount": {"amount_minor": 10_068_800, "currency": "EUR"}}],
    )

    assert validate(order) == [
        Reason(
            RejectionCode.TOTAL_OVER_LIMIT,
            "the order totals 100,688.00 EUR, more than the 100,000.00 EUR one order may cost",
        )
    ]


def test_an_unknown_sku_is_rejected_by_name_before_any_money_moves() -> None:
    order = a_valid_order(lines=[line("SKU-MUG-01", quantity=2, amount_minor=1250), line(UNKNOWN_SKU)])

    state, emits = decide(None, order, NOW)

    rejection = only_rejection(emits)
    assert rejection.codes == [RejectionCode.UNKNOWN_SKU]
    assert rejection.reasons == [f"line 2: {UNKNOWN_SKU} is not a product we sell"]
    assert state is not None and state.outcome == "rejected"


def test_the_catalog_decides_which_skus_are_known() -> None:
    order = a_valid_order()

    assert validate(order, catalog={}) == [
        Reason(RejectionCode.UNKNOWN_SKU, "lines 1 and 2: 2 SKUs are not products we sell (SKU-MUG-01 and SKU-TEA-01)")
    ]


@pytest.mark.parametrize("sku", ["SKU-RARE-01", "SKU-ANVIL-01"])
def test_a_known_sku_passes_intake_even_without_stock_or_when_special(sku: str) -> None:
    assert validate(a_valid_order(lines=[line(sku, quantity=6, amount_minor=500)])) == []


def test_codes_align_with_reasons_and_the_customer_can_be_told() -> None:
    order = a_valid_order(lines=[line(UNKNOWN_SKU, quantity=0)], customer_id="c-9")

    rejection = only_rejection(decide(None, order, NOW)[1])

    assert list(zip(rejection.codes, rejection.reasons, strict=True)) == [
        (reason.code, reason.text) for reason in validate(order)
    ]
    assert set(rejection.codes) == {"invalid-field", "unknown-sku", "tenders-mismatch"}
    assert all(isinstance(code, str) and code in set(RejectionCode) for code in rejection.codes)
    assert (rejection.customer_id, rejection.customer_email) == ("c-9", order.customer_email)
    assert rejection.command_event_id == order.event_id


def test_an_address_that_is_not_one_is_not_passed_on() -> None:
    rejection = only_rejection(decide(None, a_valid_order(customer_email="ada.example.com"), NOW)[1])

    assert rejection.customer_email is None


# --- one order per id ---------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [a_valid_order(), a_valid_order(customer_email="nope")], ids=["created", "rejected"])
def test_the_very_same_command_again_is_a_replay_and_emits_nothing(first: PlaceOrder) -> None:
    state, _ = decide(None, first, NOW)

    again, emits = decide(state, first, NOW.replace(hour=14))

    assert emits == [] and again == state


@pytest.mark.parametrize("first", [a_valid_order(), a_valid_order(customer_email="nope")], ids=["created", "rejected"])
def test_the_same_content_again_gets_the_first_answer_again(first: PlaceOrder) -> None:
    state, [answer] = decide(None, first, NOW)

    again, [repeated] = decide(state, the_same_again(first), NOW.replace(hour=14))

    assert repeated == answer, "the same record: same event id, time and content"
    assert again == state


def test_other_content_under_a_used_id_is_answered_as_a_duplicate_and_changes_nothing() -> None:
    order = a_valid_order()
    state, _ = decide(None, order, NOW)
    other = a_valid_order(order_id=order.order_id, customer_email="grace@example.com")

    after, emits = decide(state, other, NOW)

    rejection = only_rejection(emits)
    assert rejection.codes == [DUPLICATE_ORDER_ID] and rejection.reasons[0].startswith("duplicate order id")
    assert rejection.command_event_id == other.event_id and rejection.customer_email == "grace@example.com"
    assert is_duplicate_id_rejection(rejection)
    assert after == state, "the order that holds the id stays as it was"


def test_a_rejected_id_stays_rejected_even_when_the_order_is_corrected() -> None:
    rejected = a_valid_order(customer_email="nope")
    state, _ = decide(None, rejected, NOW)

    after, emits = decide(state, a_valid_order(order_id=rejected.order_id), NOW)

    assert only_rejection(emits).codes == [DUPLICATE_ORDER_ID]
    assert after == state and after is not None and after.outcome == "rejected"


def test_every_field_but_event_id_and_time_is_content() -> None:
    order = a_valid_order()

    assert fingerprint(the_same_again(order)) == fingerprint(order)
    changes = ({"is_gift": True}, {"priority": ShippingPriority.EXPRESS}, {"customer_id": "c-8"}, {"order_id": "o-2"})
    for change in changes:
        assert fingerprint(order.model_copy(update=change)) != fingerprint(order), change
    tender = order.tenders[0].model_copy(update={"token": "tok_ok_other"})
    assert fingerprint(order.model_copy(update={"tenders": [tender]})) != fingerprint(order)


def test_a_legacy_entry_without_fingerprint_loads_and_answers_any_other_command_as_a_duplicate() -> None:
    order = a_valid_order()
    kept = MemoryState()
    kept.set(ORDER.name, {"outcome": "created", "command_event_id": str(order.event_id)})  # as intake kept it before

    legacy = ORDER.load(kept)
    assert legacy == IntakeState(outcome="created", command_event_id=str(order.event_id))

    assert decide(legacy, order, NOW) == (legacy, [])
    after, emits = decide(legacy, the_same_again(order), NOW)
    assert only_rejection(emits).codes == [DUPLICATE_ORDER_ID] and after == legacy


def test_a_rejection_s_codes_travel_in_a_header_for_counters_that_read_no_body() -> None:
    order = a_valid_order()
    state, _ = decide(None, order, NOW)
    [duplicate] = decide(state, the_same_again(order).model_copy(update={"is_gift": True}), NOW)[1]
    [invalid] = decide(None, a_valid_order(customer_email="nope"), NOW)[1]

    def message_headers(emit: Any) -> list[tuple[str, bytes]]:
        return [("ce_type", b"oms.OrderRejected"), *emit.headers]

    assert dict(duplicate.headers) == {REJECTION_CODES_HEADER: DUPLICATE_ORDER_ID.encode()}
    assert is_duplicate_id_rejection_message(message_headers(duplicate))
    assert not is_duplicate_id_rejection_message(message_headers(invalid))
    assert not is_duplicate_id_rejection_message([("ce_type", b"oms.OrderCreated")])


def test_event_ids_derive_from_the_command_so_reruns_repeat_them() -> None:
    order = a_valid_order()

    first, second = decide(None, order, NOW)[1][0].record, decide(None, order, NOW)[1][0].record

    assert isinstance(first, OrderCreated) and isinstance(second, OrderCreated)
    assert first.event_id == second.event_id
