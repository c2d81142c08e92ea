from __future__ import annotations

import datetime
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from quixstreams import State

from processors.adapters.payment_gateway import ChargeResult, RefundResult, SimulatedPaymentGateway
from processors.payments import (
    DETAIL_LENGTH,
    INPUTS,
    PAYMENT,
    ChargeTender,
    ChargeVoided,
    CreditTender,
    Decided,
    PaymentState,
    RefundAsk,
    RefundRefused,
    RefundTender,
    TenderCharged,
    TenderCredited,
    TenderRefunded,
    TenderRefused,
    VoidCharge,
    decide,
    decide_refund,
    handle,
    refund_asked,
)
from processors.runtime.records import Emit, derive_event_id
from processors.runtime.retries import RetryPolicy, TransientError
from schemas.models import (
    Address,
    InventoryShortage,
    Money,
    OrderCreated,
    OrderFailed,
    OrderFailureReason,
    OrderLine,
    OrderRejected,
    PaymentFailed,
    PaymentMethod,
    PaymentProcessed,
    PaymentRefunded,
    PaymentRefundFailed,
    RefundPayment,
    ShortLine,
    StockLine,
    Tender,
    TenderCharge,
)
from tests.factories import DictState, record_of
from topology.topics import ORDERS_EVENTS, PAYMENTS_EVENTS

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


def only_emit(step: Any) -> Emit:
    assert isinstance(step, Decided)
    [emit] = step.emits
    assert emit.topic == PAYMENTS_EVENTS
    return emit


def failure(emits: list[Emit]) -> PaymentFailed:
    """The `PaymentFailed` of `emits`, which tell the order's end beside it on the orders topic, and nothing else."""
    [(topic, key, failed), (told_on, told_key, told)] = [(emit.topic, emit.key, emit.record) for emit in emits]
    assert isinstance(failed, PaymentFailed) and isinstance(told, OrderFailed)
    assert (topic, told_on) == (PAYMENTS_EVENTS, ORDERS_EVENTS)
    assert key == told_key == failed.order_id
    assert told == OrderFailed(
        event_id=derive_event_id(failed.event_id, "order-failed"),
        order_id=failed.order_id,
        occurred_at=failed.occurred_at,
        reason=OrderFailureReason.PAYMENT_FAILED,
        code=failed.code,
        detail=failed.reason,
        refunded=None,
        caused_by=failed.event_id,
    )
    return failed


def failed_step(step: Any) -> PaymentFailed:
    assert isinstance(step, Decided)
    return failure(step.emits)


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

    failed = failed_step(decide(None, order, [TenderRefused(0, "card declined", code="card-declined")], NOW))

    assert failed == PaymentFailed(
        event_id=derive_event_id(order.event_id, "payment-failed"),
        order_id=order.order_id,
        occurred_at=NOW,
        amount=eur(1500),
        reason="tender 1 of 2 (CARD) declined: card declined",
        retryable=False,
        code="card-declined",
    )


def test_a_later_refusal_voids_the_earlier_charges_newest_first_then_fails() -> None:
    order = order_created(store_credit("sc_1", 100), gift_card("gc_ok", 200), gift_card("gc_empty", 300))
    results: list[Any] = [
        TenderCharged(0, "t0"),
        TenderCharged(1, "t1"),
        TenderRefused(2, "gift card balance too low", code="gift-card-empty"),
    ]

    first_void = decide(None, order, results, NOW)
    second_void = decide(None, order, [*results, ChargeVoided(1)], NOW)
    final = decide(None, order, [*results, ChargeVoided(1), ChargeVoided(0)], NOW)

    assert first_void == VoidCharge(1, "t1", f"{order.event_id}/void/1")
    assert second_void == VoidCharge(0, "t0", f"{order.event_id}/void/0")
    record = failed_step(final)
    assert (record.reason, record.code) == (
        "tender 3 of 3 (GIFT_CARD) declined: gift card balance too low",
        "gift-card-empty",
    )
    assert isinstance(final, Decided) and final.state.outcome == "failed"


