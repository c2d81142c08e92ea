"""The reconciliation of a run (ops/reconciliation.py) on real flows of the declared processors, in memory:
clean flows reconcile exactly, and each way a failure could break an order is named."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from ops.reconciliation import Ledgers, Reconciliation, Seen, Stock, reconcile
from processors.adapters.fulfillment_simulators import FulfillmentLedger, default_fulfillment_ledger
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.runtime.inprocess import InProcessRunner
from processors.runtime.records import Emit, utc_now
from processors.services import STREAM_PROCESSORS
from schemas.models import (
    AvroRecord,
    CancelOrder,
    InventoryReleased,
    InventoryShortage,
    Money,
    NotificationSent,
    OrderCancelled,
    OrderDelivered,
    OrderFailed,
    OrderFailureReason,
    PaymentFailed,
    PaymentProcessed,
    PaymentRefunded,
    PlaceOrder,
    RoutingSlipActivityCompensated,
    RoutingSlipActivityCompleted,
    RoutingSlipCreated,
    RoutingSlipRevised,
    StockLevel,
)
from tests.factories import order_of
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ORDERS_COMMANDS, fulfillment_activity

SEEDED = {"SKU-MUG-01": 10, "SKU-TEA-01": 10, "SKU-SKI-01": 2}
SHIP = fulfillment_activity("ship").name


class Run:
    """Orders through every declared processor in memory, and what a chaos run would read afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(run_dir=tmp_path)
        self.runner = InProcessRunner(STREAM_PROCESSORS, self.settings)
        self.cancels: dict[str, int] = {}
        self.runner.send(
            *(
                Emit(
                    INVENTORY_STOCK, sku, StockLevel(event_id=uuid.uuid4(), sku=sku, available=n, occurred_at=utc_now())
                )
                for sku, n in SEEDED.items()
            )
        )
        self.runner.run()
        self.delivered = self.place(order_of("delivered", {"SKU-MUG-01": 2}))
        self.short = self.place(order_of("short", {"SKU-TEA-01": 1, "SKU-RARE-01": 1}))
        self.declined = self.place(self.paid_by(order_of("declined", {"SKU-MUG-01": 1}), "tok_declined_1"))
        self.rejected = self.place(order_of("rejected", {"SKU-MUG-01": 1}).model_copy(update={"lines": []}))
        self.cancel(self.rejected)  # refused, and nobody to tell: intake never took the order's address
        self.revised = self.place(order_of("revised", {"SKU-SKI-01": 1}))  # too long for the first carrier
        self.cancelled = order_of("cancelled", {"SKU-MUG-01": 1, "SKU-TEA-01": 3})
        self.runner.hold(SHIP)  # the carrier's queue is behind: the cancel overtakes the packed parcel
        self.place(self.cancelled, until=RoutingSlipCreated)
        self.cancel(self.cancelled.order_id)
        self.runner.release(SHIP)
        self.runner.run()
        self.refused = self.place(order_of("refused", {"SKU-TEA-01": 1}))
        self.cancel(self.refused)
        self.orders = [
            self.delivered,
            self.short,
            self.declined,
            self.rejected,
            self.cancelled.order_id,
            self.refused,
            self.revised,
        ]

    @staticmethod
    def paid_by(order: PlaceOrder, token: str) -> PlaceOrder:
        return order.model_copy(update={"tenders": [order.tenders[0].model_copy(update={"token": token})]})

    def place(self, order: PlaceOrder, until: type[AvroRecord] | None = None) -> str:
        self.runner.send(Emit(ORDERS_COMMANDS, order.order_id, order))
        self.runner.run(until=None if until is None else lambda delivered: isinstance(delivered.record, until))
        return order.order_id

    def cancel(self, order_id: str) -> None:
        command = CancelOrder(event_id=uuid.uuid4(), order_id=order_id, occurred_at=utc_now(), reason="changed mind")
        self.runner.send(Emit(ORDERS_COMMANDS, order_id, command))
        self.runner.run()
        self.cancels[order_id] = self.cancels.get(order_id, 0) + 1

    def seen(self) -> list[Seen]:
        return [
            Seen(delivered.outgoing.topic, (delivered.outgoing.key or b"").decode(), delivered.record)
            for delivered in self.runner.log
            if delivered.record is not None
        ]

    def final_stock(self) -> dict[str, int]:
        levels = {record.sku: record.available for record in self.runner.records(StockLevel)}
        return {sku: levels[sku] for sku in SEEDED}

    def ledgers(self) -> Ledgers:
        gateway = SimulatedPaymentGateway(default_ledger_path(self.settings))
        return Ledgers(
            charged={order_id: gateway.approved_total(order_id) for order_id in self.orders},
            returned={
                order_id: gateway.refunded_total(order_id) + gateway.credited_total(order_id)
                for order_id in self.orders
            },
            fulfillment=FulfillmentLedger(default_fulfillment_ledger(self.settings)).effects(),
        )

    def reconcile(self, seen: list[Seen] | None = None, final: dict[str, int] | None = None) -> Reconciliation:
        return reconcile(
            self.orders,
            self.seen() if seen is None else seen,
            cancels=self.cancels,
            stock=Stock(SEEDED, self.final_stock() if final is None else final),
            ledgers=self.ledgers(),
            dead_letters={"oms.orders.commands.dlq": 0},
        )


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def rules(result: Reconciliation) -> dict[str, set[str]]:
    """Violated rules, each with the orders that broke it."""
    broken: dict[str, set[str]] = {}
    for violation in result.violations:
        broken.setdefault(violation.rule, set()).add(violation.order_id)
    return broken


