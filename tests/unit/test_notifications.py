from __future__ import annotations

import datetime
import json
import multiprocessing
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from quixstreams import State

from processors.adapters.notification_channel import FileNotificationChannel, SentNotification
from processors.customer_messages import REJECTION_REASONS, TEMPLATES, format_money, message_for
from processors.notifications import (
    INPUTS,
    NOTIFICATIONS,
    NOTIFIED_RECORDS,
    Notification,
    NotificationsState,
    decide,
    handle,
)
from processors.runtime.records import derive_event_id
from processors.sagas.cancellation import Refusal
from schemas.models import (
    Address,
    AvroRecord,
    InventoryReserved,
    InventoryShortage,
    Money,
    NotificationKind,
    OrderCancellationRejected,
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderLine,
    OrderRejected,
    OrderShipped,
    PaymentFailed,
    PaymentMethod,
    PaymentProcessed,
    ShortLine,
    StockLine,
    Tender,
    TenderCharge,
)
from tests.factories import record_of

NOW = datetime.datetime(2025, 11, 25, 12, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(minutes=5)
EMAIL = "ada@example.com"
Kind = NotificationKind


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


def order_created(order_id: str = "o-123", **overrides: Any) -> OrderCreated:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "order_id": order_id,
        "occurred_at": NOW,
        "customer_id": "c-1",
        "customer_email": EMAIL,
        "lines": [
            OrderLine(sku="SKU-MUG-01", quantity=2, unit_price=eur(1000)),
            OrderLine(sku="tea", quantity=1, unit_price=eur(500)),
        ],
        "shipping_address": Address(
            recipient="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
        ),
        "tenders": [Tender(method=PaymentMethod.CARD, token="tok-ok", amount=eur(2500))],
        "total": eur(2500),
    }
    return OrderCreated(**{**fields, **overrides})


def payment_processed(order_id: str = "o-123", *charges: TenderCharge) -> PaymentProcessed:
    paid = charges or (TenderCharge(method=PaymentMethod.CARD, amount=eur(2500), transaction_id="t-1"),)
    return PaymentProcessed(
        event_id=uuid.uuid4(), order_id=order_id, occurred_at=NOW, amount=eur(2500), charges=list(paid)
    )


def payment_failed(order_id: str = "o-123", code: str = "card-declined") -> PaymentFailed:
    return PaymentFailed(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        amount=eur(2500),
        reason="tender 2 of 2 (CARD) declined: card declined",
        code=code,
    )


def inventory_shortage(order_id: str = "o-123") -> InventoryShortage:
    return InventoryShortage(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        short_lines=[ShortLine(sku="SKU-MUG-01", requested=2, available=1)],
    )


def shipped(order_id: str = "o-123") -> OrderShipped:
    return OrderShipped(event_id=uuid.uuid4(), order_id=order_id, occurred_at=NOW, carrier="dhl", label_id="l-1")


def delivered(order_id: str = "o-123") -> OrderDelivered:
    return OrderDelivered(event_id=uuid.uuid4(), order_id=order_id, occurred_at=NOW, carrier="dhl")


def cancelled(order_id: str = "o-123", refunded: Money | None = None) -> OrderCancelled:
    return OrderCancelled(
        event_id=uuid.uuid4(), order_id=order_id, occurred_at=NOW, reason="changed my mind", refunded=refunded
    )


def rejected(
    order_id: str = "o-123",
    reasons: tuple[str, ...] = ("lines[0].sku: unknown SKU 'SKU-NOPE'",),
    codes: tuple[str, ...] = ("unknown-sku",),
    customer_email: str | None = EMAIL,
    command_event_id: uuid.UUID | None = None,
) -> OrderRejected:
    return OrderRejected(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        reasons=list(reasons),
        codes=list(codes),
        customer_email=customer_email,
        command_event_id=command_event_id or uuid.uuid4(),
    )


def duplicate(order_id: str = "o-123", customer_email: str | None = "mallory@example.com") -> OrderRejected:
    return rejected(
        order_id,
        reasons=("order id o-123 is already in use",),
        codes=("duplicate-order-id",),
        customer_email=customer_email,
    )


def refused(
    order_id: str = "o-123", code: str = "delivered", cancel_event_id: uuid.UUID | None = None
) -> OrderCancellationRejected:
    return OrderCancellationRejected(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        cancel_event_id=cancel_event_id or uuid.uuid4(),
        reason="the order was delivered",
        code=code,
    )


