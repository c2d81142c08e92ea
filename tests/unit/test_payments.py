from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import Any

import pytest
from quixstreams import State

from processors.adapters.payment_gateway import ChargeResult, SimulatedPaymentGateway
from processors.payments import (
    PAYMENT,
    ChargeTender,
    ChargeVoided,
    Decided,
    PaymentState,
    TenderCharged,
    TenderRefused,
    VoidCharge,
    decide,
    handle,
)
from processors.runtime.records import Emit, derive_event_id
from processors.runtime.stage import RetryPolicy, TransientError
from schemas.models import (
    Address,
    Money,
    OrderCreated,
    OrderLine,
    OrderRejected,
    PaymentFailed,
    PaymentMethod,
    PaymentProcessed,
    StockLine,
    Tender,
    TenderCharge,
)
from topology.topics import PAYMENTS_EVENTS

NOW = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC)
NO_WAIT = RetryPolicy(attempts=5, first_delay_s=0, max_delay_s=0)


def eur(minor: int) -> Money:
    return Money(amount_minor=minor, currency="EUR")


def card(token: str, minor: int) -> Tender:
    return Tender(method=PaymentMethod.CARD, token=token, amount=eur(minor))


def gift_card(token: str, minor: int) -> Tender:
    return Tender(method=PaymentMethod.GIFT_CARD, token=token, amount=eur(minor))


def store_credit(token: str, minor: int) -> Tender:
    return Tender(method=PaymentMethod.STORE_CREDIT, token=token, amount=eur(minor))


def order_created(*tenders: Tender, lines: list[OrderLine] | None = None, total: Money | None = None) -> OrderCreated:
    """An order whose single line costs what its tenders pay, unless told otherwise."""
    paid = sum(tender.amount.amount_minor for tender in tenders)
    return OrderCreated(
        event_id=uuid.uuid4(),
        order_id=f"order-{uuid.uuid4().hex[:8]}",
        occurred_at=NOW,
        customer_id="c-1",
        customer_email="ada@example.com",
        lines=lines or [OrderLine(sku="SKU-1", quantity=1, unit_price=eur(paid))],
        shipping_address=Address(recipient="Ada", line1="Main St 1", city="Berlin", postal_code="10115", country="DE"),
        tenders=list(tenders),
        total=total or eur(paid),
    )


class DictState(State):
    """The state of one key, in memory."""

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: Any, value: Any, ttl: datetime.timedelta | None = None) -> None:
        self.values[key] = value

    def set_bytes(self, key: Any, value: bytes, ttl: datetime.timedelta | None = None) -> None:
        self.values[key] = value

    def delete(self, key: Any) -> None:
        self.values.pop(key, None)

    def exists(self, key: Any) -> bool:
        return key in self.values


def only_emit(step: Any) -> Emit:
    assert isinstance(step, Decided)
    [emit] = step.emits
    assert emit.topic == PAYMENTS_EVENTS
    return emit


# The pure decision.


def test_tenders_are_charged_in_order_with_keys_from_the_triggering_event() -> None:
    order = order_created(gift_card("gc_ok", 300), card("tok_ok", 700))

    first = decide(None, order, [], NOW)
    second = decide(None, order, [TenderCharged(0, "t0")], NOW)

    assert first == ChargeTender(0, order.tenders[0], f"{order.event_id}/charge/0")
    assert second == ChargeTender(1, order.tenders[1], f"{order.event_id}/charge/1")


def test_every_tender_charged_becomes_payment_processed() -> None:
    order = order_created(gift_card("gc_ok", 300), card("tok_ok", 700))

    step = decide(None, order, [TenderCharged(0, "t0"), TenderCharged(1, "t1")], NOW)

    emit = only_emit(step)
    assert emit.key == order.order_id
    assert emit.record == PaymentProcessed(
        event_id=derive_event_id(order.event_id, "payment-processed"),
        order_id=order.order_id,
        occurred_at=NOW,
        amount=eur(1000),
        charges=[
            TenderCharge(method=PaymentMethod.GIFT_CARD, amount=eur(300), transaction_id="t0"),
            TenderCharge(method=PaymentMethod.CARD, amount=eur(700), transaction_id="t1"),
        ],
        lines=[StockLine(sku="SKU-1", quantity=1)],
    )
    assert isinstance(step, Decided) and step.state.outcome == "processed"