def without(seen: list[Seen], kind: type[AvroRecord], order_id: str, count: int = 1) -> list[Seen]:
    """`seen` less the first `count` records of `kind` about `order_id`."""
    kept, dropped = [], 0
    for item in seen:
        if dropped < count and isinstance(item.record, kind) and item.key == order_id:
            dropped += 1
            continue
        kept.append(item)
    assert dropped == count, f"fewer than {count} {kind.__name__} of {order_id}"
    return kept


def again(seen: list[Seen], kind: type[AvroRecord], order_id: str, new_id: bool = True) -> list[Seen]:
    """`seen` with the first record of `kind` about `order_id` published once more (as a new event, or the same)."""
    first = next(item for item in seen if isinstance(item.record, kind) and item.key == order_id)
    record = first.record.model_copy(update={"event_id": uuid.uuid4()}) if new_id else first.record
    return [*seen, replace(first, record=record)]


def test_real_flows_of_every_outcome_reconcile_exactly(run: Run) -> None:
    result = run.reconcile()

    assert result.ok, result.report()
    assert result.counts["orders"] == 7
    ended = {name: result.counts[f"outcome {name}"] for name in ("delivered", "cancelled", "out-of-stock")}
    assert ended == {"delivered": 3, "cancelled": 1, "out-of-stock": 1}
    assert result.counts["outcome rejected"] == result.counts["outcome payment-failed"] == 1
    assert result.counts["cancellations refused"] == 2
    assert [r.activity for r in run.runner.records(RoutingSlipRevised, run.revised)] == ["ship"]
    shipped = [r for r in run.runner.records(RoutingSlipActivityCompleted, run.revised) if r.activity == "ship"]
    assert len(shipped) == 2, "ship completes, revises to another carrier, and completes again"
    told = {notice.kind.value for notice in run.runner.records(NotificationSent, run.rejected)}
    assert told == {"ORDER_REJECTED"}, "the refusal of a rejected order's cancellation has nobody to go to"
    assert result.counts["activities undone"] > 0 and result.counts["store credit (minor units)"] == 0
    assert "no violation" in result.report()


def test_an_order_that_never_ends_or_ends_twice_breaks_the_one_outcome_rule(run: Run) -> None:
    never = without(run.seen(), OrderDelivered, run.delivered)
    declined = PaymentFailed(
        event_id=uuid.uuid4(),
        order_id=run.cancelled.order_id,
        occurred_at=utc_now(),
        amount=run.cancelled.tenders[0].amount,
        reason="declined",
    )
    twice = [
        *run.seen(),
        Seen("oms.payments.events", run.cancelled.order_id, declined),
        Seen("oms.orders.events", run.cancelled.order_id, OrderFailed(
            event_id=uuid.uuid4(), order_id=run.cancelled.order_id, occurred_at=utc_now(),
            reason=OrderFailureReason.PAYMENT_FAILED, detail="declined", caused_by=declined.event_id,
        )),
    ]  # fmt: skip

    assert rules(run.reconcile(never))["one-outcome"] == {run.delivered}
    assert "2 outcomes: cancelled, payment-failed" in run.reconcile(twice).report()


def test_each_failure_is_told_once_on_the_orders_topic_naming_what_decided_it(run: Run) -> None:
    ends = {order_id: run.runner.records(OrderFailed, order_id) for order_id in (run.declined, run.short)}
    [payment_failed] = run.runner.records(PaymentFailed, run.declined)
    [shortage] = run.runner.records(InventoryShortage, run.short)
    untold = without(without(run.seen(), OrderFailed, run.declined), OrderFailed, run.short)
    stray = [
        *run.seen(),
        Seen("oms.orders.events", run.delivered, ends[run.short][0].model_copy(
            update={"event_id": uuid.uuid4(), "order_id": run.delivered}
        )),
    ]  # fmt: skip

    assert [(end.reason, end.caused_by) for end in ends[run.declined]] == [
        (OrderFailureReason.PAYMENT_FAILED, payment_failed.event_id)
    ]
    assert [(end.reason, end.caused_by) for end in ends[run.short]] == [
        (OrderFailureReason.OUT_OF_STOCK, shortage.event_id)
    ]
    broken = rules(run.reconcile(untold))
    assert broken["told"] == broken["one-outcome"] == {run.declined, run.short}
    assert rules(run.reconcile(stray))["told"] == {run.delivered}


