"""Notifications: tell the customer what happened to their order, each piece of news once.

Order, payment and inventory events are merged into one stream keyed by order id, so that one per-order
state sees them all. Only `OrderCreated` carries the order's address, and the topics are not ordered with
each other, so news that arrives before it waits in that state until it does. Most news is told once per
order (the kind is remembered); answers to a command are told once per command: a refused cancellation per
`CancelOrder`, a rejection per `PlaceOrder`. A rejection goes to the address on the rejection itself: the
order it names may not exist, or (a duplicate order id) belong to someone else, whose order it leaves alone.

What the customer reads is in `processors.customer_messages`.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from typing import get_args

from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import BaseModel, ConfigDict
from quixstreams import State

from processors.adapters.notification_channel import (
    FileNotificationChannel,
    NotificationChannel,
    notifications_file,
)
from processors.customer_messages import Message, Notified, message_for, once_the_order_came
from processors.runtime.records import Emit, derive_event_id, utc_now
from processors.runtime.retries import RetryPolicy, retrying
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import Handler, with_message
from processors.runtime.state import StateSlot
from schemas.models import (
    AvroRecord,
    NotificationKind,
    NotificationSent,
    OrderCancellationRejected,
    OrderCreated,
    OrderRejected,
)
from topology.settings import Settings
from topology.topics import INVENTORY_EVENTS, NOTIFICATIONS_EVENTS, ORDERS_EVENTS, PAYMENTS_EVENTS

PROCESSOR = "oms.notifications"
# A channel that cannot answer now is tried this way; what still fails is the message's dead letter.
CHANNEL_RETRY = RetryPolicy(attempts=4, first_delay_s=0.05, max_delay_s=1.0)
INPUTS = (ORDERS_EVENTS, PAYMENTS_EVENTS, INVENTORY_EVENTS)

# The records a customer hears about (those `customer_messages` has words for); every other record is ignored.
NOTIFIED_RECORDS: tuple[type[AvroRecord], ...] = get_args(Notified)


class Notice(BaseModel):
    """News for the customer about their order, and the event it comes from."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    kind: NotificationKind
    text: str
    caused_by: uuid.UUID
    answers: str | None = None  # the command it answers, for news told once per command rather than per order
    code: str = ""  # the template's code (`customer_messages`): news held for an address may be decided again

    @property
    def subject(self) -> str:
        """What is told once: the kind, or the kind's answer to one command."""
        return f"{self.kind}/{self.answers}" if self.answers is not None else str(self.kind)


class Notification(Notice):
    """A notice and the address it goes to: what the channel is asked to send."""

    recipient: str


class NotificationsState(BaseModel):
    """What notifications remember per order id."""

    recipient: str | None = None  # from OrderCreated
    told: dict[NotificationKind, datetime.datetime] = {}  # when each kind told once per order was sent
    answered: dict[str, datetime.datetime] = {}  # when each answer to a command was sent, by `Notice.subject`
    waiting: list[Notice] = []  # for the recipient, until OrderCreated brings it

    def knows(self, notice: Notice) -> bool:
        told = notice.kind in self.told if notice.answers is None else notice.subject in self.answered
        return told or any(waiting.subject == notice.subject for waiting in self.waiting)


def decide(
    state: NotificationsState | None, record: AvroRecord, now: datetime.datetime
) -> tuple[NotificationsState | None, list[Notification]]:
    """The notifications `record` calls for now, and what to remember for the order's next records."""
    if not isinstance(record, Notified):
        return state, []  # nothing a customer needs to hear
    current = state or NotificationsState()
    notice = notice_for(record)
    if current.knows(notice):
        return state, []  # a duplicate, a replay, or more of the same news: each is told once
    if isinstance(record, OrderRejected):
        if record.customer_email is None:
            return state, []  # nobody to tell
        return _told(current, record.customer_email, [notice], now, keep_recipient=True)
    if isinstance(record, OrderCreated):
        if current.recipient is not None:
            return state, []  # told when it first came (as ORDER_CONFIRMED, before the kind was split)
        # The order's receipt leads, so that the customer hears of the order before what became of it.
        held = [_once_the_order_came(waiting) for waiting in current.waiting]
        return _told(current, record.customer_email, [notice, *held], now)
    if current.recipient is not None:
        return _told(current, current.recipient, [notice], now)
    return current.model_copy(update={"waiting": [*current.waiting, notice]}), []


def notice_for(record: Notified) -> Notice:
    message = message_for(record)
    return Notice(
        order_id=record.order_id,
        kind=message.kind,
        text=message.text,
        caused_by=record.event_id,
        answers=answered_command(record),
        code=message.code,
    )


def _once_the_order_came(notice: Notice) -> Notice:
    """News that waited for the order's address, as it reads now that the order has come: the templates it may
    become need the order id alone."""
    message = once_the_order_came(Message(notice.kind, notice.code, {"order_id": notice.order_id}))
    if message.code == notice.code:
        return notice
    return notice.model_copy(update={"code": message.code, "text": message.text})


def answered_command(record: Notified) -> str | None:
    """The command `record` answers, when each such command gets its own answer."""
    if isinstance(record, OrderRejected):
        return str(record.command_event_id or record.event_id)
    if isinstance(record, OrderCancellationRejected):
        return str(record.cancel_event_id)
    return None


def _told(
    state: NotificationsState,
    recipient: str,
    notices: list[Notice],
    now: datetime.datetime,
    keep_recipient: bool = False,
) -> tuple[NotificationsState, list[Notification]]:
    """`keep_recipient`: the address is this notice's alone, not the order's."""
    told = {**state.told, **{n.kind: now for n in notices if n.answers is None}}
    answered = {**state.answered, **{n.subject: now for n in notices if n.answers is not None}}
    sent = {n.subject for n in notices}
    remembered = state.model_copy(
        update={
            "recipient": state.recipient if keep_recipient else recipient,
            "told": told,
            "answered": answered,
            "waiting": [w for w in state.waiting if w.subject not in sent],
        }
    )
    return remembered, [Notification(**notice.model_dump(), recipient=recipient) for notice in notices]


def idempotency_key(notification: Notification) -> str:
    """One per order and subject, so that the channel tells each once, even when asked again."""
    return f"{notification.order_id}/{notification.subject}"


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
    channel = FileNotificationChannel(notifications_file(settings), deferred=True)
    return with_message(functools.partial(handle, channel=channel))


SPEC = ProcessorSpec(
    name="notifications",
    group=PROCESSOR,
    # Merged, so that one per-order state sees the order's news from all three.
    streams=(Stream(INPUTS, _handler, handles=NOTIFIED_RECORDS),),
    outputs=(NOTIFICATIONS_EVENTS,),
    state="order id: recipient, kinds told, commands answered, notices waiting",
)