def test_a_gateway_outage_fails_the_payment_as_retryable() -> None:
    order = order_created(card("tok_down", 1000))

    record = failed_step(decide(None, order, [TenderRefused(0, "timeout", gateway_unavailable=True)], NOW))

    assert record.retryable
    assert record.reason == "payment gateway unavailable for tender 1 of 1 (CARD): timeout"
    assert record.code == "gateway-unavailable"


def test_an_order_already_decided_emits_nothing_and_calls_nothing() -> None:
    order = order_created(card("tok_ok", 1000))
    decided = PaymentState(outcome="processed", order_event_id=str(order.event_id))

    assert decide(decided, order, [], NOW) == Decided(decided, [])


def test_tenders_that_do_not_pay_the_total_are_not_charged() -> None:
    order = order_created(card("tok_ok", 900), total=eur(1000))

    record = failed_step(decide(None, order, [], NOW))

    assert record.reason == "tenders pay 900 in EUR, the order totals 1000 EUR"
    assert record.code == "tenders-mismatch"
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

    failed = failure(handle(order, DictState(), gateway, NO_WAIT))

    assert failed.reason == "tender 2 of 2 (CARD) declined: insufficient funds"
    assert failed.code == "insufficient-funds", "the gateway's decline code"
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

    failed = failure(handle(order, DictState(), gateway, NO_WAIT))

    assert failed.retryable
    assert failed.reason.startswith("payment gateway unavailable for tender 2 of 2 (CARD)")
    assert failed.code == "gateway-unavailable"
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

    before_crash = handle(order, DictState(), gateway, NO_WAIT)
    after_restart = handle(order, DictState(), gateway, NO_WAIT)  # the state write was never committed

    assert [record_of(emit).model_dump(exclude={"occurred_at"}) for emit in after_restart] == [
        record_of(emit).model_dump(exclude={"occurred_at"}) for emit in before_crash
    ]
    assert [type(record_of(emit)) for emit in after_restart] == [PaymentFailed, OrderFailed]
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

    def refund(self, idempotency_key: str, transaction_id: str, amount: Money) -> RefundResult:
        raise AssertionError("no refund was asked")

    def credit(self, idempotency_key: str, order_id: str, amount: Money) -> str:
        raise AssertionError("no refund was asked")


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


# Refunds: the pure decision.


def refund_payment(order_id: str, amount: Money) -> RefundPayment:
    return RefundPayment(event_id=uuid.uuid4(), order_id=order_id, occurred_at=NOW, amount=amount, reason="returned")


def inventory_shortage(order_id: str) -> InventoryShortage:
    return InventoryShortage(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        short_lines=[ShortLine(sku="SKU-1", requested=1, available=0)],
    )


def paid(*charges: TenderCharge, **refunds: Any) -> PaymentState:
    return PaymentState(outcome="processed", order_event_id=str(uuid.uuid4()), charges=list(charges), **refunds)


def charged(method: PaymentMethod, minor: int, transaction_id: str) -> TenderCharge:
    return TenderCharge(method=method, amount=eur(minor), transaction_id=transaction_id)


GIFT_CARD_300 = charged(PaymentMethod.GIFT_CARD, 300, "t0")
CARD_700 = charged(PaymentMethod.CARD, 700, "t1")


def records(step: Any) -> list[Any]:
    assert isinstance(step, Decided)
    assert all((emit.topic, emit.key) == (PAYMENTS_EVENTS, "order-1") for emit in step.emits)
    return [emit.record for emit in step.emits]


def test_a_refund_goes_back_to_the_newest_charge_first_until_the_amount_is_covered() -> None:
    state = paid(GIFT_CARD_300, CARD_700)
    ask = refund_asked(refund_payment("order-1", eur(800)))

    first = decide_refund(state, ask, [], NOW)
    second = decide_refund(state, ask, [TenderRefunded(1, "r1")], NOW)
    final = decide_refund(state, ask, [TenderRefunded(1, "r1"), TenderRefunded(0, "r0")], NOW)

    assert first == RefundTender(1, "t1", eur(700), f"{ask.cause_id}/refund/1")
    assert second == RefundTender(0, "t0", eur(100), f"{ask.cause_id}/refund/0")
    assert records(final) == [
        PaymentRefunded(
            event_id=derive_event_id(ask.cause_id, "refunded/1"),
            order_id="order-1",
            occurred_at=NOW,
            amount=eur(700),
            method=PaymentMethod.CARD,
            transaction_id="r1",
            request_id=str(ask.cause_id),
        ),
        PaymentRefunded(
            event_id=derive_event_id(ask.cause_id, "refunded/0"),
            order_id="order-1",
            occurred_at=NOW,
            amount=eur(100),
            method=PaymentMethod.GIFT_CARD,
            transaction_id="r0",
            request_id=str(ask.cause_id),
        ),
    ]
    assert isinstance(final, Decided)
    assert (final.state.returned_minor, final.state.refunds_done) == ({1: 700, 0: 100}, [ask.cause_id])