def test_an_out_of_stock_end_that_misstates_the_refund_breaks_the_money_rule(run: Run) -> None:
    seen = run.seen()
    [end] = [item for item in seen if isinstance(item.record, OrderFailed) and item.key == run.short]
    assert isinstance(end.record, OrderFailed) and end.record.refunded is not None
    less = end.record.refunded.amount_minor - 1
    misstated = [
        replace(item, record=end.record.model_copy(update={"refunded": Money(amount_minor=less, currency="EUR")}))
        if item is end
        else item
        for item in seen
    ]

    assert run.reconcile().ok
    assert rules(run.reconcile(misstated)) == {"money": {run.short}}


def test_an_unanswered_cancellation_is_named(run: Run) -> None:
    result = run.reconcile(without(run.seen(), OrderCancelled, run.cancelled.order_id))

    assert {run.cancelled.order_id} <= rules(result)["cancellation"]


def test_a_refund_missing_or_made_twice_breaks_the_money_rule(run: Run) -> None:
    missing = run.reconcile(without(run.seen(), PaymentRefunded, run.short))
    twice = run.reconcile(again(run.seen(), PaymentRefunded, run.cancelled.order_id))
    charged_twice = run.reconcile(again(run.seen(), PaymentProcessed, run.delivered))

    assert run.short in rules(missing)["money"]
    assert "refunded twice" in twice.report() and run.cancelled.order_id in rules(twice)["money"]
    assert "charged 2 times" in charged_twice.report()


def test_the_gateway_disagreeing_with_the_topics_is_named(run: Run) -> None:
    ledgers = run.ledgers()
    charged_more = replace(ledgers, charged={**ledgers.charged, run.delivered: ledgers.charged[run.delivered] + 1})

    result = reconcile(run.orders, run.seen(), cancels=run.cancels, ledgers=charged_more)

    assert rules(result) == {"money": {run.delivered}}


def test_stock_that_does_not_add_up_or_is_released_twice_is_named(run: Run) -> None:
    off_by_one = run.reconcile(final={**run.final_stock(), "SKU-MUG-01": run.final_stock()["SKU-MUG-01"] + 1})
    released_twice = run.reconcile(again(run.seen(), InventoryReleased, run.cancelled.order_id))

    assert rules(off_by_one) == {"stock": {"*"}}
    assert "SKU-MUG-01: seeded 10 - reserved" in off_by_one.report()
    assert run.cancelled.order_id in rules(released_twice)["stock"]
    assert "released twice" in released_twice.report()


def test_a_fulfillment_step_done_twice_or_not_undone_is_named(run: Run) -> None:
    done_twice = run.reconcile(again(run.seen(), RoutingSlipActivityCompleted, run.delivered))
    not_undone = run.reconcile(without(run.seen(), RoutingSlipActivityCompensated, run.cancelled.order_id))
    undone_ledger = run.ledgers()
    outstanding = replace(
        undone_ledger,
        fulfillment=[e for e in undone_ledger.fulfillment if e.kind != "return-to-shelf"],
    )

    assert "done 2 times" in done_twice.report()
    assert rules(not_undone)["fulfillment"] == {run.cancelled.order_id}
    result = reconcile(run.orders, run.seen(), cancels=run.cancels, ledgers=outstanding)
    assert rules(result) == {"fulfillment": {run.cancelled.order_id}}
    assert "['pick'] outstanding" in result.report()


def test_a_notification_missing_or_sent_twice_is_named(run: Run) -> None:
    twice = run.reconcile(again(run.seen(), NotificationSent, run.delivered))
    missing = run.reconcile(without(run.seen(), NotificationSent, run.short))
    rejection_twice = run.reconcile(again(run.seen(), NotificationSent, run.rejected))

    assert rules(twice) == {"notification": {run.delivered}}
    assert rules(missing) == {"notification": {run.short}}
    assert rules(rejection_twice) == {"notification": {run.rejected}}


def test_a_step_done_again_without_a_revision_is_named(run: Run) -> None:
    unrevised = run.reconcile(without(run.seen(), RoutingSlipRevised, run.revised))

    assert rules(unrevised) == {"fulfillment": {run.revised}}
    assert "ship done 2 times" in unrevised.report()


def test_the_same_event_published_twice_breaks_exactly_once(run: Run) -> None:
    result = run.reconcile(again(run.seen(), OrderDelivered, run.delivered, new_id=False))

    assert rules(result) == {"exactly-once": {"*"}}


def test_new_dead_letters_are_violations(run: Run) -> None:
    result = reconcile(run.orders, run.seen(), cancels=run.cancels, dead_letters={"oms.timers.dlq": 2})

    assert [str(violation) for violation in result.violations] == ["*: [dead-letter] 2 new record(s) on oms.timers.dlq"]


def test_an_outcome_that_does_not_fit_the_order_s_label_is_named(run: Run) -> None:
    labels = {run.delivered: "shortage", run.short: "shortage", run.declined: "payment-failed"}

    result = reconcile(run.orders, run.seen(), cancels=run.cancels, expected=labels)

    assert rules(result) == {"one-outcome": {run.delivered}}