class SomethingElse(AvroRecord):
    AVRO_NAME = "oms.orders.SomethingElse"
    event_id: uuid.UUID
    order_id: str
    occurred_at: datetime.datetime


def told(
    records: list[AvroRecord], state: NotificationsState | None = None
) -> tuple[NotificationsState | None, list[Notification]]:
    """Decide over `records` in order; the final state and every notification sent on the way."""
    sent: list[Notification] = []
    for record in records:
        state, notifications = decide(state, record, NOW)
        sent += notifications
    return state, sent


def texts(notifications: list[Notification]) -> list[tuple[NotificationKind, str]]:
    return [(n.kind, n.text) for n in notifications]


# What the customer reads.


@pytest.mark.parametrize(
    ("record", "kind", "text"),
    [
        (
            order_created(),
            Kind.ORDER_RECEIVED,
            "We have received your order o-123: 3 items (2 x Stoneware mug, 1 x tea), 25.00 EUR. "
            "We will confirm it once the payment has gone through.",
        ),
        (
            payment_processed(),
            Kind.ORDER_CONFIRMED,
            "Your order o-123 is confirmed: we have taken the payment of 25.00 EUR. "
            "We will let you know when it ships.",
        ),
        (
            payment_processed(
                "o-123",
                TenderCharge(method=PaymentMethod.CARD, amount=eur(2000), transaction_id="t-1"),
                TenderCharge(method=PaymentMethod.GIFT_CARD, amount=eur(500), transaction_id="t-2"),
            ),
            Kind.ORDER_CONFIRMED,
            "Your order o-123 is confirmed: we have taken the payment of 25.00 EUR (20.00 EUR by card, "
            "5.00 EUR by gift card). We will let you know when it ships.",
        ),
        (
            payment_failed(),
            Kind.PAYMENT_FAILED,
            "We could not take the payment of 25.00 EUR for your order o-123: your card was declined. "
            "Nothing has been charged and the order will not be sent.",
        ),
        (
            payment_failed(code="gift-card-empty"),
            Kind.PAYMENT_FAILED,
            "We could not take the payment of 25.00 EUR for your order o-123: your gift card's balance is too low. "
            "Nothing has been charged and the order will not be sent.",
        ),
        (
            payment_failed(code="gateway-unavailable"),
            Kind.PAYMENT_FAILED,
            "We could not take the payment of 25.00 EUR for your order o-123: our payment provider could not be "
            "reached. Nothing has been charged and the order will not be sent. Please try again in a little while.",
        ),
        (
            payment_failed(code="a-code-from-a-new-gateway"),
            Kind.PAYMENT_FAILED,
            "We could not take the payment of 25.00 EUR for your order o-123: the payment was not accepted. "
            "Nothing has been charged and the order will not be sent.",
        ),
        (
            inventory_shortage(),
            Kind.OUT_OF_STOCK,
            "Sorry, we cannot fulfil your order o-123, not enough stock of Stoneware mug (2 ordered, 1 available). "
            "Any payment taken will be refunded.",
        ),
        (shipped(), Kind.ORDER_SHIPPED, "Your order o-123 is on its way."),
        (delivered(), Kind.ORDER_DELIVERED, "Your order o-123 has been delivered."),
        (
            cancelled(refunded=eur(2500)),
            Kind.ORDER_CANCELLED,
            "Your order o-123 has been cancelled. We have refunded 25.00 EUR.",
        ),
        (
            cancelled(refunded=None),
            Kind.ORDER_CANCELLED,
            "Your order o-123 has been cancelled. Nothing had been charged, so there is nothing to refund.",
        ),
        (
            rejected(
                reasons=("lines[0].sku: unknown SKU", "lines[1].quantity: 0", "lines[2].quantity: -1"),
                codes=("unknown-sku", "invalid-field", "invalid-field"),
            ),
            Kind.ORDER_REJECTED,
            "We could not accept your order o-123: it includes a product we do not sell; some of its details are "
            "missing or not valid. Nothing has been charged. You are welcome to place it again once this is put "
            "right.",
        ),
        (
            rejected(reasons=("Gift messages are limited to 200 characters.",), codes=("gift-message-too-long",)),
            Kind.ORDER_REJECTED,
            "We could not accept your order o-123: Gift messages are limited to 200 characters. Nothing has been "
            "charged. You are welcome to place it again once this is put right.",
        ),
        (
            rejected(reasons=("lines[0].quantity: Input should be greater than 0",), codes=()),
            Kind.ORDER_REJECTED,
            "We could not accept your order o-123: some of its details could not be accepted. Nothing has been "
            "charged. You are welcome to place it again once this is put right.",
        ),
        (
            duplicate(),
            Kind.ORDER_REJECTED,
            "We could not accept your order o-123: that order number is already in use. Nothing has been charged. "
            "Please place your order again with a new order number.",
        ),
        (
            refused(code="delivered"),
            Kind.CANCELLATION_REFUSED,
            "We could not cancel your order o-123: it has already been delivered. You can still return it.",
        ),
        (
            refused(code="shipped"),
            Kind.CANCELLATION_REFUSED,
            "We could not cancel your order o-123: it has already shipped, so it is too late to cancel. "
            "You can return it once it has been delivered.",
        ),
        (
            refused(code="some-new-code"),
            Kind.CANCELLATION_REFUSED,
            "We could not cancel your order o-123: the order was delivered.",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else "",
)
def test_each_kind_of_news_reads_as_its_template_filled_with_the_orders_facts(
    record: Any, kind: NotificationKind, text: str
) -> None:
    message = message_for(record)

    assert (message.kind, message.text) == (kind, text)


CANCELLATION_CODES = [str(code) for code in Refusal]  # every code the saga refuses with
PAYMENT_CODES = [
    "card-declined",
    "insufficient-funds",
    "over-card-limit",
    "gift-card-empty",
    "unknown-token",
    "gateway-unavailable",
    "tenders-mismatch",
]


@pytest.mark.parametrize("code", CANCELLATION_CODES)
def test_every_code_of_the_saga_has_its_own_words(code: str) -> None:
    message = message_for(refused(code=code))

    assert (Kind.CANCELLATION_REFUSED, code) in TEMPLATES
    if code != Refusal.ALREADY_CANCELLED:
        assert message.text.startswith("We could not cancel your order o-123: ")
    assert "the order was delivered" not in message.text or code == "delivered", "not the event's wording"


def test_a_second_cancel_is_told_the_order_was_already_cancelled_not_that_cancelling_failed() -> None:
    text = message_for(refused(code=Refusal.ALREADY_CANCELLED)).text

    assert text.startswith("Your order o-123 was already cancelled")
    assert "could not" not in text


@pytest.mark.parametrize("code", PAYMENT_CODES)
def test_a_payment_failure_never_says_confirmed_nor_quotes_the_gateway(code: str) -> None:
    text = message_for(payment_failed(code=code)).text

    assert (Kind.PAYMENT_FAILED, code) in TEMPLATES
    assert "confirm" not in text.lower()
    assert "tender" not in text and "CARD" not in text and "declined:" not in text


def test_nothing_before_the_payment_says_the_order_is_confirmed() -> None:
    _, notifications = told([order_created(), payment_failed()])

    assert [n.kind for n in notifications] == [Kind.ORDER_RECEIVED, Kind.PAYMENT_FAILED]
    assert all("confirmed" not in n.text for n in notifications)


@pytest.mark.parametrize(
    ("money", "text"),
    [(eur(2500), "25.00 EUR"), (eur(5), "0.05 EUR"), (Money(amount_minor=1200, currency="JPY"), "1200 JPY")],
)
def test_money_is_written_in_its_currencys_major_unit(money: Money, text: str) -> None:
    assert format_money(money) == text


def test_the_docs_show_every_template_and_phrase_as_it_is() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "choreography.md").read_text()

    for (kind, _), template in TEMPLATES.items():
        assert f"`{kind}` | {template} |" in docs, template
    for code, phrase in REJECTION_REASONS.items():
        assert f"| `{code}` | {phrase} |" in docs, code


# Who is told what, and when.


def test_order_created_tells_the_customer_the_order_was_received() -> None:
    created = order_created()

    state, notifications = decide(None, created, NOW)

    assert [(n.kind, n.caused_by, n.recipient) for n in notifications] == [
        (Kind.ORDER_RECEIVED, created.event_id, EMAIL)
    ]
    assert state == NotificationsState(recipient=EMAIL, told={Kind.ORDER_RECEIVED: NOW})


def test_the_order_is_confirmed_once_paid() -> None:
    _, notifications = told([order_created(), payment_processed()])

    assert [(n.kind, n.recipient) for n in notifications] == [
        (Kind.ORDER_RECEIVED, EMAIL),
        (Kind.ORDER_CONFIRMED, EMAIL),
    ]


def test_news_before_the_order_waits_for_the_customers_address() -> None:
    state, notifications = told([payment_failed()])

    assert notifications == []
    assert state is not None
    assert state.recipient is None
    assert [notice.kind for notice in state.waiting] == [Kind.PAYMENT_FAILED]


def test_late_order_created_releases_waiting_news_after_its_receipt() -> None:
    failed, shortage = payment_failed(), inventory_shortage()
    waiting, _ = told([failed, shortage])

    state, notifications = decide(waiting, order_created(), LATER)

    assert [(n.kind, n.recipient) for n in notifications] == [
        (Kind.ORDER_RECEIVED, EMAIL),
        (Kind.PAYMENT_FAILED, EMAIL),
        (Kind.OUT_OF_STOCK, EMAIL),
    ]
    assert notifications[1].caused_by == failed.event_id
    assert notifications[2].caused_by == shortage.event_id
    assert state is not None
    assert state.waiting == []
    assert set(state.told) == {n.kind for n in notifications}
    assert set(state.told.values()) == {LATER}


NEWS = [order_created, payment_processed, payment_failed, inventory_shortage, shipped, delivered, cancelled]


@pytest.mark.parametrize("make", NEWS, ids=lambda make: make.__name__)
def test_each_kind_is_told_once_per_order(make: Callable[[], AvroRecord]) -> None:
    first = make()
    state, sent = told([first] if isinstance(first, OrderCreated) else [order_created(), first])

    assert len(sent) == (1 if isinstance(first, OrderCreated) else 2)
    assert decide(state, first, LATER) == (state, []), "redelivered or replayed"
    assert decide(state, make(), LATER) == (state, []), "another event of a kind already told"


def test_news_already_waiting_waits_once() -> None:
    state, _ = told([payment_failed(), payment_failed()])

    assert state is not None
    assert len(state.waiting) == 1


def test_a_second_order_created_does_not_change_the_recipient() -> None:
    state, _ = told([order_created(), order_created(customer_email="mallory@example.com")])

    assert state is not None
    assert state.recipient == EMAIL


def test_a_rejected_order_is_told_at_the_address_on_the_rejection() -> None:
    rejection = rejected()

    state, notifications = decide(None, rejection, NOW)

    assert [(n.kind, n.recipient, n.caused_by) for n in notifications] == [
        (Kind.ORDER_REJECTED, EMAIL, rejection.event_id)
    ]
    assert decide(state, rejection, LATER) == (state, []), "redelivered or replayed"


def test_each_rejected_command_is_told_once() -> None:
    first, second = rejected(), rejected()

    state, notifications = told([first, second, first])

    assert [n.caused_by for n in notifications] == [first.event_id, second.event_id]
    assert state is not None and len(state.answered) == 2


def test_a_duplicate_order_id_is_told_to_its_sender_and_leaves_the_existing_order_alone() -> None:
    owner, _ = told([order_created(), payment_processed()])
    assert owner is not None

    state, notifications = decide(owner, duplicate(customer_email="mallory@example.com"), LATER)

    assert [(n.kind, n.recipient) for n in notifications] == [(Kind.ORDER_REJECTED, "mallory@example.com")]
    assert "already in use" in notifications[0].text
    assert state is not None
    assert (state.recipient, state.told, state.waiting) == (owner.recipient, owner.told, owner.waiting)
    assert Kind.ORDER_REJECTED not in state.told, "the existing order is not marked rejected"
    _, later_news = told([shipped()], state)
    assert [(n.kind, n.recipient) for n in later_news] == [(Kind.ORDER_SHIPPED, EMAIL)]


def test_a_rejection_without_an_address_tells_nobody() -> None:
    owner, _ = told([order_created()])

    assert decide(owner, duplicate(customer_email=None), NOW) == (owner, []), "never the existing order's owner"
    assert decide(None, rejected(customer_email=None), NOW) == (None, [])


def test_each_refused_cancel_request_is_told_once() -> None:
    first, second = refused(code="shipped"), refused(code="delivered")
    again = refused(code="delivered", cancel_event_id=first.cancel_event_id)  # the same request, answered again

    state, notifications = told([order_created(), first, second, again, first])

    assert [(n.kind, n.caused_by) for n in notifications[1:]] == [
        (Kind.CANCELLATION_REFUSED, first.event_id),
        (Kind.CANCELLATION_REFUSED, second.event_id),
    ]
    assert state is not None
    assert set(state.answered) == {
        f"CANCELLATION_REFUSED/{first.cancel_event_id}",
        f"CANCELLATION_REFUSED/{second.cancel_event_id}",
    }


def test_refusals_before_the_order_wait_each_once_for_the_address() -> None:
    first, second = refused(code="never-decided"), refused(code="never-decided")

    waiting, sent_early = told([first, second, first])
    _, notifications = told([order_created()], waiting)

    assert sent_early == []
    assert [n.caused_by for n in notifications[1:]] == [first.event_id, second.event_id]


@pytest.mark.parametrize(
    "record",
    [
        InventoryReserved(
            event_id=uuid.uuid4(), order_id="o-123", occurred_at=NOW, lines=[StockLine(sku="mug", quantity=1)]
        ),
        SomethingElse(event_id=uuid.uuid4(), order_id="o-123", occurred_at=NOW),
    ],
    ids=lambda record: type(record).__name__,
)
def test_records_a_customer_does_not_hear_about_leave_no_state(record: AvroRecord) -> None:
    assert decide(None, record, NOW) == (None, [])


def test_notified_records_come_from_an_input_topic() -> None:
    carried = {name for topic in INPUTS for name in topic.records}
    assert {record.AVRO_NAME for record in NOTIFIED_RECORDS} <= carried


class DictState:
    """The part of a Quix `State` that `StateSlot` uses."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class RecordingChannel:
    name = "email"

    def __init__(self, fail_on: NotificationKind | None = None) -> None:
        self.calls: list[tuple[str, str, NotificationKind, str, str]] = []
        self.fail_on = fail_on

    def send(
        self,
        idempotency_key: str,
        recipient: str,
        kind: NotificationKind,
        order_id: str,
        text: str,
    ) -> str:
        if kind == self.fail_on:
            raise ConnectionError("mail server down")
        self.calls.append((idempotency_key, recipient, kind, order_id, text))
        return f"m-{len(self.calls)}"


def test_handle_sends_with_an_idempotency_key_and_emits_notification_sent() -> None:
    state, channel = DictState(), RecordingChannel()
    failed, created = payment_failed(), order_created()

    assert handle(failed, cast(State, state), channel) == []
    emits = handle(created, cast(State, state), channel)

    assert [call[0] for call in channel.calls] == ["o-123/ORDER_RECEIVED", "o-123/PAYMENT_FAILED"]
    sent = [record_of(emit).model_dump() for emit in emits]
    assert {emit.key for emit in emits} == {"o-123"}
    assert [(s["kind"], s["message_id"], s["recipient"], s["channel"]) for s in sent] == [
        (NotificationKind.ORDER_RECEIVED, "m-1", EMAIL, "email"),
        (NotificationKind.PAYMENT_FAILED, "m-2", EMAIL, "email"),
    ]
    assert sent[1]["caused_by"] == failed.event_id
    assert sent[1]["event_id"] == derive_event_id(failed.event_id, "notified/PAYMENT_FAILED")
    saved = NOTIFICATIONS.load(cast(State, state))
    assert saved is not None
    assert (saved.recipient, set(saved.told), saved.waiting) == (EMAIL, {s["kind"] for s in sent}, [])


def test_handle_keys_an_answer_to_a_command_by_the_command() -> None:
    state, channel = DictState(), RecordingChannel()
    handle(order_created(), cast(State, state), channel)
    refusal = refused()

    [emit] = handle(refusal, cast(State, state), channel)

    assert channel.calls[-1][:3] == (
        f"o-123/CANCELLATION_REFUSED/{refusal.cancel_event_id}",
        EMAIL,
        NotificationKind.CANCELLATION_REFUSED,
    )
    assert record_of(emit).model_dump()["event_id"] == derive_event_id(
        refusal.event_id, "notified/CANCELLATION_REFUSED"
    )


def test_handle_keeps_the_state_when_a_send_fails() -> None:
    state = DictState()
    handle(payment_failed(), cast(State, state), RecordingChannel())
    before = dict(state.values)

    with pytest.raises(ConnectionError):
        handle(order_created(), cast(State, state), RecordingChannel(fail_on=NotificationKind.PAYMENT_FAILED))

    assert state.values == before


def send(channel: FileNotificationChannel, key: str, order_id: str = "o-123") -> str:
    return channel.send(key, EMAIL, NotificationKind.ORDER_CONFIRMED, order_id, "Your order is confirmed.")


def test_simulated_channel_writes_one_json_line_per_message(tmp_path: Path) -> None:
    channel = FileNotificationChannel(tmp_path / "notifications.jsonl")

    message_id = send(channel, "o-123/ORDER_CONFIRMED")

    [line] = (tmp_path / "notifications.jsonl").read_text().splitlines()
    assert json.loads(line) | {"sent_at": None} == {
        "message_id": message_id,
        "idempotency_key": "o-123/ORDER_CONFIRMED",
        "channel": "email",
        "recipient": EMAIL,
        "kind": "ORDER_CONFIRMED",
        "order_id": "o-123",
        "text": "Your order is confirmed.",
        "sent_at": None,
    }


def test_simulated_channel_sends_once_per_key_across_instances_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    first, second = FileNotificationChannel(path), FileNotificationChannel(path)

    sent_by_first = send(first, "o-1/ORDER_CONFIRMED")
    assert send(second, "o-1/ORDER_CONFIRMED") == sent_by_first
    sent_by_second = send(second, "o-2/ORDER_CONFIRMED", order_id="o-2")
    assert send(first, "o-2/ORDER_CONFIRMED", order_id="o-2") == sent_by_second
    assert send(FileNotificationChannel(path), "o-1/ORDER_CONFIRMED") == sent_by_first  # after a restart

    assert first.count_by_key() == {"o-1/ORDER_CONFIRMED": 1, "o-2/ORDER_CONFIRMED": 1}
    assert [sent.message_id for sent in second.sent()] == [sent_by_first, sent_by_second]


def _send_keys(path: Path, keys: list[str]) -> None:
    channel = FileNotificationChannel(path)
    for key in keys:
        send(channel, key)


def test_simulated_channel_sends_once_per_key_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    keys = [f"o-{n}/ORDER_CONFIRMED" for n in range(100)]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_send_keys, args=(path, keys[::step])) for step in (1, -1, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert FileNotificationChannel(path).count_by_key() == dict.fromkeys(keys, 1)


def test_simulated_channel_skips_a_line_torn_by_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    path.write_bytes(b'{"message_id": "email-1", "idempotency_key": "o-1/ORDER_CONF')
    channel = FileNotificationChannel(path)

    send(channel, "o-1/ORDER_CONFIRMED")

    assert channel.count_by_key() == {"o-1/ORDER_CONFIRMED": 1}
    assert len(path.read_text().splitlines()) == 2


def test_simulated_channel_indexes_a_line_whose_index_a_crash_lost(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    channel = FileNotificationChannel(path)
    send(channel, "o-1/ORDER_CONFIRMED")
    appended_then_crashed = SentNotification(
        message_id="email-crashed",
        idempotency_key="o-2/ORDER_CONFIRMED",
        channel="email",
        recipient=EMAIL,
        kind=NotificationKind.ORDER_CONFIRMED,
        order_id="o-2",
        text="Your order is confirmed.",
        sent_at=NOW,
    )
    with path.open("ab") as file:
        file.write(appended_then_crashed.model_dump_json().encode() + b"\n")

    assert send(FileNotificationChannel(path), "o-2/ORDER_CONFIRMED", order_id="o-2") == "email-crashed"
    assert channel.count_by_key() == {"o-1/ORDER_CONFIRMED": 1, "o-2/ORDER_CONFIRMED": 1}


def test_a_deferred_channel_appends_what_it_sent_when_flushed(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    channel = FileNotificationChannel(path, deferred=True)

    message_id = send(channel, "o-1/ORDER_CONFIRMED")
    assert send(channel, "o-1/ORDER_CONFIRMED") == message_id
    send(channel, "o-2/ORDER_CONFIRMED", order_id="o-2")
    assert channel.sent() == []  # nothing has happened outside until the flush

    channel.flush()
    channel.flush()
    assert [sent.idempotency_key for sent in channel.sent()] == ["o-1/ORDER_CONFIRMED", "o-2/ORDER_CONFIRMED"]
    assert channel.sent()[0].message_id == message_id
    assert send(FileNotificationChannel(path), "o-1/ORDER_CONFIRMED") == message_id  # after a restart


def test_a_key_kept_and_sent_by_another_process_before_the_flush_is_sent_once(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    kept, other_process = FileNotificationChannel(path, deferred=True), FileNotificationChannel(path)

    assert send(kept, "o-1/ORDER_CONFIRMED") == send(other_process, "o-1/ORDER_CONFIRMED")
    kept.flush()

    assert FileNotificationChannel(path).count_by_key() == {"o-1/ORDER_CONFIRMED": 1}


def test_a_deferred_channel_answers_a_key_sent_before_with_its_message(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    path.write_bytes(
        SentNotification(
            message_id="email-earlier",
            idempotency_key="o-1/ORDER_CONFIRMED",
            channel="email",
            recipient=EMAIL,
            kind=NotificationKind.ORDER_CONFIRMED,
            order_id="o-1",
            text="Your order is confirmed.",
            sent_at=NOW,
        )
        .model_dump_json()
        .encode()
        + b"\n"
    )
    send(FileNotificationChannel(path), "o-0/ORDER_CONFIRMED", order_id="o-0")  # indexes the line
    channel = FileNotificationChannel(path, deferred=True)

    assert send(channel, "o-1/ORDER_CONFIRMED", order_id="o-1") == "email-earlier"
    channel.flush()
    assert channel.count_by_key() == {"o-1/ORDER_CONFIRMED": 1, "o-0/ORDER_CONFIRMED": 1}


# State kept before the kinds were split: an order told ORDER_CONFIRMED on its OrderCreated.

STATE_BEFORE: dict[str, Any] = {
    "recipient": EMAIL,
    "told": {"ORDER_CONFIRMED": "2025-11-25T12:00:00Z"},
    "waiting": [],
}
WAITING_BEFORE: dict[str, Any] = {
    "recipient": None,
    "told": {},
    "waiting": [
        {
            "order_id": "o-123",
            "kind": "PAYMENT_FAILED",
            "text": "We could not take the payment ...",
            "caused_by": str(uuid.uuid4()),
        }
    ],
}


def test_state_kept_before_loads_and_tells_no_kind_twice() -> None:
    state = DictState()
    state.set(NOTIFICATIONS.name, STATE_BEFORE)
    channel = RecordingChannel()

    replayed = handle(order_created(), cast(State, state), channel)
    paid = handle(payment_processed(), cast(State, state), channel)
    emits = handle(shipped(), cast(State, state), channel)

    assert (replayed, paid) == ([], []), "received and confirmed were told as ORDER_CONFIRMED"
    assert [call[0] for call in channel.calls] == ["o-123/ORDER_SHIPPED"]
    assert [record_of(emit).model_dump()["kind"] for emit in emits] == [Kind.ORDER_SHIPPED]


def test_notices_waiting_from_before_are_sent_once_the_order_comes() -> None:
    state = DictState()
    state.set(NOTIFICATIONS.name, WAITING_BEFORE)
    channel = RecordingChannel()

    handle(order_created(), cast(State, state), channel)
    handle(payment_failed(), cast(State, state), channel)

    assert [call[0] for call in channel.calls] == ["o-123/ORDER_RECEIVED", "o-123/PAYMENT_FAILED"]


def test_a_cancel_refused_as_unknown_is_told_as_too_early_once_the_order_comes() -> None:
    """A cancel that came long before its order was refused as `unknown-order`; the order came after all: its
    customer must not read that there is no such order right after its receipt."""
    early = refused(code="unknown-order")

    waiting, sent_early = told([early])
    _, notifications = told([order_created()], waiting)

    assert sent_early == []
    receipt, refusal = notifications
    assert receipt.kind == "ORDER_RECEIVED"
    assert refusal.caused_by == early.event_id
    assert "no order with that number" not in refusal.text
    assert "reached us before the order itself" in refusal.text
    assert "ask again" in refusal.text


def test_a_cancel_refused_as_unknown_with_no_order_to_come_says_so() -> None:
    """Told straight away, where the customer's address is already known, the refusal keeps its words."""
    waiting, _ = told([order_created(order_id="o-9")])
    _, notifications = told([refused(order_id="o-123", code="unknown-order")], waiting)

    assert len(notifications) <= 1
    assert all("reached us before" not in n.text for n in notifications)
