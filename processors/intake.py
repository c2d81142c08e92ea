"""Order intake, the first step of the choreography: a valid `PlaceOrder` becomes `OrderCreated`, an invalid
one `OrderRejected` with every reason (`processors.intake_rules`).

One order per id: intake remembers, per order id, the first command's outcome and a fingerprint of its
content. A later `PlaceOrder` for the id is always answered: with the first answer again, the very same
record, when its content is the same (a producer retrying with a new event id); with `OrderRejected` coded
`duplicate-order-id` when it differs, whatever the first outcome was. The very same command again (same
event id: a replay) emits nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import uuid
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel
from quixstreams import State

from processors.intake_rules import (
    EMAIL_PATTERN,
    Reason,
    RejectionCode,
    order_total,
    validate,
)
from processors.runtime.cloudevents import header, type_of
from processors.runtime.records import Emit, Headers, derive_event_id, utc_now
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import with_message
from processors.runtime.state import StateSlot
from schemas.models import AvroRecord, OrderCreated, OrderRejected, PlaceOrder
from topology.topics import ORDERS_COMMANDS, ORDERS_EVENTS

PROCESSOR = "oms.intake"
DUPLICATE_ORDER_ID = RejectionCode.DUPLICATE_ORDER_ID.value
# An OrderRejected's codes, comma-separated, for consumers that count records without decoding them.
REJECTION_CODES_HEADER = "oms-rejection-codes"
DUPLICATE_ORDER_ID_TEXT = "duplicate order id: an order with this id was placed before with other content"


def is_duplicate_id_rejection_message(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    """`is_duplicate_id_rejection` from a message's headers alone."""
    codes = header(headers, REJECTION_CODES_HEADER) or ""
    return header(headers, "ce_type") == type_of(OrderRejected.AVRO_NAME) and DUPLICATE_ORDER_ID in codes.split(",")


class IntakeState(BaseModel):
    """What intake remembers per order id: the first command's outcome, and what repeating its answer needs.

    Entries kept before fingerprints have only `outcome` and `command_event_id`; any other command for their
    id is then answered as a duplicate, since its content cannot be compared."""

    outcome: Literal["created", "rejected"]
    command_event_id: str
    fingerprint: str | None = None
    answered_at: datetime.datetime | None = None
    reasons: list[str] = []
    codes: list[str] = []


def fingerprint(command: PlaceOrder) -> str:
    """The command's content: every field but its event id and time, as the sha256 of its JSON (pydantic's
    serializer writes fields in the schema's order, so equal content gives equal text; and a third of the
    cost of sorting a dumped dict)."""
    content = command.model_dump_json(exclude={"event_id", "occurred_at"})
    return hashlib.sha256(content.encode()).hexdigest()


def decide(
    state: IntakeState | None, command: PlaceOrder, now: datetime.datetime
) -> tuple[IntakeState | None, list[Emit]]:
    if state is None:
        return judge(command, now)
    if state.command_event_id == str(command.event_id):
        return state, []  # this very command, judged before
    if state.fingerprint == fingerprint(command) and state.answered_at is not None:
        return state, [first_answer(state, command)]
    return state, [rejected(command, [Reason(RejectionCode.DUPLICATE_ORDER_ID, DUPLICATE_ORDER_ID_TEXT)], now)]


def judge(command: PlaceOrder, now: datetime.datetime) -> tuple[IntakeState, list[Emit]]:
    """The first command for an order id: created, or rejected with every reason."""
    reasons = validate(command)
    answer = rejected(command, reasons, now) if reasons else created(command, command.event_id, now)
    judged = IntakeState(
        outcome="rejected" if reasons else "created",
        command_event_id=str(command.event_id),
        fingerprint=fingerprint(command),
        answered_at=now,
        reasons=[reason.text for reason in reasons],
        codes=[reason.code.value for reason in reasons],
    )
    return judged, [answer]


def first_answer(state: IntakeState, command: PlaceOrder) -> Emit:
    """The answer to the id's first command, the same record again: same event id, time and content."""
    assert state.answered_at is not None
    first_command = uuid.UUID(state.command_event_id)
    if state.outcome == "created":
        return created(command, first_command, state.answered_at)
    reasons = [Reason(RejectionCode(code), text) for code, text in zip(state.codes, state.reasons, strict=True)]
    return rejected(command.model_copy(update={"event_id": first_command}), reasons, state.answered_at)


def created(command: PlaceOrder, command_event_id: uuid.UUID, at: datetime.datetime) -> Emit:
    order = OrderCreated(
        event_id=derive_event_id(command_event_id, "created"),
        order_id=command.order_id,
        occurred_at=at,
        customer_id=command.customer_id,
        customer_email=command.customer_email,
        lines=command.lines,
        shipping_address=command.shipping_address,
        tenders=command.tenders,
        total=order_total(command),
        priority=command.priority,
        is_gift=command.is_gift,
    )
    return Emit(ORDERS_EVENTS, command.order_id, order)


def rejected(command: PlaceOrder, reasons: Sequence[Reason], at: datetime.datetime) -> Emit:
    codes = [reason.code.value for reason in reasons]
    rejection = OrderRejected(
        event_id=derive_event_id(command.event_id, "rejected"),
        order_id=command.order_id,
        occurred_at=at,
        customer_id=command.customer_id or None,
        reasons=[reason.text for reason in reasons],
        codes=codes,
        customer_email=command.customer_email if is_email(command.customer_email) else None,
        command_event_id=command.event_id,
    )
    headers: Headers = ((REJECTION_CODES_HEADER, ",".join(codes).encode()),)
    return Emit(ORDERS_EVENTS, command.order_id, rejection, headers=headers)


def is_email(text: str) -> bool:
    return re.fullmatch(EMAIL_PATTERN, text) is not None


ORDER = StateSlot("order", IntakeState)


def handle(record: AvroRecord, state: State) -> list[Emit]:
    if not isinstance(record, PlaceOrder):
        return []  # CancelOrder is the cancellation saga's
    known = ORDER.load(state)
    new_state, emits = decide(known, record, utc_now())
    ORDER.update(state, known, new_state)
    return emits


SPEC = ProcessorSpec(
    name="intake",
    group=PROCESSOR,
    streams=(Stream((ORDERS_COMMANDS,), lambda settings, registry: with_message(handle), handles=(PlaceOrder,)),),
    outputs=(ORDERS_EVENTS,),
    state="order id: the first command's outcome, fingerprint and answer",
)