def test_a_partial_refund_takes_only_what_it_needs_of_the_newest_charge() -> None:
    ask = refund_asked(refund_payment("order-1", eur(250)))

    final = decide_refund(paid(GIFT_CARD_300, CARD_700), ask, [TenderRefunded(1, "r1")], NOW)

    [refunded] = records(final)
    assert (refunded.amount, refunded.method) == (eur(250), PaymentMethod.CARD)


def test_a_tender_that_refuses_the_refund_gives_back_in_store_credit() -> None:
    state = paid(CARD_700)
    ask = refund_asked(refund_payment("order-1", eur(700)))

    fallback = decide_refund(state, ask, [RefundRefused(0, "card closed, refund refused")], NOW)
    final = decide_refund(state, ask, [RefundRefused(0, "card closed, refund refused"), TenderCredited(0, "c0")], NOW)

    assert fallback == CreditTender(0, eur(700), f"{ask.cause_id}/credit/0")
    [refunded] = records(final)
    assert (refunded.amount, refunded.method, refunded.transaction_id) == (eur(700), PaymentMethod.STORE_CREDIT, "c0")


def test_a_shortage_asks_for_everything_still_charged() -> None:
    state = paid(GIFT_CARD_300, CARD_700, returned_minor={1: 200})
    ask = refund_asked(inventory_shortage("order-1"))

    first = decide_refund(state, ask, [], NOW)
    second = decide_refund(state, ask, [TenderRefunded(1, "r1")], NOW)

    assert ask.amount is None
    assert first == RefundTender(1, "t1", eur(500), f"{ask.cause_id}/refund/1")
    assert second == RefundTender(0, "t0", eur(300), f"{ask.cause_id}/refund/0")


def test_a_shortage_with_nothing_left_charged_refunds_nothing_and_ends_the_order() -> None:
    ask = refund_asked(inventory_shortage("order-1"))

    final = decide_refund(paid(CARD_700, returned_minor={0: 700}), ask, [], NOW)

    assert isinstance(final, Decided) and final.state.refunds_done == [ask.cause_id]
    [told] = final.emits
    assert (told.topic, told.key) == (ORDERS_EVENTS, "order-1")
    assert isinstance(told.record, OrderFailed) and told.record.refunded == eur(700), "given back before, in all"


def test_a_shortage_s_refund_ends_the_order_saying_what_went_back() -> None:
    state = paid(GIFT_CARD_300, CARD_700)
    shortage = inventory_shortage("order-1")
    ask = refund_asked(shortage)

    final = decide_refund(
        state, ask, [RefundRefused(1, "card closed"), TenderCredited(1, "c1"), TenderRefunded(0, "r0")], NOW
    )

    assert isinstance(final, Decided)
    *refunds, told = final.emits
    assert [type(emit.record) for emit in refunds] == [PaymentRefunded, PaymentRefunded]
    assert (told.topic, told.key) == (ORDERS_EVENTS, "order-1")
    assert told.record == OrderFailed(
        event_id=derive_event_id(shortage.event_id, "order-failed"),
        order_id="order-1",
        occurred_at=NOW,
        reason=OrderFailureReason.OUT_OF_STOCK,
        detail="out of stock: SKU-1 (0 of 1 available)",
        refunded=eur(1000),
        caused_by=shortage.event_id,
    )


def test_a_refund_asked_by_a_command_does_not_end_the_order() -> None:
    ask = refund_asked(refund_payment("order-1", eur(700)))

    final = decide_refund(paid(CARD_700), ask, [TenderRefunded(0, "r0")], NOW)

    assert [type(record) for record in records(final)] == [PaymentRefunded]


