"""What customers are told, and what `oms cancel --wait` prints, end to end on the real broker and registry."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.produce import produce_orders, produce_records
from processors.adapters.notification_channel import FileNotificationChannel, SentNotification, notifications_file
from processors.intake import PROCESSOR as INTAKE
from processors.runtime.records import utc_now
from schemas.models import (
    NotificationKind,
    NotificationSent,
    OrderCancellationRejected,
    OrderDelivered,
    OrderRejected,
    PaymentFailed,
    PaymentMethod,
    PlaceOrder,
    Tender,
)
from tests.integration.harness import Processes, Watcher
from tests.integration.test_cancellation import SKU, activities_held_back, of_type, stopping, tee_order
from tests.integration.test_choreography import set_stock_and_wait
from topology.settings import Settings
from topology.topics import (
    INVENTORY_EVENTS,
    INVENTORY_STOCK,
    NOTIFICATIONS_EVENTS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    SAGAS_EVENTS,
)

Kind = NotificationKind


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    topics = [ORDERS_EVENTS, PAYMENTS_EVENTS, INVENTORY_EVENTS, SAGAS_EVENTS, NOTIFICATIONS_EVENTS, INVENTORY_STOCK]
    watching = Watcher(settings, registry, [topic.name for topic in topics])
    yield watching
    watching.close()


def paid_by(placed: PlaceOrder, *tokens: tuple[PaymentMethod, str]) -> PlaceOrder:
    """`placed`, its total split over tenders of these methods and tokens (the last takes the remainder)."""
    total = placed.tenders[0].amount
    share = total.amount_minor // len(tokens)
    amounts = [share] * (len(tokens) - 1) + [total.amount_minor - share * (len(tokens) - 1)]
    tenders = [
        Tender(method=method, token=token, amount=total.model_copy(update={"amount_minor": amount}))
        for (method, token), amount in zip(tokens, amounts, strict=True)
    ]
    return placed.model_copy(update={"tenders": tenders})


def notices(watcher: Watcher, order_id: str, kind: NotificationKind) -> list[NotificationSent]:
    return [record for record in of_type(watcher, order_id, NotificationSent) if record.kind == kind]


def wait_for_notices(watcher: Watcher, order_id: str, kind: NotificationKind, count: int = 1) -> None:
    watcher.wait_until(lambda _: len(notices(watcher, order_id, kind)) >= count, what=f"{count} {kind} of {order_id}")


def messages(settings: Settings, order_id: str) -> list[SentNotification]:
    """What the simulated channel sent about the order, oldest first."""
    return [sent for sent in FileNotificationChannel(notifications_file(settings)).sent() if sent.order_id == order_id]


def oms(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )


def test_a_payment_failure_is_told_in_plain_words_and_nothing_says_confirmed_before_the_payment(
    settings: Settings, watcher: Watcher
) -> None:
    declined = paid_by(
        tee_order("msg-declined"), (PaymentMethod.GIFT_CARD, "gc_ok_msg"), (PaymentMethod.CARD, "tok_declined_msg")
    )
    split = paid_by(tee_order("msg-split"), (PaymentMethod.GIFT_CARD, "gc_ok_msg"), (PaymentMethod.CARD, "tok_ok_msg"))
    set_stock_and_wait(settings, watcher, {SKU: 5})

    produce_orders(settings, [declined, split], progress=False)
    wait_for_notices(watcher, declined.order_id, Kind.PAYMENT_FAILED)
    wait_for_notices(watcher, split.order_id, Kind.ORDER_CONFIRMED)

    [failed] = of_type(watcher, declined.order_id, PaymentFailed)
    assert (failed.code, failed.reason) == ("card-declined", "tender 2 of 2 (CARD) declined: card declined")
    told = messages(settings, declined.order_id)
    assert [sent.kind for sent in told] == [Kind.ORDER_RECEIVED, Kind.PAYMENT_FAILED]
    assert "We will confirm it once the payment has gone through" in told[0].text
    assert "your card was declined. Nothing has been charged" in told[1].text
    for sent in told:
        assert "confirmed" not in sent.text
        assert "tender" not in sent.text and "(CARD)" not in sent.text, "no internal wording"

    confirmed = [sent for sent in messages(settings, split.order_id) if sent.kind == Kind.ORDER_CONFIRMED]
    assert len(confirmed) == 1, "one confirmation for a payment of two tenders"
    assert "by gift card" in confirmed[0].text and "by card" in confirmed[0].text


def rejection(order_id: str, codes: list[str], reasons: list[str], email: str | None) -> OrderRejected:
    return OrderRejected(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=utc_now(),
        customer_id="c-msg",
        reasons=reasons,
        codes=codes,
        customer_email=email,
        command_event_id=uuid.uuid4(),
    )


def test_a_rejected_order_is_told_once_at_its_address_and_a_duplicate_id_only_to_its_sender(
    settings: Settings, watcher: Watcher
) -> None:
    """The rejections are published as intake publishes them, with their codes and the command's address."""
    existing = tee_order("msg-existing")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    produce_orders(settings, [existing], progress=False)
    wait_for_notices(watcher, existing.order_id, Kind.ORDER_CONFIRMED)
    never_created = f"msg-rejected-{uuid.uuid4().hex[:8]}"
    rejected = rejection(never_created, ["unknown-sku"], ["SKU-NOPE-01 is not in the catalog"], "ada@example.com")
    duplicate = rejection(existing.order_id, ["duplicate-order-id"], ["order id in use"], "mallory@example.com")

    # Each twice, as after a replay, then one more command each: once told, the replays were read.
    again = rejection(never_created, ["total-over-limit"], ["the total is above 100000.00 EUR"], "ada@example.com")
    other = rejection(existing.order_id, ["duplicate-order-id"], ["order id in use"], "eve@example.com")
    keyed = [(never_created, rejected), (existing.order_id, duplicate)] * 2
    produce_records(
        settings, ORDERS_EVENTS, [*keyed, (never_created, again), (existing.order_id, other)], source=INTAKE
    )
    wait_for_notices(watcher, never_created, Kind.ORDER_REJECTED, count=2)
    wait_for_notices(watcher, existing.order_id, Kind.ORDER_REJECTED, count=2)

    told = messages(settings, never_created)
    assert [(sent.kind, sent.recipient) for sent in told] == [(Kind.ORDER_REJECTED, "ada@example.com")] * 2
    assert "it includes a product we do not sell" in told[0].text
    assert "its total is above the limit for a single order" in told[1].text
    duplicates = [sent for sent in messages(settings, existing.order_id) if sent.kind == Kind.ORDER_REJECTED]
    assert [sent.recipient for sent in duplicates] == ["mallory@example.com", "eve@example.com"]
    assert all("already in use" in sent.text for sent in duplicates)
    others = {sent.recipient for sent in messages(settings, existing.order_id) if sent.kind != Kind.ORDER_REJECTED}
    assert others == {existing.customer_email}, "the existing order's owner hears of nothing rejected"
    caused = [n.caused_by for n in notices(watcher, existing.order_id, Kind.ORDER_REJECTED)]
    assert caused == [duplicate.event_id, other.event_id]


