"""Order intake, the first step of the choreography: a valid `PlaceOrder` becomes `OrderCreated`, an invalid
one `OrderRejected` with every reason (`processors.intake_rules`).

One order per id: intake remembers, per order id, the first command's outcome and a fingerprint of its
content. A later `PlaceOrder` for the id is always answered: with the first answer again, the very same
record, when its content is the same (a producer retrying with a new event id); with `OrderRejected` coded
`duplicate-order-id` when it differs, whatever the first outcome was. The very same command again (same
event id: a replay) emits nothing.

A command that cannot be read (not Avro, an unknown schema, a value the schema refuses, such as an order id
over its 128 characters) is dead-lettered, and answered beside its dead letter wherever its order id can be
read (`answer_unreadable`): an `OrderRejected` coded `invalid-field` that says what could not be read. The id
is not taken by it: a readable command for the id is judged afresh, and an id that an order holds gets the
answer as a duplicate, which leaves that order alone.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from quixstreams import State

from processors.intake_rules import (
    EMAIL_PATTERN,
    MAX_REASON_CHARS,
    ORDER_ID_RULE,
    Reason,
    RejectionCode,
    bounded,
    field_problem,
    grouped,
    order_total,
    validate,
)
from processors.plain_text import cut, shown
from processors.runtime.cloudevents import header, type_of
from processors.runtime.deadletters import Received
from processors.runtime.records import Emit, Headers, derive_event_id, utc_now
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import with_message
from processors.runtime.state import StateSlot
from schemas.models import AvroRecord, OrderCreated, OrderRejected, PlaceOrder
from topology.topics import ORDERS_COMMANDS, ORDERS_EVENTS

PROCESSOR = "oms.intake"
DUPLICATE_ORDER_ID = RejectionCode.DUPLICATE_ORDER_ID.value
# An OrderRejected's codes, each once, comma-separated, for consumers that count records without decoding them.
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
    return rejection(
        command.order_id,
        command.event_id,
        reasons,
        at,
        customer_id=command.customer_id or None,
        customer_email=command.customer_email,
    )


def rejection(
    order_id: str,
    command_event_id: uuid.UUID | str,
    reasons: Sequence[Reason],
    at: datetime.datetime,
    *,
    customer_id: str | None = None,
    customer_email: str | None = None,
) -> Emit:
    """The `OrderRejected` answering the command `command_event_id` (a position in its topic for a command
    whose event id cannot be read), under `order_id` cut to what the record may carry."""
    codes = [reason.code.value for reason in reasons]
    order_id = cut(order_id, _max_length("order_id"))
    record = OrderRejected(
        event_id=derive_event_id(command_event_id, "rejected"),
        order_id=order_id,
        occurred_at=at,
        customer_id=cut(customer_id, _max_length("customer_id")) if customer_id else None,
        reasons=[reason.text for reason in reasons],
        codes=codes,
        customer_email=customer_email if customer_email is not None and is_email(customer_email) else None,
        command_event_id=command_event_id if isinstance(command_event_id, uuid.UUID) else None,
    )
    headers: Headers = ((REJECTION_CODES_HEADER, ",".join(dict.fromkeys(codes)).encode()),)
    return Emit(ORDERS_EVENTS, order_id, record, headers=headers)


def _max_length(field: str) -> int:
    """The most characters `OrderRejected.<field>` may carry (its schema's `maxLength`)."""
    limits = [getattr(item, "max_length", None) for item in OrderRejected.model_fields[field].metadata]
    return next(limit for limit in limits if limit is not None)


def is_email(text: str) -> bool:
    return len(text) <= _max_length("customer_email") and re.fullmatch(EMAIL_PATTERN, text) is not None


ORDER = StateSlot("order", IntakeState)


def handle(record: AvroRecord, state: State) -> list[Emit]:
    if not isinstance(record, PlaceOrder):
        return []  # CancelOrder is the cancellation saga's
    known = ORDER.load(state)
    new_state, emits = decide(known, record, utc_now())
    ORDER.update(state, known, new_state)
    return emits


# --- a command that cannot be read ----------------------------------------------------------------------

# The fields a PlaceOrder's Avro body starts with, in the schema's order, up to those an answer needs.
LEADING_FIELDS = ("event_id", "order_id", "occurred_at", "customer_id", "customer_email")
CONFLUENT_FRAME_BYTES = 5  # magic byte and schema id
MAX_ERROR_CHARS = 300


def answer_unreadable(received: Received, error: BaseException, writer: str | None, state: State) -> list[Emit]:
    """The answer to a command that cannot be read, when it may be a `PlaceOrder` (its schema id or, failing
    that, its `ce_type` says so, or nothing says otherwise) and its order id can be read: from its key, or
    failing that from its body. Said as a duplicate when an order holds the id; nothing for the very command
    that was judged before."""
    said = writer if writer is not None else header(received.headers, "ce_type")
    if said not in (None, PlaceOrder.AVRO_NAME, type_of(PlaceOrder.AVRO_NAME)):
        return []  # another record type: not a command intake answers
    body = leading_fields(received.value) if writer == PlaceOrder.AVRO_NAME else {}
    order_id = _text(received.key) or body.get("order_id")
    if not order_id:
        return []
    event_id = _uuid(body.get("event_id"))
    known = ORDER.load(state)
    if known is not None and event_id is not None and known.command_event_id == str(event_id):
        return []
    reasons = unreadable_reasons(error)
    # An id cut to fit is not the one the customer knows, nor the key the command came under: the partner is
    # answered, the customer is not told.
    fits = len(order_id) <= _max_length("order_id")
    if known is not None:
        reasons = [Reason(RejectionCode.DUPLICATE_ORDER_ID, DUPLICATE_ORDER_ID_TEXT), *reasons]
    return [
        rejection(
            order_id,
            event_id or f"{received.topic}[{received.partition}]@{received.offset}",
            bounded(reasons),
            utc_now(),
            customer_id=_text_or_none(body.get("customer_id")),
            customer_email=_text_or_none(body.get("customer_email")) if fits else None,
        )
    ]


def unreadable_reasons(error: BaseException) -> list[Reason]:
    """What could not be read, in words: each field the schema refuses (the order id by intake's own rule),
    or why the bytes are no record."""
    cause = error.__cause__
    if isinstance(cause, ValidationError):
        problems = [field_problem(detail) for detail in cause.errors()]
        return [
            Reason(RejectionCode.INVALID_FIELD, ORDER_ID_RULE if reason.text.startswith("order id ") else reason.text)
            for reason in grouped(problems)
        ]
    why = shown(str(error) or type(error).__name__, MAX_ERROR_CHARS)
    return [Reason(RejectionCode.INVALID_FIELD, cut(f"the command could not be read: {why}", MAX_REASON_CHARS))]


def leading_fields(value: bytes | None) -> dict[str, Any]:
    """The first fields of a PlaceOrder's Avro body, as many as can be read, without the schema's limits."""
    fields: dict[str, Any] = {}
    if value is None:
        return fields
    position = CONFLUENT_FRAME_BYTES
    try:
        for name in LEADING_FIELDS:
            if name == "occurred_at":
                fields[name], position = _avro_long(value, position)
            else:
                length, position = _avro_long(value, position)
                if length < 0 or position + length > len(value):
                    break
                fields[name] = value[position : position + length].decode()
                position += length
    except (IndexError, UnicodeDecodeError):
        pass
    return fields


def _avro_long(data: bytes, position: int) -> tuple[int, int]:
    """A zigzag varint at `position`, and where the next field starts."""
    shift = result = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise IndexError("an Avro long longer than ten bytes")


def _text(data: bytes | None) -> str | None:
    try:
        return data.decode() if data else None
    except UnicodeDecodeError:
        return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


SPEC = ProcessorSpec(
    name="intake",
    group=PROCESSOR,
    streams=(
        Stream(
            (ORDERS_COMMANDS,),
            lambda settings, registry: with_message(handle),
            handles=(PlaceOrder,),
            answer_unreadable=answer_unreadable,
        ),
    ),
    outputs=(ORDERS_EVENTS,),
    state="order id: the first command's outcome, fingerprint and answer",
)
