"""`oms cancel --wait`: which records answer a CancelOrder, and how the answer reads."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ops import cancel, reachability
from ops.cancel import answer_to
from ops.cli import CANCEL_TIMED_OUT, main
from ops.produce import cancel_order
from processors.runtime.records import utc_now
from schemas.models import (
    Money,
    OrderCancellationRejected,
    OrderCancelled,
    PaymentMethod,
    PaymentProcessed,
    PaymentRefunded,
)
from topology.settings import Settings

ORDER = "o-1"


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


def rejection(cancel_event_id: uuid.UUID, order_id: str = ORDER) -> OrderCancellationRejected:
    return OrderCancellationRejected(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=utc_now(),
        cancel_event_id=cancel_event_id,
        reason="the order was delivered",
        code="delivered",
    )


def cancelled(refunded: Money | None, order_id: str = ORDER) -> OrderCancelled:
    return OrderCancelled(
        event_id=uuid.uuid4(), order_id=order_id, occurred_at=utc_now(), reason="changed my mind", refunded=refunded
    )


def refund(amount: Money, method: PaymentMethod, order_id: str = ORDER) -> PaymentRefunded:
    return PaymentRefunded(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=utc_now(),
        amount=amount,
        method=method,
        transaction_id=f"t-{method.value.lower()}",
    )


def test_a_rejection_answers_only_the_command_it_names() -> None:
    command = cancel_order(ORDER, "changed my mind")

    assert answer_to(command, [rejection(uuid.uuid4())]) is None, "another request's answer"
    answer = answer_to(command, [rejection(command.event_id)])

    assert answer is not None
    assert (answer.outcome, answer.reason, answer.code) == ("rejected", "the order was delivered", "delivered")
    assert answer.lines == [f"cancellation of {ORDER} rejected: the order was delivered (delivered)"]


def test_the_cancellation_is_the_answer_once_its_refunds_are_read_too() -> None:
    command = cancel_order(ORDER, "changed my mind")
    card, credit = refund(eur(2000), PaymentMethod.CARD), refund(eur(500), PaymentMethod.STORE_CREDIT)
    done = cancelled(eur(2500))

    assert answer_to(command, [done, card]) is None, "a refund still to read"
    answer = answer_to(command, [card, done, credit])

    assert answer is not None and answer.outcome == "cancelled"
    assert answer.lines == [
        f"{ORDER} cancelled; refunded 25.00 EUR",
        "  20.00 EUR to CARD (transaction t-card)",
        "  5.00 EUR to STORE_CREDIT (transaction t-store_credit)",
    ]
    assert answer.as_json()["refunds"] == [
        {"method": "CARD", "amount": "20.00 EUR"},
        {"method": "STORE_CREDIT", "amount": "5.00 EUR"},
    ]


def test_a_cancellation_with_nothing_charged_needs_no_refund() -> None:
    command = cancel_order(ORDER, "changed my mind")

    answer = answer_to(command, [cancelled(None)])

    assert answer is not None
    assert answer.lines == [f"{ORDER} cancelled; nothing had been charged, nothing refunded"]


def test_other_orders_and_other_records_answer_nothing() -> None:
    command = cancel_order(ORDER, "changed my mind")
    paid = PaymentProcessed(event_id=uuid.uuid4(), order_id=ORDER, occurred_at=utc_now(), amount=eur(1), charges=[])

    assert answer_to(command, [cancelled(None, "o-2"), rejection(command.event_id, "o-2"), paid]) is None


def test_by_default_it_waits_longer_than_the_saga_waits_for_an_order_it_has_not_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waited: list[float] = []

    def cancel_and_wait(settings: Settings, order_id: str, reason: str, timeout_s: float) -> tuple[Any, None]:
        waited.append(timeout_s)
        return cancel_order(order_id, reason), None

    monkeypatch.setattr(cancel, "cancel_and_wait", cancel_and_wait)
    monkeypatch.setattr(reachability, "require", lambda settings, needs: None)  # no broker here

    assert main(["cancel", "never-placed", "--wait"]) == CANCEL_TIMED_OUT

    [timeout_s] = waited
    assert timeout_s > Settings().cancel_waits_for_order_s + 10