def deliver(settings: Settings, watcher: Watcher, name: str) -> PlaceOrder:
    placed = tee_order(name)
    produce_orders(settings, [placed], progress=False)
    watcher.wait_until(lambda _: bool(of_type(watcher, placed.order_id, OrderDelivered)), what="delivered")
    return placed


def refusals_told(settings: Settings, order_id: str) -> list[SentNotification]:
    return [sent for sent in messages(settings, order_id) if sent.kind == Kind.CANCELLATION_REFUSED]


def refusals(watcher: Watcher, order_id: str, count: int) -> list[OrderCancellationRejected]:
    watcher.wait_until(
        lambda _: len(of_type(watcher, order_id, OrderCancellationRejected)) >= count, what=f"{count} refusals"
    )
    return of_type(watcher, order_id, OrderCancellationRejected)


def test_a_refused_cancellation_is_told_once_and_oms_cancel_wait_prints_it_and_fails(
    settings: Settings, watcher: Watcher
) -> None:
    set_stock_and_wait(settings, watcher, {SKU: 5})
    placed = deliver(settings, watcher, "msg-refused")

    run = oms("cancel", placed.order_id, "--wait", "--reason", "too late?", "--timeout", "60")

    assert run.returncode == 1, run.stderr
    [refusal] = refusals(watcher, placed.order_id, 1)
    assert f"(event id {refusal.cancel_event_id})" in run.stdout, "the answer to this very request"
    assert f"cancellation of {placed.order_id} rejected: {refusal.reason}" in run.stdout
    wait_for_notices(watcher, placed.order_id, Kind.CANCELLATION_REFUSED)
    [told] = refusals_told(settings, placed.order_id)
    assert told.text.startswith(f"We could not cancel your order {placed.order_id}: ")
    assert "delivered" in told.text
    assert [n.caused_by for n in notices(watcher, placed.order_id, Kind.CANCELLATION_REFUSED)] == [refusal.event_id]


