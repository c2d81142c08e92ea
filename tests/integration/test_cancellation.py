"""The cancellation saga end to end on the real broker and registry, from PlaceOrder to its outcome."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.produce import cancel_order, produce_orders, produce_records, produce_retry
from ops.slips import resume
from ops.stock import read_stock
from processors.adapters.fulfillment_simulators import FulfillmentLedger, default_fulfillment_ledger
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.fulfillment.host import PROCESSOR as ACTIVITIES
from processors.sagas.processor import PROCESSOR as SAGAS
from processors.timers import PROCESSOR as TIMERS
from schemas.models import (
    NotificationKind,
    NotificationSent,
    OrderCancellationRejected,
    OrderCancelled,
    OrderDelivered,
    OrderShipped,
    PaymentRefunded,
    PlaceOrder,
    SagaTransitioned,
)
from tests.integration.harness import Processes, Seen, Watcher
from tests.integration.test_choreography import set_stock_and_wait
from tests.integration.test_routing_slips import order
from topology.admin import wait_for_group
from topology.settings import Settings
from topology.topics import (
    INVENTORY_EVENTS,
    INVENTORY_STOCK,
    NOTIFICATIONS_EVENTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
    SAGAS_EVENTS,
)

SKU = "SKU-TEE-01"
OUTCOMES = (OrderCancelled, OrderCancellationRejected)


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    topics = [ORDERS_EVENTS, PAYMENTS_EVENTS, INVENTORY_EVENTS, ROUTING_SLIPS_EVENTS, SAGAS_EVENTS]
    watching = Watcher(settings, registry, [t.name for t in (*topics, NOTIFICATIONS_EVENTS, INVENTORY_STOCK)])
    yield watching
    watching.close()


def tee_order(name: str, token: str = "tok_ok_cancel") -> PlaceOrder:
    placed = order(name, {SKU: 1})
    tender = placed.tenders[0].model_copy(update={"token": token})
    return placed.model_copy(update={"tenders": [tender]})


def cancel(settings: Settings, *order_ids: str) -> None:
    produce_records(settings, ORDERS_COMMANDS, [(i, cancel_order(i, "changed my mind")) for i in order_ids])


def outcome(seen: list[Seen], order_id: str) -> OrderCancelled | OrderCancellationRejected | None:
    return next((s.record for s in seen if s.key == order_id and isinstance(s.record, OUTCOMES)), None)


def wait_for_outcomes(watcher: Watcher, order_ids: list[str], timeout_s: float = 120) -> None:
    watcher.wait_until(
        lambda seen: all(outcome(seen, order_id) is not None for order_id in order_ids),
        timeout_s=timeout_s,
        what="every cancellation decided",
    )


def path(watcher: Watcher, order_id: str) -> list[str]:
    """The saga's states, in order, from its first transition on."""
    moves = [s.record for s in watcher.for_order(order_id) if isinstance(s.record, SagaTransitioned)]
    return [moves[0].from_state, *(move.to_state for move in moves)] if moves else []


def of_type(watcher: Watcher, order_id: str, kind: type) -> list:
    return [s.record for s in watcher.for_order(order_id) if isinstance(s.record, kind)]


def assert_cancelled_and_balanced(settings: Settings, watcher: Watcher, order_id: str) -> None:
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    [cancelled] = of_type(watcher, order_id, OrderCancelled)
    assert gateway.out_of_pocket(order_id) == 0, "charges minus refunds"
    returned = sum(refund.amount.amount_minor for refund in of_type(watcher, order_id, PaymentRefunded))
    assert returned == gateway.approved_total(order_id), "each refund once"
    assert cancelled.refunded is None or cancelled.refunded.amount_minor == returned
    assert FulfillmentLedger(default_fulfillment_ledger(settings)).outstanding(order_id) == [], "fulfillment undone"
    assert of_type(watcher, order_id, OrderShipped) == [], "shipped is the line: a cancelled order never shipped"
    watcher.wait_until(lambda _: bool(cancellation_notices(watcher, order_id)), what="the customer told")
    assert len(cancellation_notices(watcher, order_id)) == 1, "the customer told once"
    assert path(watcher, order_id)[-1] == "Cancelled"


