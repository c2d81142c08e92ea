"""Notifications: tell the customer what happened to their order, once per kind of news.

Order, payment and inventory events are merged into one stream keyed by order id, so that one per-order
state sees them all. Only `OrderCreated` carries the customer's address, and the topics are not ordered
with each other, so news that arrives before it waits in that state until it does.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from typing import Protocol, runtime_checkable

from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import BaseModel, ConfigDict
from quixstreams import State

from processors.adapters.notification_channel import (
    FileNotificationChannel,
    NotificationChannel,
    notifications_file,
)
from processors.runtime.records import Emit, derive_event_id, utc_now
from processors.runtime.retries import RetryPolicy, retrying
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import Handler, with_message
from processors.runtime.state import StateSlot
from schemas.models import (
    RECORD_TYPES,
    AvroRecord,
    InventoryShortage,
    Money,
    NotificationKind,
    NotificationSent,
    OrderCreated,
    PaymentFailed,
)
from topology.settings import Settings
from topology.topics import INVENTORY_EVENTS, NOTIFICATIONS_EVENTS, ORDERS_EVENTS, PAYMENTS_EVENTS

PROCESSOR = "oms.notifications"
# A channel that cannot answer now is tried this way; what still fails is the message's dead letter.
CHANNEL_RETRY = RetryPolicy(attempts=4, first_delay_s=0.05, max_delay_s=1.0)
INPUTS = (ORDERS_EVENTS, PAYMENTS_EVENTS, INVENTORY_EVENTS)

# The records a customer hears about, by Avro full name; every other record is ignored. Names rather than
# classes, so that records still to come on oms.orders.events are listed before their models exist.
NOTIFIED_RECORDS: dict[str, NotificationKind] = {
    OrderCreated.AVRO_NAME: NotificationKind.ORDER_CONFIRMED,
    PaymentFailed.AVRO_NAME: NotificationKind.PAYMENT_FAILED,
    InventoryShortage.AVRO_NAME: NotificationKind.OUT_OF_STOCK,
    "oms.orders.OrderShipped": NotificationKind.ORDER_SHIPPED,
    "oms.orders.OrderDelivered": NotificationKind.ORDER_DELIVERED,
    "oms.orders.OrderCancelled": NotificationKind.ORDER_CANCELLED,
}

# Texts of the kinds whose records add no detail worth telling.
PLAIN_TEXTS: dict[NotificationKind, str] = {
    NotificationKind.ORDER_SHIPPED: "Your order {order_id} is on its way.",
    NotificationKind.ORDER_DELIVERED: "Your order {order_id} has been delivered.",
    NotificationKind.ORDER_CANCELLED: "Your order {order_id} has been cancelled.",
}

# ISO 4217 currencies whose minor unit is not a hundredth.
MINOR_UNIT_DIGITS: dict[str, int] = {"JPY": 0, "KRW": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3}


@runtime_checkable
class OrderEvent(Protocol):
    """What every record a customer hears about carries."""

    event_id: uuid.UUID
    order_id: str


class Notice(BaseModel):
    """News for the customer about their order, and the event it comes from."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    kind: NotificationKind
    text: str
    caused_by: uuid.UUID


class Notification(Notice):
    """A notice and the address it goes to: what the channel is asked to send."""

    recipient: str


class NotificationsState(BaseModel):
    """What notifications remember per order id."""

    recipient: str | None = None
    told: dict[NotificationKind, datetime.datetime] = {}  # when each kind was sent
    waiting: list[Notice] = []  # for the recipient, until OrderCreated brings it

    def knows(self, kind: NotificationKind) -> bool:
        return kind in self.told or any(notice.kind == kind for notice in self.waiting)


def decide(
    state: NotificationsState | None, record: AvroRecord, now: datetime.datetime
) -> tuple[NotificationsState | None, list[Notification]]:
    """The notifications `record` calls for now, and what to remember for the order's next records."""
    kind = NOTIFIED_RECORDS.get(record.AVRO_NAME)
    if kind is None or not isinstance(record, OrderEvent):
        return state, []  # nothing a customer needs to hear
    current = state or NotificationsState()
    if current.knows(kind):
        return state, []  # a duplicate, a replay, or more of the same news: each kind is told once
    notice = Notice(
        order_id=record.order_id,
        kind=kind,
        text=text_for(record, kind),
        caused_by=record.event_id,
    )
    if current.recipient is not None:
        return _told(current, current.recipient, [notice], now)
    if isinstance(record, OrderCreated):
        # The confirmation leads, so that the customer hears of the order before what became of it.
        return _told(current, record.customer_email, [notice, *current.waiting], now)
    return current.model_copy(update={"waiting": [*current.waiting, notice]}), []


