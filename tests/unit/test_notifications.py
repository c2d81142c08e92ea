from __future__ import annotations

import datetime
import json
import multiprocessing
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
from quixstreams import State

from processors.adapters.notification_channel import FileNotificationChannel
from processors.notifications import (
    INPUTS,
    NOTIFICATIONS,
    NOTIFIED_RECORDS,
    Notification,
    NotificationsState,
    decide,
    format_money,
    handle,
)
from processors.runtime.records import derive_event_id
from schemas.models import (
    RECORD_TYPES,
    Address,
    AvroRecord,
    InventoryReserved,
    InventoryShortage,
    Money,
    NotificationKind,
    OrderCreated,
    OrderLine,
    OrderRejected,
    PaymentFailed,
    PaymentMethod,
    ShortLine,
    StockLine,
    Tender,
)

NOW = datetime.datetime(2025, 11, 25, 12, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(minutes=5)
EMAIL = "ada@example.com"


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
            OrderLine(sku="mug", quantity=1, unit_price=eur(1500)),
            OrderLine(sku="tea", quantity=1, unit_price=eur(1000)),
        ],
        "shipping_address": Address(
            recipient="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
        ),
        "tenders": [Tender(method=PaymentMethod.CARD, token="tok-ok", amount=eur(2500))],
        "total": eur(2500),
    }
    return OrderCreated(**{**fields, **overrides})


def payment_failed(order_id: str = "o-123") -> PaymentFailed:
    return PaymentFailed(
        event_id=uuid.uuid4(), order_id=order_id, occurred_at=NOW, amount=eur(2500), reason="card declined"
    )


def inventory_shortage(order_id: str = "o-123") -> InventoryShortage:
    return InventoryShortage(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        short_lines=[ShortLine(sku="mug", requested=2, available=1)],
    )


class OrderShipped(AvroRecord):
    """Stands in for the record a later issue adds to oms.orders.events."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderShipped"
    event_id: uuid.UUID
    order_id: str
    occurred_at: datetime.datetime


class SomethingElse(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.orders.SomethingElse"
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


def test_order_created_confirms_the_order_to_the_customer() -> None:
    created = order_created()

    state, notifications = decide(None, created, NOW)

    assert notifications == [
        Notification(
            order_id="o-123",
            kind=NotificationKind.ORDER_CONFIRMED,
            text="Your order o-123 is confirmed: 2 items, 25.00 EUR.",
            caused_by=created.event_id,
            recipient=EMAIL,
        )
    ]
    assert state == NotificationsState(recipient=EMAIL, told={NotificationKind.ORDER_CONFIRMED: NOW})


def test_payment_failure_after_the_order_is_told_at_once() -> None:
    failed = payment_failed()

    _, notifications = told([order_created(), failed])

    assert [(n.kind, n.caused_by, n.recipient) for n in notifications][1:] == [
        (NotificationKind.PAYMENT_FAILED, failed.event_id, EMAIL)
    ]
    assert notifications[1].text == (
        "We could not take the payment of 25.00 EUR for your order o-123: card declined. "
        "Please check your payment details."
    )


def test_inventory_shortage_is_told_as_out_of_stock_with_what_is_missing() -> None:
    _, notifications = told([order_created(), inventory_shortage()])

    assert notifications[1].kind == NotificationKind.OUT_OF_STOCK
    assert notifications[1].text == (
        "Sorry, we cannot fulfil your order o-123, not enough stock of mug (2 ordered, 1 available). "
        "Any payment taken will be refunded."
    )


def test_news_before_the_order_waits_for_the_customers_address() -> None:
    state, notifications = told([payment_failed()])

    assert notifications == []
    assert state is not None
    assert state.recipient is None
    assert [notice.kind for notice in state.waiting] == [NotificationKind.PAYMENT_FAILED]


def test_late_order_created_releases_waiting_news_after_its_confirmation() -> None:
    failed, shortage = payment_failed(), inventory_shortage()
    waiting, _ = told([failed, shortage])

    state, notifications = decide(waiting, order_created(), LATER)

    assert [(n.kind, n.recipient) for n in notifications] == [
        (NotificationKind.ORDER_CONFIRMED, EMAIL),
        (NotificationKind.PAYMENT_FAILED, EMAIL),
        (NotificationKind.OUT_OF_STOCK, EMAIL),
    ]
    assert notifications[1].caused_by == failed.event_id
    assert notifications[2].caused_by == shortage.event_id
    assert state is not None
    assert state.waiting == []
    assert set(state.told) == {n.kind for n in notifications}
    assert set(state.told.values()) == {LATER}


NEWS = [order_created, payment_failed, inventory_shortage]


@pytest.mark.parametrize("make", NEWS, ids=lambda make: make.__name__)
def test_each_kind_is_told_once_per_order(make: Callable[[], AvroRecord]) -> None:
    first = make()
    state, _ = told([first] if isinstance(first, OrderCreated) else [order_created(), first])

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


@pytest.mark.parametrize(
    "record",
    [
        OrderRejected(event_id=uuid.uuid4(), order_id="o-123", occurred_at=NOW, reasons=["no lines"]),
        InventoryReserved(
            event_id=uuid.uuid4(), order_id="o-123", occurred_at=NOW, lines=[StockLine(sku="mug", quantity=1)]
        ),
        SomethingElse(event_id=uuid.uuid4(), order_id="o-123", occurred_at=NOW),
    ],
    ids=lambda record: type(record).__name__,
)
def test_records_a_customer_does_not_hear_about_leave_no_state(record: AvroRecord) -> None:
    assert decide(None, record, NOW) == (None, [])


def test_records_still_to_come_are_told_by_name() -> None:
    shipped = OrderShipped(event_id=uuid.uuid4(), order_id="o-123", occurred_at=NOW)

    _, notifications = told([order_created(), shipped])

    assert (notifications[1].kind, notifications[1].text) == (
        NotificationKind.ORDER_SHIPPED,
        "Your order o-123 is on its way.",
    )


def test_notified_records_of_the_contract_come_from_an_input_topic() -> None:
    carried = {name for topic in INPUTS for name in topic.records}
    assert {name for name in NOTIFIED_RECORDS if name in RECORD_TYPES} <= carried


@pytest.mark.parametrize(
    ("money", "text"),
    [(eur(2500), "25.00 EUR"), (eur(5), "0.05 EUR"), (Money(amount_minor=1200, currency="JPY"), "1200 JPY")],
)
def test_money_is_written_in_its_currencys_major_unit(money: Money, text: str) -> None:
    assert format_money(money) == text


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

    assert [call[0] for call in channel.calls] == ["o-123/ORDER_CONFIRMED", "o-123/PAYMENT_FAILED"]
    sent = [emit.record.model_dump() for emit in emits]
    assert {emit.key for emit in emits} == {"o-123"}
    assert [(s["kind"], s["message_id"], s["recipient"], s["channel"]) for s in sent] == [
        (NotificationKind.ORDER_CONFIRMED, "m-1", EMAIL, "email"),
        (NotificationKind.PAYMENT_FAILED, "m-2", EMAIL, "email"),
    ]
    assert sent[1]["caused_by"] == failed.event_id
    assert sent[1]["event_id"] == derive_event_id(failed.event_id, "notified/PAYMENT_FAILED")
    saved = NOTIFICATIONS.load(cast(State, state))
    assert saved is not None
    assert (saved.recipient, set(saved.told), saved.waiting) == (EMAIL, {s["kind"] for s in sent}, [])


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