def test_the_detail_of_an_order_s_end_is_cut_to_its_declared_length() -> None:
    order = order_created(card("tok_declined", 1000))
    refusal = TenderRefused(0, "card declined " * 100, code="card-declined")

    step = decide(None, order, [refusal], NOW)

    assert isinstance(step, Decided)
    failed, told = (emit.record for emit in step.emits)
    assert isinstance(failed, PaymentFailed) and isinstance(told, OrderFailed)
    assert len(failed.reason) > DETAIL_LENGTH == 500
    assert told.detail == failed.reason[: DETAIL_LENGTH - 1] + "…"


def test_a_refund_above_what_stays_charged_gives_back_the_rest_and_fails_the_difference() -> None:
    state = paid(GIFT_CARD_300, CARD_700, returned_minor={1: 700})
    ask = refund_asked(refund_payment("order-1", eur(500)))

    call = decide_refund(state, ask, [], NOW)
    final = decide_refund(state, ask, [TenderRefunded(0, "r0")], NOW)

    assert call == RefundTender(0, "t0", eur(300), f"{ask.cause_id}/refund/0")
    refunded, failed = records(final)
    assert (refunded.amount, refunded.method) == (eur(300), PaymentMethod.GIFT_CARD)
    assert failed == PaymentRefundFailed(
        event_id=derive_event_id(ask.cause_id, "refund-failed"),
        order_id="order-1",
        occurred_at=NOW,
        amount=eur(200),
        reason="only 300 of the 500 EUR asked stayed charged",
        request_id=str(ask.cause_id),
    )
    assert isinstance(final, Decided) and final.state.returned_minor == {0: 300, 1: 700}


@pytest.mark.parametrize(
    ("state", "amount", "reason"),
    [
        (PaymentState(outcome="failed", order_event_id="e"), eur(100), "the payment failed, nothing was charged"),
        (paid(CARD_700), eur(0), "a refund must be of a positive amount, not 0"),
        (
            paid(CARD_700),
            Money(amount_minor=100, currency="USD"),
            "refund asked in USD, the order was paid in EUR",
        ),
    ],
)
def test_a_refund_nothing_can_be_given_back_of_fails_whole(state: PaymentState, amount: Money, reason: str) -> None:
    ask = refund_asked(refund_payment("order-1", amount))

    step = decide_refund(state, ask, [], NOW)

    [failed] = records(step)
    assert isinstance(failed, PaymentRefundFailed)
    assert (failed.amount, failed.reason) == (amount, reason)
    assert isinstance(step, Decided) and step.state.refunds_done == [ask.cause_id]


def test_a_refund_asked_before_the_payment_is_decided_waits_once() -> None:
    ask = refund_asked(refund_payment("order-1", eur(100)))

    first = decide_refund(None, ask, [], NOW)
    assert isinstance(first, Decided)
    again = decide_refund(first.state, ask, [], NOW)

    assert first == Decided(PaymentState(refunds_waiting=[ask]), [])
    assert again == first


def test_a_request_carried_out_before_calls_nothing_and_emits_nothing() -> None:
    ask = refund_asked(refund_payment("order-1", eur(100)))
    done = paid(CARD_700, returned_minor={0: 100}, refunds_done=[ask.cause_id])

    assert decide_refund(done, ask, [], NOW) == Decided(done, [])


def test_an_order_decided_after_refunds_were_asked_keeps_them_waiting_for_their_turn() -> None:
    order = order_created(card("tok_ok", 1000))
    ask = RefundAsk(cause_id=uuid.uuid4(), order_id=order.order_id, amount=eur(100))

    step = decide(PaymentState(refunds_waiting=[ask]), order, [TenderCharged(0, "t0")], NOW)

    assert isinstance(step, Decided)
    assert (step.state.outcome, step.state.refunds_waiting) == ("processed", [ask])


# Refunds: handle against the simulated gateway.


def refunds_in(emits: list[Emit]) -> list[PaymentRefunded]:
    """The records of `emits`, every one a `PaymentRefunded`."""
    refunds = [emit.record for emit in emits if isinstance(emit.record, PaymentRefunded)]
    assert len(refunds) == len(emits)
    return refunds