def test_payment_processed_lists_the_order_lines_summed_per_sku() -> None:
    lines = [
        OrderLine(sku="SKU-A", quantity=2, unit_price=eur(100)),
        OrderLine(sku="SKU-B", quantity=1, unit_price=eur(300)),
        OrderLine(sku="SKU-A", quantity=3, unit_price=eur(100)),
    ]
    order = order_created(card("tok_ok", 800), lines=lines)

    record = only_emit(decide(None, order, [TenderCharged(0, "t0")], NOW)).record

    assert isinstance(record, PaymentProcessed)
    assert record.lines == [StockLine(sku="SKU-A", quantity=5), StockLine(sku="SKU-B", quantity=1)]


def test_a_declined_first_tender_fails_the_payment_with_nothing_to_void() -> None:
    order = order_created(card("tok_declined", 1000), gift_card("gc_ok", 500))

    emit = only_emit(decide(None, order, [TenderRefused(0, "card declined")], NOW))

    assert emit.record == PaymentFailed(
        event_id=derive_event_id(order.event_id, "payment-failed"),
        order_id=order.order_id,
        occurred_at=NOW,
        amount=eur(1500),
        reason="tender 1 of 2 (CARD) declined: card declined",
        retryable=False,
    )


def test_a_later_refusal_voids_the_earlier_charges_newest_first_then_fails() -> None:
    order = order_created(store_credit("sc_1", 100), gift_card("gc_ok", 200), gift_card("gc_empty", 300))
    results: list[Any] = [TenderCharged(0, "t0"), TenderCharged(1, "t1"), TenderRefused(2, "gift card balance too low")]

    first_void = decide(None, order, results, NOW)
    second_void = decide(None, order, [*results, ChargeVoided(1)], NOW)
    final = decide(None, order, [*results, ChargeVoided(1), ChargeVoided(0)], NOW)

    assert first_void == VoidCharge(1, "t1", f"{order.event_id}/void/1")
    assert second_void == VoidCharge(0, "t0", f"{order.event_id}/void/0")
    record = only_emit(final).record
    assert isinstance(record, PaymentFailed)
    assert record.reason == "tender 3 of 3 (GIFT_CARD) declined: gift card balance too low"
    assert isinstance(final, Decided) and final.state.outcome == "failed"


def test_a_gateway_outage_fails_the_payment_as_retryable() -> None:
    order = order_created(card("tok_down", 1000))

    record = only_emit(decide(None, order, [TenderRefused(0, "timeout", gateway_unavailable=True)], NOW)).record

    assert isinstance(record, PaymentFailed)
    assert record.retryable
    assert record.reason == "payment gateway unavailable for tender 1 of 1 (CARD): timeout"


def test_an_order_already_decided_emits_nothing_and_calls_nothing() -> None:
    order = order_created(card("tok_ok", 1000))
    decided = PaymentState(outcome="processed", order_event_id=str(order.event_id))

    assert decide(decided, order, [], NOW) == Decided(decided, [])


def test_tenders_that_do_not_pay_the_total_are_not_charged() -> None:
    order = order_created(card("tok_ok", 900), total=eur(1000))

    record = only_emit(decide(None, order, [], NOW)).record

    assert isinstance(record, PaymentFailed)
    assert record.reason == "tenders pay 900 in EUR, the order totals 1000 EUR"
    assert not record.retryable


# handle: the decision driven against the simulated gateway.


@pytest.fixture
def gateway(tmp_path: Path) -> SimulatedPaymentGateway:
    return SimulatedPaymentGateway(tmp_path / "payment-gateway.sqlite")


def test_an_order_paid_with_several_tenders_is_charged_once_per_tender(gateway: SimulatedPaymentGateway) -> None:
    order = order_created(gift_card("gc_ok_1", 300), store_credit("sc_1", 200), card("tok_ok_1", 500))

    [emit] = handle(order, DictState(), gateway, NO_WAIT)

    assert isinstance(emit.record, PaymentProcessed)
    assert [charge.transaction_id for charge in emit.record.charges] == [
        charge.transaction_id for charge in gateway.charges(order.order_id)
    ]
    assert gateway.count_charges(order.order_id, status="approved") == 3
    assert gateway.approved_total(order.order_id) == 1000