def cancellation_notices(watcher: Watcher, order_id: str) -> list[NotificationSent]:
    notices = of_type(watcher, order_id, NotificationSent)
    return [notice for notice in notices if notice.kind == NotificationKind.ORDER_CANCELLED]


@contextmanager
def activities_held_back(pipeline: Processes, admin: AdminClient) -> Iterator[None]:
    """Fulfillment's activities stopped meanwhile: a slip waits at its first step, so that a cancellation surely
    comes before it ends (in a simulation a slip takes a second; a saga's reaction, after a rebalance, longer)."""
    pipeline.stop("activities")
    try:
        yield
    finally:
        pipeline.start("activities")
    wait_for_group(admin, ACTIVITIES, members=1)


def stopping(watcher: Watcher, order_ids: list[str]) -> None:
    watcher.wait_until(
        lambda _: all("StoppingFulfillment" in path(watcher, order_id) for order_id in order_ids),
        what="every saga stopping fulfillment",
    )


def stage_seen(kind: str, activity: str | None = None) -> Callable[[Seen], bool]:
    def seen(record: Seen) -> bool:
        if record.record_type != kind or record.record is None:
            return False
        return activity is None or record.record.model_dump().get("activity") == activity

    return seen


BEFORE_FULFILLMENT: dict[str, Callable[[Seen], bool]] = {
    "created": stage_seen("OrderCreated"),
    "paid": stage_seen("PaymentProcessed"),
    "reserved": stage_seen("InventoryReserved"),
}
DURING_FULFILLMENT: dict[str, Callable[[Seen], bool]] = {
    "picked": stage_seen("RoutingSlipActivityCompleted", "pick"),
    "packed": stage_seen("RoutingSlipActivityCompleted", "pack"),
    "shipped": stage_seen("OrderShipped"),
    "delivered": stage_seen("OrderDelivered"),
}


def cancel_at_stages(settings: Settings, watcher: Watcher, stages: dict[str, Callable[[Seen], bool]]) -> list[str]:
    """An order per stage, each cancelled as soon as its stage is seen; their ids."""
    at_stage = {stage: tee_order(f"cancel-{stage}") for stage in stages}
    produce_orders(settings, list(at_stage.values()), progress=False)
    waiting = dict(at_stage)
    while waiting:
        watcher.wait_until(
            lambda seen: any(
                stages[stage](s) and s.key == placed.order_id for stage, placed in waiting.items() for s in seen
            ),
            what=f"stages {sorted(waiting)}",
        )
        reached = [
            stage
            for stage, placed in waiting.items()
            if any(stages[stage](s) for s in watcher.for_order(placed.order_id))
        ]
        cancel(settings, *(waiting.pop(stage).order_id for stage in reached))
    return [placed.order_id for placed in at_stage.values()]


