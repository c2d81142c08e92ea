"""The cancellation saga, driven record by record through the processor's handler (no broker)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from processors.runtime.records import Emit
from processors.sagas import processor
from processors.sagas.cancellation import ACTIVE, CANCELLATION, POLICIES, CancellationSaga, Phase, policies
from schemas.models import (
    AvroRecord,
    CancelOrder,
    InventoryReleased,
    InventoryReserved,
    InventoryShortage,
    Money,
    OrderCancellationRejected,
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderFailed,
    OrderRejected,
    OrderShipped,
    PaymentFailed,
    PaymentMethod,
    PaymentProcessed,
    PaymentRefunded,
    PaymentRefundFailed,
    RefundPayment,
    ReleaseInventory,
    RetrySaga,
    RoutingSlipCompensationFailed,
    RoutingSlipCompleted,
    RoutingSlipFaulted,
    SagaTransitioned,
    ShortLine,
    StockLine,
    StopFulfillment,
    TimerFired,
    TimerScheduled,
)
from tests.factories import NOW, DictState, a_valid_order, order_created_from
from topology.topics import TIMERS

ORDER = "o-1"
TOTAL = Money(amount_minor=3000, currency="EUR")
LINES = [StockLine(sku="SKU-MUG-01", quantity=2), StockLine(sku="SKU-TEA-01", quantity=1)]
DOCS = Path(__file__).parents[2] / "docs" / "sagas.md"


def base() -> dict[str, Any]:
    return {"event_id": uuid.uuid4(), "order_id": ORDER, "occurred_at": NOW}


def created() -> OrderCreated:
    return order_created_from(a_valid_order(ORDER))


def paid() -> PaymentProcessed:
    return PaymentProcessed(**base(), amount=TOTAL, charges=[], lines=LINES)


def reserved() -> InventoryReserved:
    return InventoryReserved(**base(), lines=LINES)


def slip_faulted() -> RoutingSlipFaulted:
    return RoutingSlipFaulted(**base(), tracking_number=uuid.uuid4(), reason="stopped: changed my mind")


def refunded(minor: int, request_id: str | None = None) -> PaymentRefunded:
    amount = Money(amount_minor=minor, currency="EUR")
    return PaymentRefunded(
        **base(), amount=amount, method=PaymentMethod.CARD, transaction_id="t-1", request_id=request_id
    )


def released() -> InventoryReleased:
    return InventoryReleased(**base(), lines=LINES)


def shipped() -> OrderShipped:
    return OrderShipped(**base(), carrier="dhl", label_id="l-1")


def cancel() -> CancelOrder:
    return CancelOrder(**base(), reason="changed my mind")


class Saga:
    """One order's saga state, fed records; remembers what each step emitted."""

    def __init__(self, *history: AvroRecord) -> None:
        self.state = DictState()
        self.tombstones: list[tuple[str, str]] = []
        for record in history:
            self.feed(record)

    def feed(self, record: AvroRecord) -> list[AvroRecord]:
        emitted: list[Emit] = processor.handle(record, self.state)
        self.last = [emit.record for emit in emitted if emit.record is not None]
        self.tombstones = [(emit.topic.name, emit.key) for emit in emitted if emit.record is None]
        return self.last

    @property
    def saga(self) -> CancellationSaga:
        saga = processor.CANCELLATION.load(self.state)
        assert saga is not None
        return saga

    def fire_timer(self) -> list[AvroRecord]:
        return self.feed(
            TimerFired(
                **base(),
                timer_id=f"{ORDER}/cancellation",
                due_at=NOW,
                purpose="test",
                attempt=self.saga.timer_generation,
            )
        )


def of_type(records: list[AvroRecord], kind: type[Any]) -> list[Any]:
    return [record for record in records if isinstance(record, kind)]


def transition(records: list[AvroRecord]) -> tuple[str, str]:
    [moved] = of_type(records, SagaTransitioned)
    return moved.from_state, moved.to_state