def paid_order(gateway: SimulatedPaymentGateway, state: State, *tenders: Tender) -> OrderCreated:
    order = order_created(*tenders)
    [emit] = handle(order, state, gateway, NO_WAIT)
    assert isinstance(emit.record, PaymentProcessed)
    return order


def test_a_refund_of_part_of_a_multi_tender_order_goes_to_the_newest_tenders(
    gateway: SimulatedPaymentGateway,
) -> None:
    state = DictState()
    order = paid_order(gateway, state, gift_card("gc_ok_1", 300), store_credit("sc_1", 200), card("tok_ok_1", 500))

    refunds = refunds_in(handle(refund_payment(order.order_id, eur(600)), state, gateway, NO_WAIT))

    assert [(refund.method, refund.amount) for refund in refunds] == [
        (PaymentMethod.CARD, eur(500)),
        (PaymentMethod.STORE_CREDIT, eur(100)),
    ]
    assert [refund.transaction_id for refund in refunds] == [
        effect.transaction_id for effect in gateway.effects(order.order_id) if effect.kind == "refund"
    ]
    assert gateway.refunded_total(order.order_id) == 600
    assert gateway.out_of_pocket(order.order_id) == 400


def test_a_card_that_refuses_refunds_is_made_good_in_store_credit(gateway: SimulatedPaymentGateway) -> None:
    state = DictState()
    order = paid_order(gateway, state, gift_card("gc_ok_1", 300), card("tok_norefund_1", 700))

    card_part, gift_card_part = handle(refund_payment(order.order_id, eur(1000)), state, gateway, NO_WAIT)

    assert isinstance(card_part.record, PaymentRefunded) and isinstance(gift_card_part.record, PaymentRefunded)
    assert (card_part.record.method, card_part.record.amount) == (PaymentMethod.STORE_CREDIT, eur(700))
    assert (gift_card_part.record.method, gift_card_part.record.amount) == (PaymentMethod.GIFT_CARD, eur(300))
    [credit] = [effect for effect in gateway.effects(order.order_id) if effect.kind == "credit"]
    assert credit.transaction_id == card_part.record.transaction_id
    assert (gateway.refunded_total(order.order_id), gateway.credited_total(order.order_id)) == (300, 700)
    assert gateway.out_of_pocket(order.order_id) == 0


def test_a_refund_the_gateway_stays_unavailable_for_is_made_good_in_store_credit(
    gateway: SimulatedPaymentGateway,
) -> None:
    state = DictState()
    order = paid_order(gateway, state, card("tok_flaky_1", 1000))
    two_tries = RetryPolicy(attempts=2, first_delay_s=0, max_delay_s=0)  # a flaky refund fails twice
    refund = refund_payment(order.order_id, eur(400))

    [emit] = handle(refund, state, gateway, two_tries)

    assert isinstance(emit.record, PaymentRefunded)
    assert (emit.record.method, emit.record.amount) == (PaymentMethod.STORE_CREDIT, eur(400))
    assert gateway.attempts(f"{refund.event_id}/refund/0") == 2
    assert (gateway.refunded_total(order.order_id), gateway.credited_total(order.order_id)) == (0, 400)


def test_a_refund_asked_without_store_credit_reports_what_the_unavailable_gateway_kept(
    gateway: SimulatedPaymentGateway,
) -> None:
    state = DictState()
    order = paid_order(gateway, state, gift_card("gc_ok_1", 300), card("tok_refunddown_1", 700))
    refund = refund_payment(order.order_id, eur(1000)).model_copy(update={"store_credit_if_unavailable": False})

    gift_card_part, failed = handle(refund, state, gateway, NO_WAIT)

    assert isinstance(failed.record, PaymentRefundFailed) and isinstance(gift_card_part.record, PaymentRefunded)
    assert (failed.record.amount, failed.record.retryable) == (eur(700), True)
    assert failed.record.request_id == str(refund.event_id)
    assert (gift_card_part.record.method, gift_card_part.record.amount) == (PaymentMethod.GIFT_CARD, eur(300))
    assert gateway.credited_total(order.order_id) == 0
    assert gateway.out_of_pocket(order.order_id) == 700
    asked_again = refund_payment(order.order_id, eur(700))  # the asker's next try may fall back to credit
    [credited] = handle(asked_again, state, gateway, NO_WAIT)
    assert isinstance(credited.record, PaymentRefunded) and credited.record.method == PaymentMethod.STORE_CREDIT
    assert gateway.out_of_pocket(order.order_id) == 0