def _told(
    state: NotificationsState, recipient: str, notices: list[Notice], now: datetime.datetime
) -> tuple[NotificationsState, list[Notification]]:
    told = {**state.told, **{notice.kind: now for notice in notices}}
    return NotificationsState(recipient=recipient, told=told, waiting=[]), [
        Notification(**notice.model_dump(), recipient=recipient) for notice in notices
    ]


def text_for(record: OrderEvent, kind: NotificationKind) -> str:
    """What the customer reads: the details of the records that have them, else the plain text of `kind`."""
    match record:
        case OrderCreated(lines=lines, total=total):
            items = sum(line.quantity for line in lines)
            return (
                f"Your order {record.order_id} is confirmed: {items} item{'' if items == 1 else 's'}, "
                f"{format_money(total)}."
            )
        case PaymentFailed(amount=amount, reason=reason):
            return (
                f"We could not take the payment of {format_money(amount)} for your order {record.order_id}: "
                f"{reason}. Please check your payment details."
            )
        case InventoryShortage(short_lines=short_lines):
            missing = ", ".join(
                f"{line.sku} ({line.requested} ordered, {line.available} available)" for line in short_lines
            )
            return (
                f"Sorry, we cannot fulfil your order {record.order_id}, not enough stock of {missing}. "
                "Any payment taken will be refunded."
            )
    return PLAIN_TEXTS[kind].format(order_id=record.order_id)


def format_money(money: Money) -> str:
    """`25.00 EUR` for 2500 minor units of EUR."""
    digits = MINOR_UNIT_DIGITS.get(money.currency, 2)
    return f"{money.amount_minor / 10**digits:.{digits}f} {money.currency}"


def idempotency_key(notification: Notification) -> str:
    """One per order and kind, so that the channel tells each kind once, even when asked again."""
    return f"{notification.order_id}/{notification.kind}"


NOTIFICATIONS = StateSlot("notifications", NotificationsState)


def handle(record: AvroRecord, state: State, channel: NotificationChannel) -> list[Emit]:
    now = utc_now()
    known = NOTIFICATIONS.load(state)
    new_state, notifications = decide(known, record, now)
    emits = [Emit(NOTIFICATIONS_EVENTS, n.order_id, send(channel, n, now)) for n in notifications]
    NOTIFICATIONS.update(state, known, new_state)  # only once all were sent: a failure leaves the state as it was
    return emits


def send(
    channel: NotificationChannel,
    notification: Notification,
    now: datetime.datetime,
) -> NotificationSent:
    message_id: str = retrying(
        lambda: channel.send(
            idempotency_key(notification),
            notification.recipient,
            notification.kind,
            notification.order_id,
            notification.text,
        ),
        CHANNEL_RETRY,
    )
    return NotificationSent(
        event_id=derive_event_id(notification.caused_by, f"notified/{notification.kind}"),
        order_id=notification.order_id,
        occurred_at=now,
        kind=notification.kind,
        channel=channel.name,
        recipient=notification.recipient,
        message_id=message_id,
        caused_by=notification.caused_by,
    )


def _handler(settings: Settings, registry: SchemaRegistryClient) -> Handler:
    return with_message(functools.partial(handle, channel=FileNotificationChannel(notifications_file(settings))))


SPEC = ProcessorSpec(
    name="notifications",
    group=PROCESSOR,
    # Merged, so that one per-order state sees the order's news from all three.
    streams=(
        Stream(
            INPUTS, _handler, handles=tuple(RECORD_TYPES[name] for name in NOTIFIED_RECORDS if name in RECORD_TYPES)
        ),
    ),
    outputs=(NOTIFICATIONS_EVENTS,),
    state="order id: recipient, kinds told, notices waiting",
)