def test_a_cancellation_during_fulfillment_stops_the_slip_refunds_releases_and_ends_cancelled() -> None:
    saga = Saga(a_valid_order(ORDER), created(), paid(), reserved())

    stopping = saga.feed(cancel())
    assert transition(stopping) == ("Idle", "StoppingFulfillment")
    assert len(of_type(stopping, StopFulfillment)) == 1 and len(of_type(stopping, TimerScheduled)) == 1

    refunding = saga.feed(slip_faulted())
    [refund] = of_type(refunding, RefundPayment)
    assert (refund.amount, refund.store_credit_if_unavailable) == (TOTAL, False)

    releasing = saga.feed(refunded(3000, request_id=str(refund.event_id)))
    [release] = of_type(releasing, ReleaseInventory)
    assert release.lines == LINES

    done = saga.feed(released())
    [cancelled] = of_type(done, OrderCancelled)
    assert cancelled.refunded == TOTAL
    assert transition(done) == ("ReleasingInventory", "Cancelled")
    assert saga.tombstones == [(TIMERS.name, f"{ORDER}/cancellation")], "its last timer is cancelled"


@pytest.mark.parametrize(
    ("history", "reason"),
    [
        ((a_valid_order(ORDER), created(), paid(), reserved(), OrderDelivered(**base(), carrier="dhl")), "delivered"),
        ((a_valid_order(ORDER), created(), paid(), reserved(), shipped()), "has shipped"),
        (
            (a_valid_order(ORDER), created(), PaymentFailed(**base(), amount=TOTAL, reason="card declined")),
            "payment failed (card declined)",
        ),
        (
            (
                a_valid_order(ORDER),
                created(),
                paid(),
                InventoryShortage(**base(), short_lines=[ShortLine(sku="SKU-MUG-01", requested=2, available=0)]),
            ),
            "out of stock",
        ),
    ],
    ids=["delivered", "shipped", "payment-failed", "shortage"],
)
def test_an_order_that_cannot_be_cancelled_is_rejected_with_its_reason(
    history: tuple[AvroRecord, ...], reason: str
) -> None:
    saga = Saga(*history)
    command = cancel()

    [rejected] = of_type(saga.feed(command), OrderCancellationRejected)

    assert reason in rejected.reason
    assert rejected.cancel_event_id == command.event_id
    assert saga.saga.phase == Phase.REJECTED
    assert saga.tombstones == [], "it never set a timer"


def test_a_cancellation_that_overtakes_its_order_waits_for_it_and_then_cancels_it() -> None:
    saga = Saga()

    waiting = saga.feed(cancel())
    assert transition(waiting) == ("Idle", "AwaitingOrder")
    [timer] = of_type(waiting, TimerScheduled)
    assert (timer.due_at - timer.occurred_at).total_seconds() == POLICIES[Phase.AWAITING_ORDER].timeout_s
    assert saga.feed(a_valid_order(ORDER)) == []  # placed: still waiting, for intake now
    assert transition(saga.feed(created())) == ("AwaitingOrder", "AwaitingPayment")
    assert transition(saga.feed(paid())) == ("AwaitingPayment", "AwaitingInventory")
    assert of_type(saga.feed(reserved()), StopFulfillment)


def test_a_cancellation_whose_order_never_comes_is_refused_as_unknown_after_the_wait() -> None:
    saga = Saga()
    command = cancel()
    saga.feed(command)

    [rejected] = of_type(saga.fire_timer(), OrderCancellationRejected)

    assert (rejected.reason, rejected.code, rejected.cancel_event_id) == (
        "no such order",
        "unknown-order",
        command.event_id,
    )
    assert saga.saga.phase == Phase.REJECTED


def test_the_wait_for_an_order_is_configured_through_the_handler() -> None:
    state = DictState()
    emitted = processor.handle(cancel(), state, step_policies=policies(5.0))
    [timer] = [emit.record for emit in emitted if isinstance(emit.record, TimerScheduled)]
    assert (timer.due_at - timer.occurred_at).total_seconds() == 5.0


def test_a_stop_that_loses_the_race_to_shipping_refuses_the_cancellation_and_refunds_nothing() -> None:
    saga = Saga(a_valid_order(ORDER), created(), paid(), reserved(), cancel())

    outcome = saga.feed(shipped())

    [rejected] = of_type(outcome, OrderCancellationRejected)
    assert rejected.code == "shipped"
    assert of_type(outcome, RefundPayment) == [] and of_type(outcome, ReleaseInventory) == []