def test_oms_cancel_wait_prints_the_refund_per_tender_and_each_later_request_is_refused_and_told_once(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    placed = paid_by(
        tee_order("msg-cancel"), (PaymentMethod.GIFT_CARD, "gc_ok_msg"), (PaymentMethod.CARD, "tok_ok_msg")
    )
    set_stock_and_wait(settings, watcher, {SKU: 5})
    # Held back, so that the cancellation surely comes before the slip ends.
    with activities_held_back(pipeline, admin):
        produce_orders(settings, [placed], progress=False)
        waiting = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "cancel", placed.order_id, "--wait", "--reason", "changed my mind"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stopping(watcher, [placed.order_id])
    out, err = waiting.communicate(timeout=120)

    assert waiting.returncode == 0, err
    gift, card = (tender.amount.amount_minor / 100 for tender in placed.tenders)
    assert f"{placed.order_id} cancelled; refunded {gift + card:.2f} EUR" in out
    assert f"  {gift:.2f} EUR to GIFT_CARD" in out and f"  {card:.2f} EUR to CARD" in out
    wait_for_notices(watcher, placed.order_id, Kind.ORDER_CANCELLED)
    [told] = [sent for sent in messages(settings, placed.order_id) if sent.kind == Kind.ORDER_CANCELLED]
    assert told.text.endswith(f"We have refunded {gift + card:.2f} EUR.")

    # Two more requests: each is answered, and each answer told once.
    again = [oms("cancel", placed.order_id, "--wait", "--reason", f"again {n}", "--timeout", "60") for n in (1, 2)]
    for run in again:
        assert run.returncode == 1, run.stderr
        assert f"cancellation of {placed.order_id} rejected: " in run.stdout
    answers = refusals(watcher, placed.order_id, 2)
    for run, refusal in zip(again, answers, strict=True):
        assert f"(event id {refusal.cancel_event_id})" in run.stdout, "each run prints the answer to its own request"
    wait_for_notices(watcher, placed.order_id, Kind.CANCELLATION_REFUSED, count=2)
    for sent in refusals_told(settings, placed.order_id):
        assert sent.text.startswith(f"Your order {placed.order_id} was already cancelled"), "no failure is told"
    caused = Counter(n.caused_by for n in notices(watcher, placed.order_id, Kind.CANCELLATION_REFUSED))
    assert caused == Counter({refusal.event_id: 1 for refusal in answers}), "one per request"
    assert len(refusals_told(settings, placed.order_id)) == 2
    assert len(notices(watcher, placed.order_id, Kind.ORDER_CANCELLED)) == 1


def test_oms_cancel_wait_says_so_when_no_answer_comes_in_time(pipeline: Processes) -> None:
    run = oms("cancel", f"never-placed-{uuid.uuid4().hex[:8]}", "--wait", "--timeout", "0")

    assert run.returncode == 3
    assert "no answer to the cancellation within 0s" in run.stderr