def test_a_cancellation_at_every_stage_ends_right_and_money_and_stock_balance(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    set_stock_and_wait(settings, watcher, {SKU: 20})
    with activities_held_back(pipeline, admin):
        with_the_order = tee_order("cancel-at-once")
        produce_orders(settings, [with_the_order], progress=False)
        cancel(settings, with_the_order.order_id)
        early = [with_the_order.order_id, *cancel_at_stages(settings, watcher, BEFORE_FULFILLMENT)]
        stopping(watcher, early)
    late = cancel_at_stages(settings, watcher, DURING_FULFILLMENT)
    wait_for_outcomes(watcher, [*early, *late])

    for order_id in early:
        assert isinstance(outcome(watcher.seen, order_id), OrderCancelled), order_id
    delivered = late[-1]
    rejected = outcome(watcher.seen, delivered)
    assert isinstance(rejected, OrderCancellationRejected) and rejected.reason == "the order was delivered"
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    assert gateway.out_of_pocket(delivered) == gateway.approved_total(delivered) > 0, "a delivered order stays paid"
    kept = 0
    for order_id in [*early, *late]:
        decided = outcome(watcher.seen, order_id)
        if isinstance(decided, OrderCancelled):
            assert_cancelled_and_balanced(settings, watcher, order_id)
        else:  # past shipping (the slip may get there before the stop): the order is delivered and stays paid
            assert isinstance(decided, OrderCancellationRejected) and decided.code in ("shipped", "delivered")
            assert_refused_and_delivered(settings, watcher, order_id)
            kept += 1
    assert read_stock(settings)[SKU] == 20 - kept, "every cancelled order's stock is back"
    shipped_then_cancelled = late[list(DURING_FULFILLMENT).index("shipped")]
    assert not isinstance(outcome(watcher.seen, shipped_then_cancelled), OrderCancelled), "cancelled after shipping"


def assert_refused_and_delivered(settings: Settings, watcher: Watcher, order_id: str) -> None:
    """A refused cancellation changed nothing: the order is delivered, paid, and the customer told so."""
    watcher.wait_until(lambda _: bool(of_type(watcher, order_id, OrderDelivered)), what=f"{order_id} delivered")
    assert of_type(watcher, order_id, PaymentRefunded) == []
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    assert gateway.out_of_pocket(order_id) == gateway.approved_total(order_id) > 0
    told = {notice.kind for notice in of_type(watcher, order_id, NotificationSent)}
    assert NotificationKind.ORDER_SHIPPED in told and NotificationKind.ORDER_CANCELLED not in told


def test_a_cancellation_while_the_slip_runs_stops_it_and_compensates_what_it_did(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    placed = tee_order("cancel-mid-slip")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    with activities_held_back(pipeline, admin):
        produce_orders(settings, [placed], progress=False)
        watcher.wait_until(
            lambda seen: any(s.key == placed.order_id and s.record_type == "RoutingSlipCreated" for s in seen),
            what="the slip created",
        )
        cancel(settings, placed.order_id)
        stopping(watcher, [placed.order_id])
    wait_for_outcomes(watcher, [placed.order_id])

    assert path(watcher, placed.order_id) == [
        "Idle",
        "StoppingFulfillment",
        "Refunding",
        "ReleasingInventory",
        "Cancelled",
    ]
    slip = [
        (s.record_type, s.record.model_dump().get("activity"))
        for s in watcher.for_order(placed.order_id)
        if s.topic == ROUTING_SLIPS_EVENTS.name and s.record is not None
    ]
    # The warehouse picked and packed in one record; ship, reached through its topic, heard the stop first.
    assert slip[-5:] == [
        ("RoutingSlipActivityCompleted", "pick"),
        ("RoutingSlipActivityCompleted", "pack"),
        ("RoutingSlipActivityCompensated", "pack"),
        ("RoutingSlipActivityCompensated", "pick"),
        ("RoutingSlipFaulted", None),
    ]
    assert_cancelled_and_balanced(settings, watcher, placed.order_id)
    assert read_stock(settings)[SKU] == 5


def test_a_cancellation_that_overtakes_its_order_waits_for_it_and_cancels_it_with_nothing_kept(
    settings: Settings, watcher: Watcher
) -> None:
    placed = tee_order("cancel-first")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    cancel(settings, placed.order_id)
    watcher.wait_until(lambda _: path(watcher, placed.order_id) == ["Idle", "AwaitingOrder"], what="the saga waiting")

    produce_orders(settings, [placed], progress=False)
    wait_for_outcomes(watcher, [placed.order_id])

    assert isinstance(outcome(watcher.seen, placed.order_id), OrderCancelled)
    assert_cancelled_and_balanced(settings, watcher, placed.order_id)
    assert read_stock(settings)[SKU] == 5


def test_a_second_cancellation_is_answered_with_the_first_s_outcome_once_it_is_known(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    placed = tee_order("cancel-two-requests")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    first, second = cancel_order(placed.order_id, "changed my mind"), cancel_order(placed.order_id, "really")
    with activities_held_back(pipeline, admin):
        produce_orders(settings, [placed], progress=False)
        produce_records(settings, ORDERS_COMMANDS, [(placed.order_id, first), (placed.order_id, second)])
        stopping(watcher, [placed.order_id])
    watcher.wait_until(
        lambda _: len(of_type(watcher, placed.order_id, OrderCancellationRejected)) == 1, what="the second answered"
    )

    answers = [s.record for s in watcher.for_order(placed.order_id) if isinstance(s.record, OUTCOMES)]
    assert [type(answer) for answer in answers] == [OrderCancelled, OrderCancellationRejected], "cancelled, then told"
    [refused] = of_type(watcher, placed.order_id, OrderCancellationRejected)
    assert (refused.cancel_event_id, refused.code) == (second.event_id, "already-cancelled")
    assert_cancelled_and_balanced(settings, watcher, placed.order_id)


def test_unknown_and_twice_cancelled_orders_are_rejected_and_duplicates_refund_once(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    unknown = f"never-placed-{uuid.uuid4().hex[:8]}"
    placed = tee_order("cancel-twice")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    # Held back, so that the cancellation surely comes before the slip ends (a fast pipeline delivers first).
    with activities_held_back(pipeline, admin):
        produce_orders(settings, [placed], progress=False)
        first = cancel_order(placed.order_id, "changed my mind")
        nobody_s = cancel_order(unknown, "changed my mind")
        produce_records(
            settings, ORDERS_COMMANDS, [(placed.order_id, first), (placed.order_id, first), (unknown, nobody_s)]
        )
        stopping(watcher, [placed.order_id])
    wait_for_outcomes(watcher, [placed.order_id, unknown])
    refunds = watcher.wait_until(lambda seen: bool(of_type(watcher, placed.order_id, PaymentRefunded)))

    # The replies come again, as after a replay: nothing is refunded twice.
    replies = [s for s in refunds if s.key == placed.order_id and s.topic == PAYMENTS_EVENTS.name]
    produce_records(settings, PAYMENTS_EVENTS, [(placed.order_id, s.record) for s in replies if s.record])
    produce_records(settings, ORDERS_COMMANDS, [(placed.order_id, cancel_order(placed.order_id, "again"))])
    watcher.wait_until(
        lambda seen: len(of_type(watcher, placed.order_id, OrderCancellationRejected)) == 1, what="second rejected"
    )

    [rejected_unknown] = of_type(watcher, unknown, OrderCancellationRejected)
    assert rejected_unknown.reason == "no such order"
    [again] = of_type(watcher, placed.order_id, OrderCancellationRejected)
    assert again.reason == "the order is already cancelled"
    assert len(of_type(watcher, placed.order_id, OrderCancelled)) == 1
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    assert gateway.refunded_total(placed.order_id) == gateway.approved_total(placed.order_id)
    assert gateway.out_of_pocket(placed.order_id) == 0


def test_a_refund_the_gateway_fails_a_few_times_is_retried_and_one_it_never_makes_becomes_store_credit(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    slow, down = tee_order("refund-slow", "tok_refundslow_1"), tee_order("refund-down", "tok_refunddown_1")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    # Fulfillment held back, as in the tests above: an order can be delivered within a second, before the
    # cancellation reaches the saga, and this test is about refunds, not about that race.
    with activities_held_back(pipeline, admin):
        produce_orders(settings, [slow, down], progress=False)
        cancel(settings, slow.order_id, down.order_id)
        stopping(watcher, [slow.order_id, down.order_id])
    wait_for_outcomes(watcher, [slow.order_id, down.order_id])

    assert path(watcher, slow.order_id)[-4:] == ["Refunding", "Refunding", "ReleasingInventory", "Cancelled"]
    [refund] = of_type(watcher, slow.order_id, PaymentRefunded)
    assert refund.method.value == "CARD"
    assert path(watcher, down.order_id)[-6:] == [
        "Refunding",
        "Refunding",
        "Refunding",
        "RefundingToStoreCredit",
        "ReleasingInventory",
        "Cancelled",
    ]
    [credit] = of_type(watcher, down.order_id, PaymentRefunded)
    assert credit.method.value == "STORE_CREDIT"
    for placed in (slow, down):
        assert_cancelled_and_balanced(settings, watcher, placed.order_id)


def test_kill_9_of_the_saga_and_timer_processors_with_timers_pending_loses_and_repeats_nothing(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    orders = [tee_order(f"kill-saga-{index}", "tok_refundslow_1") for index in range(6)]
    set_stock_and_wait(settings, watcher, {SKU: 10})
    with activities_held_back(pipeline, admin):
        produce_orders(settings, orders, progress=False)
        cancel(settings, *(placed.order_id for placed in orders))
        stopping(watcher, [placed.order_id for placed in orders])
    watcher.wait_until(
        lambda _: any(path(watcher, placed.order_id)[-2:] == ["Refunding", "Refunding"] for placed in orders),
        what="a refund retry pending on its timer",
    )
    pipeline.kill("sagas")
    pipeline.kill("timers")
    pipeline.start("timers")
    pipeline.start("sagas")
    wait_for_group(admin, SAGAS, members=1)
    wait_for_group(admin, TIMERS, members=1)
    wait_for_outcomes(watcher, [placed.order_id for placed in orders], timeout_s=180)

    for placed in orders:
        assert isinstance(outcome(watcher.seen, placed.order_id), OrderCancelled)
        assert_cancelled_and_balanced(settings, watcher, placed.order_id)
    assert read_stock(settings)[SKU] == 10


def test_a_slip_that_cannot_be_undone_fails_the_saga_until_an_operator_resumes_both(
    settings: Settings, watcher: Watcher
) -> None:
    crate = order("cancel-crate", {"SKU-CRATE-01": 1, "SKU-ANVIL-01": 1})
    set_stock_and_wait(settings, watcher, {"SKU-CRATE-01": 2, "SKU-ANVIL-01": 2})
    produce_orders(settings, [crate], progress=False)
    watcher.wait_until(
        lambda seen: any(s.key == crate.order_id and s.record_type == "RoutingSlipCompensationFailed" for s in seen),
        what="the slip parked",
    )
    cancel(settings, crate.order_id)
    watcher.wait_until(lambda _: path(watcher, crate.order_id)[-1:] == ["Failed"], what="the saga failed")
    [failed] = of_type(watcher, crate.order_id, SagaTransitioned)
    assert failed.reason is not None and "compensating pack failed" in failed.reason

    resume(settings, crate.order_id, skip_failed_step=True)  # the crate opened by hand
    watcher.wait_until(
        lambda seen: any(s.key == crate.order_id and s.record_type == "RoutingSlipFaulted" for s in seen),
        what="the resumed slip faulted",
    )
    produce_retry(settings, crate.order_id)
    wait_for_outcomes(watcher, [crate.order_id])

    assert path(watcher, crate.order_id)[-4:] == ["Failed", "Refunding", "ReleasingInventory", "Cancelled"]
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    assert gateway.out_of_pocket(crate.order_id) == 0
    assert read_stock(settings)["SKU-CRATE-01"] == 2


def test_a_second_saga_instance_takes_over_the_partitions_and_saga_state_of_a_stopped_one(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    orders = [tee_order(f"scale-saga-{index}", "tok_refundslow_1") for index in range(12)]
    set_stock_and_wait(settings, watcher, {SKU: 20})
    pipeline.start("sagas", instance="1")
    try:
        wait_for_group(admin, SAGAS, members=2)
        members = admin.describe_consumer_groups([SAGAS])[SAGAS].result(10).members
        assert all(member.assignment.topic_partitions for member in members), "both instances own partitions"
        with activities_held_back(pipeline, admin):
            produce_orders(settings, orders, progress=False)
            cancel(settings, *(placed.order_id for placed in orders))
            stopping(watcher, [placed.order_id for placed in orders])
        watcher.wait_until(
            lambda _: sum("Refunding" in path(watcher, placed.order_id) for placed in orders) >= 4,
            what="refunds under way on both instances",
        )
        assert pipeline.stop("sagas", instance="0") == 0
        wait_for_group(admin, SAGAS, members=1)
        wait_for_outcomes(watcher, [placed.order_id for placed in orders], timeout_s=180)
    finally:
        if ("sagas", "0") not in pipeline.running:
            pipeline.start("sagas", instance="0")
        pipeline.stop("sagas", instance="1")
        wait_for_group(admin, SAGAS, members=1)

    for placed in orders:
        assert isinstance(outcome(watcher.seen, placed.order_id), OrderCancelled)
        assert_cancelled_and_balanced(settings, watcher, placed.order_id)
    assert read_stock(settings)[SKU] == 20