def test_a_rejection_that_answers_a_reused_order_id_teaches_the_saga_nothing() -> None:
    saga = Saga(a_valid_order(ORDER), created())
    duplicate = OrderRejected(**base(), reasons=["order id already used"], codes=["duplicate-order-id"])

    assert saga.feed(duplicate) == []
    assert transition(saga.feed(cancel())) == ("Idle", "AwaitingPayment")


def test_a_second_request_during_a_cancellation_that_is_refused_gets_the_same_refusal() -> None:
    saga = Saga(a_valid_order(ORDER), created(), paid(), reserved())
    first, second = cancel(), cancel()
    saga.feed(first)
    assert of_type(saga.feed(second), OrderCancellationRejected) == []  # not yet: the first is under way

    outcome = saga.feed(RoutingSlipCompleted(**base(), tracking_number=uuid.uuid4(), duration_ms=10))

    refusals = of_type(outcome, OrderCancellationRejected)
    assert {refusal.cancel_event_id for refusal in refusals} == {first.event_id, second.event_id}
    assert {(refusal.reason, refusal.code) for refusal in refusals} == {("the order was delivered", "delivered")}


def test_every_request_to_cancel_a_delivered_order_is_answered() -> None:
    saga = Saga(a_valid_order(ORDER), created(), paid(), reserved(), OrderDelivered(**base(), carrier="dhl"))
    first, second = cancel(), cancel()

    [refused_first] = of_type(saga.feed(first), OrderCancellationRejected)
    [refused_second] = of_type(saga.feed(second), OrderCancellationRejected)

    assert (refused_first.cancel_event_id, refused_second.cancel_event_id) == (first.event_id, second.event_id)
    assert refused_first.code == refused_second.code == "delivered"


def test_a_cancellation_before_payment_waits_for_each_decision_then_stops_fulfillment() -> None:
    saga = Saga(a_valid_order(ORDER))

    assert transition(saga.feed(cancel())) == ("Idle", "AwaitingOrder")
    assert transition(saga.feed(created())) == ("AwaitingOrder", "AwaitingPayment")
    assert transition(saga.feed(paid())) == ("AwaitingPayment", "AwaitingInventory")
    stopping = saga.feed(reserved())
    assert transition(stopping) == ("AwaitingInventory", "StoppingFulfillment")
    assert len(of_type(stopping, StopFulfillment)) == 1


def test_a_cancellation_before_payment_of_an_order_whose_payment_fails_is_rejected() -> None:
    saga = Saga(a_valid_order(ORDER), created())
    saga.feed(cancel())

    [rejected] = of_type(saga.feed(PaymentFailed(**base(), amount=TOTAL, reason="declined")), OrderCancellationRejected)

    assert "payment failed" in rejected.reason


def test_the_saga_passes_an_order_s_failure_over_undecoded_as_the_events_that_decided_it_taught_it() -> None:
    [stream] = processor.SPEC.streams

    assert stream.handles is not None
    assert OrderFailed not in stream.handles
    assert {PaymentFailed, InventoryShortage} <= set(stream.handles)


def test_a_slip_that_completes_before_the_stop_takes_effect_rejects_the_cancellation_without_refund() -> None:
    saga = Saga(a_valid_order(ORDER), created(), paid(), reserved(), cancel())

    outcome = saga.feed(RoutingSlipCompleted(**base(), tracking_number=uuid.uuid4(), duration_ms=10))

    [rejected] = of_type(outcome, OrderCancellationRejected)
    assert rejected.reason == "the order was delivered"
    assert of_type(outcome, RefundPayment) == []


def test_duplicates_and_second_requests_never_refund_twice() -> None:
    command = cancel()
    saga = Saga(a_valid_order(ORDER), created(), paid(), reserved(), command, slip_faulted())
    [refund] = of_type(saga.last, RefundPayment)

    assert saga.feed(command) == []  # the same command redelivered
    meanwhile = cancel()
    assert of_type(saga.feed(meanwhile), OrderCancellationRejected) == []  # answered when the first ends
    assert saga.feed(slip_faulted()) == []  # the slip's outcome again, under a new id: no news
    reply = refunded(3000, request_id=str(refund.event_id))
    assert of_type(saga.feed(reply), ReleaseInventory)
    assert saga.feed(reply) == []  # the refund reported twice
    ended = saga.feed(released())
    assert len(of_type(ended, OrderCancelled)) == 1
    [answer] = of_type(ended, OrderCancellationRejected)
    assert (answer.cancel_event_id, answer.code) == (meanwhile.event_id, "already-cancelled")
    [again] = of_type(saga.feed(cancel()), OrderCancellationRejected)
    assert again.reason == "the order is already cancelled"
    assert processor.FACTS.load(saga.state).refunded_minor == 3000  # type: ignore[union-attr]


