"""Order intake, the first step of the choreography: a valid `PlaceOrder` becomes `OrderCreated`,
an invalid one `OrderRejected` with every reason; a repeated `PlaceOrder` for an existing order changes
nothing."""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from quixstreams import State

from processors.runtime.records import Emit, derive_event_id, utc_now
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import with_message
from processors.runtime.state import StateSlot
from schemas.models import AvroRecord, Money, OrderCreated, OrderRejected, PlaceOrder
from topology.topics import ORDERS_COMMANDS, ORDERS_EVENTS

PROCESSOR = "oms.intake"
MAX_LINES = 100
MAX_QUANTITY_PER_LINE = 1_000
MAX_TENDERS = 5
MAX_ORDER_TOTAL_MINOR = 10_000_000

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Rules(BaseModel):
    """Limits on a PlaceOrder's fields; cross-field rules are in `cross_field_reasons`."""

    model_config = ConfigDict(extra="ignore")


class _MoneyRules(_Rules):
    amount_minor: int = Field(gt=0)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class _LineRules(_Rules):
    sku: NonBlank
    quantity: int = Field(gt=0, le=MAX_QUANTITY_PER_LINE)
    unit_price: _MoneyRules


class _AddressRules(_Rules):
    recipient: NonBlank
    line1: NonBlank
    city: NonBlank
    postal_code: NonBlank
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class _TenderRules(_Rules):
    token: NonBlank
    amount: _MoneyRules


class PlaceOrderRules(_Rules):
    order_id: NonBlank
    customer_id: NonBlank
    customer_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    lines: list[_LineRules] = Field(min_length=1, max_length=MAX_LINES)
    shipping_address: _AddressRules
    tenders: list[_TenderRules] = Field(min_length=1, max_length=MAX_TENDERS)


def validate(command: PlaceOrder) -> list[str]:
    """Every reason the order cannot be accepted; empty when it can."""
    reasons = []
    try:
        PlaceOrderRules.model_validate(command.model_dump())
    except ValidationError as error:
        reasons += [f"{_location(detail['loc'])}: {detail['msg']}" for detail in error.errors()]
    return reasons + cross_field_reasons(command)


def cross_field_reasons(command: PlaceOrder) -> list[str]:
    reasons = []
    currencies = {line.unit_price.currency for line in command.lines} | {t.amount.currency for t in command.tenders}
    if len(currencies) > 1:
        reasons.append(f"currency: lines and tenders must use one currency, found {', '.join(sorted(currencies))}")
    total = order_total(command)
    paid = sum(tender.amount.amount_minor for tender in command.tenders)
    if paid != total.amount_minor:
        reasons.append(f"tenders: amounts sum to {paid}, the order totals {total.amount_minor}")
    if total.amount_minor > MAX_ORDER_TOTAL_MINOR:
        reasons.append(f"total: {total.amount_minor} is above the limit of {MAX_ORDER_TOTAL_MINOR}")
    return reasons


def order_total(command: PlaceOrder) -> Money:
    currency = Counter(line.unit_price.currency for line in command.lines).most_common(1)
    return Money(
        amount_minor=sum(line.quantity * line.unit_price.amount_minor for line in command.lines),
        currency=currency[0][0] if currency else "",
    )


def _location(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


class IntakeState(BaseModel):
    """What intake remembers per order id."""

    outcome: Literal["created", "rejected"]
    command_event_id: str


def decide(
    state: IntakeState | None, command: PlaceOrder, now: datetime.datetime
) -> tuple[IntakeState | None, list[Emit]]:
    if state is not None and (state.outcome == "created" or state.command_event_id == str(command.event_id)):
        return state, []  # the order exists, or this very command was already judged
    reasons = validate(command)
    if reasons:
        rejected = OrderRejected(
            event_id=derive_event_id(command.event_id, "rejected"),
            order_id=command.order_id,
            occurred_at=now,
            customer_id=command.customer_id or None,
            reasons=reasons,
        )
        return IntakeState(outcome="rejected", command_event_id=str(command.event_id)), [
            Emit(ORDERS_EVENTS, command.order_id, rejected)
        ]
    created = OrderCreated(
        event_id=derive_event_id(command.event_id, "created"),
        order_id=command.order_id,
        occurred_at=now,
        customer_id=command.customer_id,
        customer_email=command.customer_email,
        lines=command.lines,
        shipping_address=command.shipping_address,
        tenders=command.tenders,
        total=order_total(command),
        priority=command.priority,
        is_gift=command.is_gift,
    )
    return IntakeState(outcome="created", command_event_id=str(command.event_id)), [
        Emit(ORDERS_EVENTS, command.order_id, created)
    ]


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
    state="order id: created or rejected, by which command",
)