def test_a_flaky_refund_is_retried_until_made(gateway: SimulatedPaymentGateway) -> None:
    state = DictState()
    order = paid_order(gateway, state, card("tok_flaky_1", 1000))

    [emit] = handle(refund_payment(order.order_id, eur(1000)), state, gateway, NO_WAIT)

    assert isinstance(emit.record, PaymentRefunded) and emit.record.method == PaymentMethod.CARD
    assert gateway.out_of_pocket(order.order_id) == 0


def test_a_duplicate_refund_payment_refunds_once(gateway: SimulatedPaymentGateway) -> None:
    state = DictState()
    order = paid_order(gateway, state, card("tok_ok_1", 1000))
    refund = refund_payment(order.order_id, eur(400))

    first = handle(refund, state, gateway, NO_WAIT)
    again = handle(refund, state, gateway, NO_WAIT)

    assert len(first) == 1 and again == []
    assert gateway.refunded_total(order.order_id) == 400
    assert set(Counter(effect.idempotency_key for effect in gateway.effects(order.order_id)).values()) == {1}


def test_a_refund_rerun_after_a_crash_emits_the_same_events_and_refunds_once(
    gateway: SimulatedPaymentGateway,
) -> None:
    state = DictState()
    order = paid_order(gateway, state, gift_card("gc_ok_1", 300), card("tok_norefund_1", 700))
    before_crash = PAYMENT.load(state)
    refund = refund_payment(order.order_id, eur(900))

    first = handle(refund, state, gateway, NO_WAIT)
    PAYMENT.save(state, before_crash)  # the state write was never committed
    rerun = handle(refund, state, gateway, NO_WAIT)

    assert [record_of(e).model_dump(exclude={"occurred_at"}) for e in rerun] == [
        record_of(e).model_dump(exclude={"occurred_at"}) for e in first
    ]
    assert len(gateway.effects(order.order_id)) == 2 + 2  # two charges, then a credit and a refund
    assert gateway.out_of_pocket(order.order_id) == 100


def test_an_inventory_shortage_refunds_the_order_in_full_once(gateway: SimulatedPaymentGateway) -> None:
    state = DictState()
    order = paid_order(gateway, state, gift_card("gc_ok_1", 300), card("tok_ok_1", 700))
    shortage = inventory_shortage(order.order_id)

    *refunded, told = handle(shortage, state, gateway, NO_WAIT)
    replayed = handle(shortage, state, gateway, NO_WAIT)

    refunds = refunds_in(refunded)
    assert (told.topic, told.key) == (ORDERS_EVENTS, order.order_id)
    assert isinstance(told.record, OrderFailed)
    assert (told.record.event_id, told.record.reason, told.record.refunded) == (
        derive_event_id(shortage.event_id, "order-failed"),
        OrderFailureReason.OUT_OF_STOCK,
        eur(1000),
    )
    assert [refund.event_id for refund in refunds] == [
        derive_event_id(shortage.event_id, "refunded/1"),
        derive_event_id(shortage.event_id, "refunded/0"),
    ]
    assert replayed == []
    assert gateway.refunded_total(order.order_id) == 1000
    assert gateway.out_of_pocket(order.order_id) == 0


def test_refunds_never_give_back_more_than_was_charged(gateway: SimulatedPaymentGateway) -> None:
    state = DictState()
    order = paid_order(gateway, state, gift_card("gc_ok_1", 300), card("tok_norefund_1", 700))

    handle(refund_payment(order.order_id, eur(600)), state, gateway, NO_WAIT)
    *refunded, failed = handle(refund_payment(order.order_id, eur(600)), state, gateway, NO_WAIT)
    after_shortage = handle(inventory_shortage(order.order_id), state, gateway, NO_WAIT)

    # What stays charged on the card (100, in store credit) and on the gift card (300); the rest fails.
    assert [refund.amount for refund in refunds_in(refunded)] == [eur(100), eur(300)]
    assert isinstance(failed.record, PaymentRefundFailed) and failed.record.amount == eur(200)
    [told] = after_shortage
    assert isinstance(told.record, OrderFailed) and told.record.refunded == eur(1000)
    assert gateway.approved_total(order.order_id) == 1000
    assert gateway.refunded_total(order.order_id) + gateway.credited_total(order.order_id) == 1000
    assert gateway.out_of_pocket(order.order_id) == 0


