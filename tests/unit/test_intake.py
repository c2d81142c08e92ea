from __future__ import annotations

import uuid
from typing import Any

import pytest

from processors.intake import IntakeState, decide, validate
from schemas.models import OrderCreated, OrderRejected
from tests.factories import NOW, a_valid_order
from topology.topics import ORDERS_EVENTS


def test_valid_order_is_created_with_its_total() -> None:
    order = a_valid_order()

    state, [emit] = decide(None, order, NOW)

    assert emit.topic == ORDERS_EVENTS and emit.key == order.order_id
    assert isinstance(emit.record, OrderCreated)
    assert emit.record.total.amount_minor == 2 * 1250 + 500
    assert emit.record.lines == order.lines and emit.record.customer_email == order.customer_email
    assert state == IntakeState(outcome="created", command_event_id=str(order.event_id))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lines": []}, "lines: List should have at least 1 item"),
        ({"customer_email": "not-an-email"}, "customer_email: String should match pattern"),
        ({"tenders": []}, "tenders: List should have at least 1 item"),
    ],
)
def test_invalid_field_is_named_in_the_rejection(change: dict[str, Any], reason: str) -> None:
    assert any(r.startswith(reason) for r in validate(a_valid_order(**change)))


def test_every_reason_is_listed_at_once() -> None:
    order = a_valid_order()
    broken = a_valid_order(
        lines=[
            {"sku": "SKU-MUG-01", "quantity": -1, "unit_price": {"amount_minor": 1250, "currency": "EUR"}},
            {"sku": " ", "quantity": 1, "unit_price": {"amount_minor": 0, "currency": "USD"}},
        ],
        shipping_address=order.shipping_address.model_copy(update={"country": "Germany"}),
    )

    reasons = validate(broken)

    assert "lines[0].quantity: Input should be greater than 0" in reasons
    assert "lines[1].sku: String should have at least 1 character" in reasons
    assert "lines[1].unit_price.amount_minor: Input should be greater than 0" in reasons
    assert any(r.startswith("shipping_address.country:") for r in reasons)
    assert "currency: lines and tenders must use one currency, found EUR, USD" in reasons
    assert any(r.startswith("tenders: amounts sum to 3000") for r in reasons)


def test_more_than_a_hundred_lines_is_rejected() -> None:
    line = {"sku": "SKU-MUG-01", "quantity": 1, "unit_price": {"amount_minor": 100, "currency": "EUR"}}
    order = a_valid_order(
        lines=[line] * 101,
        tenders=[{"method": "CARD", "token": "tok_ok", "amount": {"amount_minor": 10100, "currency": "EUR"}}],
    )

    assert validate(order) == ["lines: List should have at most 100 items after validation, not 101"]


def test_invalid_order_is_rejected_with_its_reasons() -> None:
    order = a_valid_order(customer_email="nope")

    state, [emit] = decide(None, order, NOW)

    assert isinstance(emit.record, OrderRejected)
    assert emit.record.reasons == validate(order)
    assert state is not None and state.outcome == "rejected"


def test_repeated_place_order_for_an_existing_order_changes_nothing() -> None:
    order = a_valid_order()
    state, _ = decide(None, order, NOW)

    again = a_valid_order(order_id=order.order_id, event_id=uuid.uuid4(), customer_email="other@example.com")
    new_state, emits = decide(state, again, NOW)

    assert emits == [] and new_state == state


def test_a_rejected_order_may_be_placed_again_corrected() -> None:
    rejected = a_valid_order(customer_email="nope")
    state, _ = decide(None, rejected, NOW)

    replayed_state, replayed = decide(state, rejected, NOW)
    _, [created] = decide(state, a_valid_order(order_id=rejected.order_id), NOW)

    assert replayed == [] and replayed_state == state
    assert isinstance(created.record, OrderCreated)


def test_event_ids_derive_from_the_command_so_reruns_repeat_them() -> None:
    order = a_valid_order()

    first, second = decide(None, order, NOW)[1][0].record, decide(None, order, NOW)[1][0].record

    assert isinstance(first, OrderCreated) and isinstance(second, OrderCreated)
    assert first.event_id == second.event_id