def test_a_refund_the_gateway_cannot_make_is_retried_with_backoff_then_made_good_in_store_credit() -> None:
    saga = Saga(a_valid_order(ORDER), created(), paid(), reserved(), cancel(), slip_faulted())
    policy = POLICIES[Phase.REFUNDING]
    delays = []
    for attempt in range(1, policy.attempts + 1):
        request = str(saga.saga.refund_request_id)
        unavailable = PaymentRefundFailed(**base(), amount=TOTAL, reason="down", request_id=request, retryable=True)
        outcome = saga.feed(unavailable)
        if attempt < policy.attempts:
            [timer] = of_type(outcome, TimerScheduled)
            delays.append((timer.due_at - timer.occurred_at).total_seconds())
            assert transition(outcome) == ("Refunding", "Refunding")
            [retry] = of_type(saga.fire_timer(), RefundPayment)
            assert retry.store_credit_if_unavailable is False
            assert str(retry.event_id) != request
    assert delays == [policy.backoff_s, policy.backoff_s * 2]
    assert transition(outcome) == ("Refunding", "RefundingToStoreCredit")
    [fallback] = of_type(outcome, RefundPayment)
    assert fallback.store_credit_if_unavailable is True


def test_a_step_that_times_out_is_repeated_then_fails_and_a_retry_resumes_it() -> None:
    saga = Saga(a_valid_order(ORDER), created(), paid(), reserved(), cancel())
    stale_generation = saga.saga.timer_generation

    for _ in range(POLICIES[Phase.STOPPING_FULFILLMENT].attempts - 1):
        assert len(of_type(saga.fire_timer(), StopFulfillment)) == 1
    failed = saga.fire_timer()
    [moved] = of_type(failed, SagaTransitioned)
    assert (moved.to_state, moved.reason) == ("Failed", "StoppingFulfillment got no answer in 3 attempts of 30s")
    stale = TimerFired(**base(), timer_id="x", due_at=NOW, purpose="old", attempt=stale_generation)
    assert saga.feed(stale) == []

    saga.feed(slip_faulted())  # the slip ends meanwhile: a fact, but a failed saga waits for its operator
    assert saga.saga.phase == Phase.FAILED
    resumed = saga.feed(RetrySaga(**base()))
    assert transition(resumed) == ("Failed", "Refunding")


def test_a_slip_that_cannot_be_undone_fails_the_saga_until_resumed_and_retried() -> None:
    saga = Saga(a_valid_order(ORDER), created(), paid(), reserved(), cancel())
    stuck = RoutingSlipCompensationFailed(**base(), tracking_number=uuid.uuid4(), activity="pack", reason="sealed")

    [moved] = of_type(saga.feed(stuck), SagaTransitioned)
    assert moved.to_state == "Failed" and "compensating pack failed: sealed" in str(moved.reason)
    assert transition(saga.feed(RetrySaga(**base()))) == ("Failed", "Failed")  # still stuck
    saga.feed(slip_faulted())  # an operator resumed the slip, skipping the failed step
    assert transition(saga.feed(RetrySaga(**base()))) == ("Failed", "Refunding")


def test_a_cancellation_of_an_order_still_in_intake_is_rejected_when_intake_never_decides() -> None:
    saga = Saga(a_valid_order(ORDER), cancel())

    [rejected] = of_type(saga.fire_timer(), OrderCancellationRejected)

    assert "intake never decided" in rejected.reason and rejected.code == "never-decided"


def test_every_active_state_has_a_timeout_and_every_state_is_reachable() -> None:
    assert set(POLICIES) == set(ACTIVE)
    assert set(CANCELLATION.states()) == set(Phase)


def test_the_diagram_in_the_docs_is_the_table_s_own() -> None:
    assert CANCELLATION.mermaid() in DOCS.read_text(), "run `oms sagas diagram --write` to refresh docs/sagas.md"