def test_a_refund_asked_before_the_order_is_carried_out_once_it_is_paid(gateway: SimulatedPaymentGateway) -> None:
    state = DictState()
    order = order_created(gift_card("gc_ok_1", 300), card("tok_ok_1", 700))
    refund = refund_payment(order.order_id, eur(500))

    early = handle(refund, state, gateway, NO_WAIT)
    processed, refunded = handle(order, state, gateway, NO_WAIT)
    redelivered = handle(refund, state, gateway, NO_WAIT)

    assert early == [] and redelivered == []
    assert isinstance(processed.record, PaymentProcessed)
    assert isinstance(refunded.record, PaymentRefunded)
    assert (refunded.record.method, refunded.record.amount) == (PaymentMethod.CARD, eur(500))
    assert gateway.out_of_pocket(order.order_id) == 500
    known = PAYMENT.load(state)
    assert known is not None and known.refunds_waiting == []


def test_a_refund_asked_before_a_payment_that_fails_is_answered_with_a_failure(
    gateway: SimulatedPaymentGateway,
) -> None:
    state = DictState()
    order = order_created(card("tok_declined_1", 1000))
    refund = refund_payment(order.order_id, eur(1000))

    handle(refund, state, gateway, NO_WAIT)
    *payment_failed, refund_failed = handle(order, state, gateway, NO_WAIT)

    failure(payment_failed)
    assert isinstance(refund_failed.record, PaymentRefundFailed)
    assert refund_failed.record == PaymentRefundFailed(
        event_id=derive_event_id(refund.event_id, "refund-failed"),
        order_id=order.order_id,
        occurred_at=refund_failed.record.occurred_at,
        amount=eur(1000),
        reason="the payment failed, nothing was charged",
        request_id=str(refund.event_id),
    )
    assert gateway.effects(order.order_id) == []


def test_a_refund_after_a_failed_payment_is_answered_with_a_failure(gateway: SimulatedPaymentGateway) -> None:
    state = DictState()
    order = order_created(card("tok_nofunds_1", 1000))
    handle(order, state, gateway, NO_WAIT)

    [emit] = handle(refund_payment(order.order_id, eur(1000)), state, gateway, NO_WAIT)

    assert isinstance(emit.record, PaymentRefundFailed)
    assert emit.record.reason == "the payment failed, nothing was charged"
    assert gateway.effects(order.order_id) == []


class RefundsNeverAnswer:
    """A gateway that approves every charge and can neither refund nor credit."""

    def charge(
        self, idempotency_key: str, method: PaymentMethod, token: str, amount: Money, *, order_id: str
    ) -> ChargeResult:
        return ChargeResult("approved", f"txn-{idempotency_key}")

    def void(self, idempotency_key: str, transaction_id: str) -> None:
        raise AssertionError("no void was asked")

    def refund(self, idempotency_key: str, transaction_id: str, amount: Money) -> RefundResult:
        raise TransientError("refund timed out")

    def credit(self, idempotency_key: str, order_id: str, amount: Money) -> str:
        raise TransientError("credit timed out")


def test_a_credit_that_keeps_failing_raises_and_leaves_the_state_as_it_was() -> None:
    state = DictState()
    order = order_created(card("tok_ok_1", 1000))
    handle(order, state, RefundsNeverAnswer(), NO_WAIT)
    paid_state = PAYMENT.load(state)

    with pytest.raises(TransientError):
        handle(refund_payment(order.order_id, eur(1000)), state, RefundsNeverAnswer(), NO_WAIT)
    assert PAYMENT.load(state) == paid_state


def test_refund_requests_and_shortages_come_from_an_input_topic() -> None:
    carried = {name for topic in INPUTS for name in topic.records}
    assert {OrderCreated.AVRO_NAME, RefundPayment.AVRO_NAME, InventoryShortage.AVRO_NAME} <= carried