def test_a_declined_card_after_a_gift_card_leaves_nothing_charged(gateway: SimulatedPaymentGateway) -> None:
    order = order_created(gift_card("gc_ok_1", 300), card("tok_nofunds_1", 700))

    [emit] = handle(order, DictState(), gateway, NO_WAIT)

    assert isinstance(emit.record, PaymentFailed)
    assert emit.record.reason == "tender 2 of 2 (CARD) declined: insufficient funds"
    assert gateway.count_voids(order.order_id) == 1
    assert gateway.approved_total(order.order_id) == 0


def test_a_flaky_card_is_retried_until_approved(gateway: SimulatedPaymentGateway) -> None:
    order = order_created(card("tok_flaky_1", 1000))

    [emit] = handle(order, DictState(), gateway, NO_WAIT)

    assert isinstance(emit.record, PaymentProcessed)
    assert gateway.attempts(f"{order.event_id}/charge/0") == 3


def test_a_gateway_that_stays_down_voids_earlier_charges_and_fails_retryable(
    gateway: SimulatedPaymentGateway,
) -> None:
    order = order_created(store_credit("sc_1", 400), card("tok_down_1", 600))

    [emit] = handle(order, DictState(), gateway, NO_WAIT)

    assert isinstance(emit.record, PaymentFailed)
    assert emit.record.retryable
    assert emit.record.reason.startswith("payment gateway unavailable for tender 2 of 2 (CARD)")
    assert gateway.attempts(f"{order.event_id}/charge/1") == NO_WAIT.attempts
    assert gateway.approved_total(order.order_id) == 0


def test_a_replayed_order_created_emits_nothing_and_calls_the_gateway_no_more(
    gateway: SimulatedPaymentGateway,
) -> None:
    order = order_created(card("tok_flaky_1", 1000))
    state = DictState()
    handle(order, state, gateway, NO_WAIT)
    attempts = gateway.attempts(f"{order.event_id}/charge/0")

    assert handle(order, state, gateway, NO_WAIT) == []
    assert gateway.attempts(f"{order.event_id}/charge/0") == attempts
    assert gateway.count_charges(order.order_id) == 1


def test_a_rerun_after_a_crash_emits_the_same_outcome_and_charges_once(gateway: SimulatedPaymentGateway) -> None:
    order = order_created(gift_card("gc_ok_1", 300), card("tok_declined_1", 700))

    [before_crash] = handle(order, DictState(), gateway, NO_WAIT)
    [after_restart] = handle(order, DictState(), gateway, NO_WAIT)  # the state write was never committed

    assert after_restart.record.model_dump(exclude={"occurred_at"}) == before_crash.record.model_dump(
        exclude={"occurred_at"}
    )
    assert gateway.count_charges(order.order_id) == 2
    assert gateway.count_voids(order.order_id) == 1
    assert len(gateway.effects(order.order_id)) == 2


def test_the_decision_is_remembered_with_what_stays_charged(gateway: SimulatedPaymentGateway) -> None:
    order = order_created(card("tok_ok_1", 1000))
    state = DictState()

    [emit] = handle(order, state, gateway, NO_WAIT)

    assert isinstance(emit.record, PaymentProcessed)
    assert PAYMENT.load(state) == PaymentState(
        outcome="processed", order_event_id=str(order.event_id), charges=emit.record.charges
    )


class VoidsNeverSucceed:
    """A gateway that approves every charge and can never void."""

    def charge(
        self, idempotency_key: str, method: PaymentMethod, token: str, amount: Money, *, order_id: str
    ) -> ChargeResult:
        if token.startswith("tok_declined"):
            return ChargeResult("declined", f"txn-{idempotency_key}", "card declined")
        return ChargeResult("approved", f"txn-{idempotency_key}")

    def void(self, idempotency_key: str, transaction_id: str) -> None:
        raise TransientError("void timed out")


def test_a_void_that_keeps_failing_raises_and_leaves_no_state_behind() -> None:
    order = order_created(gift_card("gc_ok_1", 300), card("tok_declined_1", 700))
    state = DictState()

    with pytest.raises(TransientError):
        handle(order, state, VoidsNeverSucceed(), NO_WAIT)
    assert PAYMENT.load(state) is None


def test_other_records_on_the_orders_topic_are_ignored(gateway: SimulatedPaymentGateway) -> None:
    rejected = OrderRejected(event_id=uuid.uuid4(), order_id="order-1", occurred_at=NOW, reasons=["no lines"])

    assert handle(rejected, DictState(), gateway, NO_WAIT) == []
    assert gateway.count_charges() == 0
