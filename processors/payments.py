"""Payments, the second step of the choreography: an `OrderCreated` is charged through the payment gateway and
becomes `PaymentProcessed`, or `PaymentFailed` with nothing left charged. What was charged is refunded on a
`RefundPayment`, and in full when inventory reports an `InventoryShortage` for the order.

Charging several tenders is a small saga: tenders are charged in order, and when one is refused the ones
already charged are voided, newest first. The saga is the pure function `decide`, which tells from the answers
so far which gateway call comes next or what the outcome is; `handle` makes the calls. Every call's
idempotency key derives from the `OrderCreated` event id, so a re-run after a crash repeats the same calls and
the gateway answers them from its records, without a second charge. A `PaymentFailed` says why twice: `code`
for machines and customer messages (the gateway's decline code, `gateway-unavailable` or `tenders-mismatch`),
`reason` with the detail for an operator (which tender, what the gateway said).

A refund goes back tender by tender, newest charge first, until the amount asked is covered; the part a tender
will not take back (its refund declined, or its gateway unavailable) becomes store credit. `decide_refund` is
the pure decision, as `decide` is for charges. The order's events, the refund commands and inventory's events
are merged into one stream, so that one per-order state holds the payment and the refunds made of it: what each
tender has given back, and which requests were carried out, so that none is carried out twice. A request that
comes before the payment is decided waits in that state, and is carried out once the payment is.

Payments also tells the order's end on the orders topic, when it is the one to decide it: an `OrderFailed`
(`PAYMENT_FAILED`) with each `PaymentFailed`, and an `OrderFailed` (`OUT_OF_STOCK`) with the refunds of an
`InventoryShortage`, saying what went back; each in the same transaction as the event it goes with, its id
derived from the deciding event's, so that a partner learns every outcome from `oms.orders.events` alone.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import BaseModel, ConfigDict
from quixstreams import State

from processors.adapters.payment_gateway import (
    ChargeResult,
    PaymentGateway,
    RefundResult,
    SimulatedPaymentGateway,
    default_ledger_path,
)
from processors.runtime.records import Emit, derive_event_id, utc_now
from processors.runtime.retries import RetryPolicy, TransientError, retrying
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import Handler, with_message
from processors.runtime.state import StateSlot
from schemas.models import (
    AvroRecord,
    InventoryShortage,
    Money,
    OrderCreated,
    OrderFailed,
    OrderFailureReason,
    PaymentFailed,
    PaymentMethod,
    PaymentProcessed,
    PaymentRefunded,
    PaymentRefundFailed,
    RefundPayment,
    ShortLine,
    StockLine,
    Tender,
    TenderCharge,
)
from topology.settings import Settings
from topology.topics import INVENTORY_EVENTS, ORDERS_EVENTS, PAYMENTS_COMMANDS, PAYMENTS_EVENTS

# The most `OrderFailed.detail` may carry, as its schema declares it.
DETAIL_LENGTH = next(
    rule.max_length for rule in OrderFailed.model_fields["detail"].metadata if hasattr(rule, "max_length")
)

PROCESSOR = "oms.payments"
INPUTS = (ORDERS_EVENTS, PAYMENTS_COMMANDS, INVENTORY_EVENTS)

# Each gateway call: 5 attempts over about 0.75 s before a tender counts as refused for an outage.
GATEWAY_RETRY = RetryPolicy(attempts=5, first_delay_s=0.02, max_delay_s=0.5)


# Gateway calls the saga asks for.


@dataclass(frozen=True)
class ChargeTender:
    index: int
    tender: Tender
    idempotency_key: str


@dataclass(frozen=True)
class VoidCharge:
    index: int
    transaction_id: str
    idempotency_key: str


GatewayCall = ChargeTender | VoidCharge


# What came of them.


@dataclass(frozen=True)
class TenderCharged:
    index: int
    transaction_id: str


@dataclass(frozen=True)
class TenderRefused:
    index: int
    reason: str
    gateway_unavailable: bool = False
    code: str = ""  # the gateway's decline code


# Why a payment failed, machine-readable (`PaymentFailed.code`), besides the gateway's decline codes.
GATEWAY_UNAVAILABLE = "gateway-unavailable"
TENDERS_MISMATCH = "tenders-mismatch"
DECLINED = "declined"  # a gateway that gave no code


@dataclass(frozen=True)
class ChargeVoided:
    index: int


CallResult = TenderCharged | TenderRefused | ChargeVoided


# Gateway calls a refund asks for.


@dataclass(frozen=True)
class RefundTender:
    index: int
    transaction_id: str
    amount: Money
    idempotency_key: str


@dataclass(frozen=True)
class CreditTender:
    """Store credit for the part of a refund that tender `index` would not take back."""

    index: int
    amount: Money
    idempotency_key: str


RefundCall = RefundTender | CreditTender


# What came of them.


@dataclass(frozen=True)
class TenderRefunded:
    index: int
    transaction_id: str


@dataclass(frozen=True)
class RefundRefused:
    index: int
    reason: str
    gateway_unavailable: bool = False


@dataclass(frozen=True)
class TenderCredited:
    index: int
    transaction_id: str


RefundCallResult = TenderRefunded | RefundRefused | TenderCredited


class RefundAsk(BaseModel):
    """A refund asked for by the event `cause_id`: of `amount`, or of everything still charged when None."""

    model_config = ConfigDict(frozen=True)

    cause_id: uuid.UUID
    order_id: str
    amount: Money | None = None
    store_credit_if_unavailable: bool = True
    """False: a tender whose gateway stays unavailable is reported (retryable) for the asker to retry later."""
    short_lines: list[ShortLine] | None = None
    """The lines an `InventoryShortage` could not reserve: the refund ends the order (`OrderFailed`)."""


class PaymentState(BaseModel):
    """What payments remembers per order id: the payment's outcome and charges, and the refunds made of them."""

    outcome: Literal["processed", "failed"] | None = None  # None until the OrderCreated is decided
    order_event_id: str | None = None
    charges: list[TenderCharge] = []
    returned_minor: dict[int, int] = {}  # per charge index: given back so far, by refund or store credit
    refunds_done: list[uuid.UUID] = []  # the events whose refunds were carried out
    refunds_waiting: list[RefundAsk] = []  # asked before the payment was decided

    def refundable_minor(self, index: int) -> int:
        """What stays charged on charge `index`: its amount less what was given back of it."""
        return self.charges[index].amount.amount_minor - self.returned_minor.get(index, 0)


@dataclass(frozen=True)
class Decided:
    state: PaymentState
    emits: list[Emit]


def charge_key(order: OrderCreated, index: int) -> str:
    return f"{order.event_id}/charge/{index}"


def void_key(order: OrderCreated, index: int) -> str:
    return f"{order.event_id}/void/{index}"


def decide(
    state: PaymentState | None, order: OrderCreated, results: list[CallResult], now: datetime.datetime
) -> GatewayCall | Decided:
    """The next gateway call for `order` given the answers to the calls so far, or the outcome once none is left."""
    if state is not None and state.outcome is not None:
        return Decided(state, [])  # decided before: a replayed OrderCreated changes nothing
    undecided = state or PaymentState()  # may hold refunds asked before the order came
    mismatch = tender_mismatch(order)
    if mismatch is not None:
        return payment_failed(undecided, order, mismatch, TENDERS_MISMATCH, retryable=False, now=now)
    call = next_call(order, results)
    if call is not None:
        return call
    return outcome(undecided, order, results, now)


def tender_mismatch(order: OrderCreated) -> str | None:
    """Why the tenders cannot pay the order, if they cannot: then nothing is charged."""
    paid = sum(tender.amount.amount_minor for tender in order.tenders)
    currencies = {tender.amount.currency for tender in order.tenders}
    if paid == order.total.amount_minor and currencies == {order.total.currency}:
        return None
    return (
        f"tenders pay {paid} in {', '.join(sorted(currencies)) or 'no currency'}, "
        f"the order totals {order.total.amount_minor} {order.total.currency}"
    )


def next_call(order: OrderCreated, results: list[CallResult]) -> GatewayCall | None:
    charged = {result.index: result.transaction_id for result in results if isinstance(result, TenderCharged)}
    if not any(isinstance(result, TenderRefused) for result in results):
        index = len(charged)
        if index < len(order.tenders):
            return ChargeTender(index, order.tenders[index], charge_key(order, index))
        return None
    voided = {result.index for result in results if isinstance(result, ChargeVoided)}
    for index in sorted(charged, reverse=True):  # compensate newest first, like a saga's undo log
        if index not in voided:
            return VoidCharge(index, charged[index], void_key(order, index))
    return None


def outcome(state: PaymentState, order: OrderCreated, results: list[CallResult], now: datetime.datetime) -> Decided:
    refusal = next((result for result in results if isinstance(result, TenderRefused)), None)
    if refusal is not None:
        reason, code = refusal_reason(order, refusal), refusal_code(refusal)
        return payment_failed(state, order, reason, code, refusal.gateway_unavailable, now)
    charges = [
        TenderCharge(
            method=order.tenders[result.index].method,
            amount=order.tenders[result.index].amount,
            transaction_id=result.transaction_id,
        )
        for result in results
        if isinstance(result, TenderCharged)
    ]
    processed = PaymentProcessed(
        event_id=derive_event_id(order.event_id, "payment-processed"),
        order_id=order.order_id,
        occurred_at=now,
        amount=order.total,
        charges=charges,
        lines=paid_lines(order),
    )
    return Decided(
        state.model_copy(update={"outcome": "processed", "order_event_id": str(order.event_id), "charges": charges}),
        [Emit(PAYMENTS_EVENTS, order.order_id, processed)],
    )


def payment_failed(
    state: PaymentState, order: OrderCreated, reason: str, code: str, retryable: bool, now: datetime.datetime
) -> Decided:
    failed = PaymentFailed(
        event_id=derive_event_id(order.event_id, "payment-failed"),
        order_id=order.order_id,
        occurred_at=now,
        amount=order.total,
        reason=reason,
        retryable=retryable,
        code=code,
    )
    told = OrderFailed(
        event_id=derive_event_id(failed.event_id, "order-failed"),
        order_id=order.order_id,
        occurred_at=now,
        reason=OrderFailureReason.PAYMENT_FAILED,
        code=code,
        detail=cut(reason, DETAIL_LENGTH),
        caused_by=failed.event_id,
    )
    return Decided(
        state.model_copy(update={"outcome": "failed", "order_event_id": str(order.event_id)}),
        [Emit(PAYMENTS_EVENTS, order.order_id, failed), Emit(ORDERS_EVENTS, order.order_id, told)],
    )


def cut(text: str, length: int) -> str:
    """`text` if it fits in `length` characters, else its start ending with an ellipsis."""
    return text if len(text) <= length else text[: length - 1] + "…"


def refusal_reason(order: OrderCreated, refusal: TenderRefused) -> str:
    tender = order.tenders[refusal.index]
    named = f"tender {refusal.index + 1} of {len(order.tenders)} ({tender.method.value})"
    if refusal.gateway_unavailable:
        return f"payment gateway unavailable for {named}: {refusal.reason}"
    return f"{named} declined: {refusal.reason}"


def refusal_code(refusal: TenderRefused) -> str:
    if refusal.gateway_unavailable:
        return GATEWAY_UNAVAILABLE
    return refusal.code or DECLINED


def paid_lines(order: OrderCreated) -> list[StockLine]:
    """The order's lines summed per SKU, in order of first appearance."""
    quantities: Counter[str] = Counter()
    for line in order.lines:
        quantities[line.sku] += line.quantity
    return [StockLine(sku=sku, quantity=quantity) for sku, quantity in quantities.items()]


def refund_asked(record: RefundPayment | InventoryShortage) -> RefundAsk:
    """What `record` asks to refund: a shortage asks for everything still charged, the order cannot be filled."""
    if isinstance(record, InventoryShortage):
        return RefundAsk(cause_id=record.event_id, order_id=record.order_id, short_lines=record.short_lines)
    return RefundAsk(
        cause_id=record.event_id,
        order_id=record.order_id,
        amount=record.amount,
        store_credit_if_unavailable=record.store_credit_if_unavailable,
    )


def refund_key(ask: RefundAsk, index: int) -> str:
    return f"{ask.cause_id}/refund/{index}"


def credit_key(ask: RefundAsk, index: int) -> str:
    return f"{ask.cause_id}/credit/{index}"


@dataclass(frozen=True)
class RefundPart:
    """What one charge gives back of a refund."""

    index: int
    amount: Money


def decide_refund(
    state: PaymentState | None, ask: RefundAsk, results: list[RefundCallResult], now: datetime.datetime
) -> RefundCall | Decided:
    """The next gateway call for the refund `ask` given the answers to the calls so far, or the outcome once none
    is left."""
    current = state or PaymentState()
    if ask.cause_id in current.refunds_done:
        return Decided(current, [])  # a redelivered request or a replayed shortage: refunded already
    if current.outcome is None:
        return Decided(waiting(current, ask), [])
    if ask.amount is not None:
        refusal = refund_refusal(current, ask.amount)
        if refusal is not None:
            return Decided(carried_out(current, ask, []), [refund_failed(ask, ask.amount, refusal, now)])
    parts = refund_parts(current, ask)
    call = next_refund_call(current, ask, parts, results)
    if call is not None:
        return call
    return refund_outcome(current, ask, parts, results, now)


def waiting(state: PaymentState, ask: RefundAsk) -> PaymentState:
    if any(waiter.cause_id == ask.cause_id for waiter in state.refunds_waiting):
        return state  # a redelivered request, already waiting
    return state.model_copy(update={"refunds_waiting": [*state.refunds_waiting, ask]})


def refund_refusal(state: PaymentState, amount: Money) -> str | None:
    """Why none of `amount` can be refunded, if none can."""
    if state.outcome == "failed":
        return "the payment failed, nothing was charged"
    if amount.amount_minor <= 0:
        return f"a refund must be of a positive amount, not {amount.amount_minor}"
    paid_in = {charge.amount.currency for charge in state.charges}
    if paid_in != {amount.currency}:
        return f"refund asked in {amount.currency}, the order was paid in {', '.join(sorted(paid_in))}"
    return None


def refund_parts(state: PaymentState, ask: RefundAsk) -> list[RefundPart]:
    """What each charge gives back to cover the refund, newest charge first; never more than stays charged."""
    left = asked_minor(state, ask)
    parts = []
    for index in reversed(range(len(state.charges))):
        given = min(left, state.refundable_minor(index))
        if given > 0:
            currency = state.charges[index].amount.currency
            parts.append(RefundPart(index, Money(amount_minor=given, currency=currency)))
            left -= given
    return parts


def asked_minor(state: PaymentState, ask: RefundAsk) -> int:
    if ask.amount is not None:
        return ask.amount.amount_minor
    return sum(state.refundable_minor(index) for index in range(len(state.charges)))


def next_refund_call(
    state: PaymentState, ask: RefundAsk, parts: list[RefundPart], results: list[RefundCallResult]
) -> RefundCall | None:
    given = {result.index for result in results if isinstance(result, TenderRefunded | TenderCredited)}
    refused = {result.index: result for result in results if isinstance(result, RefundRefused)}
    for part in parts:
        if part.index in given:
            continue
        if part.index in refused:
            if refused[part.index].gateway_unavailable and not ask.store_credit_if_unavailable:
                continue  # left for the asker to ask again later
            return CreditTender(part.index, part.amount, credit_key(ask, part.index))
        charged = state.charges[part.index]
        return RefundTender(part.index, charged.transaction_id, part.amount, refund_key(ask, part.index))
    return None


def refund_outcome(
    state: PaymentState,
    ask: RefundAsk,
    parts: list[RefundPart],
    results: list[RefundCallResult],
    now: datetime.datetime,
) -> Decided:
    """One `PaymentRefunded` per charge that gave back, a retryable `PaymentRefundFailed` for what an unavailable
    gateway kept, and a `PaymentRefundFailed` for what was asked beyond what stayed charged; after a shortage's
    refund, the order's end (`OrderFailed`)."""
    given = {result.index: result for result in results if isinstance(result, TenderRefunded | TenderCredited)}
    made = [part for part in parts if part.index in given]
    emits = [Emit(PAYMENTS_EVENTS, ask.order_id, refunded(state, ask, part, given[part.index], now)) for part in made]
    kept = [part for part in parts if part.index not in given]
    if kept:
        unavailable = next(r for r in results if isinstance(r, RefundRefused) and r.index == kept[0].index)
        amount = Money(amount_minor=sum(part.amount.amount_minor for part in kept), currency=kept[0].amount.currency)
        emits.append(refund_failed(ask, amount, unavailable.reason, now, retryable=True))
    covered = sum(part.amount.amount_minor for part in parts)
    if ask.amount is not None and covered < ask.amount.amount_minor:
        missing = ask.amount.model_copy(update={"amount_minor": ask.amount.amount_minor - covered})
        reason = f"only {covered} of the {ask.amount.amount_minor} {ask.amount.currency} asked stayed charged"
        emits.append(refund_failed(ask, missing, reason, now))
    after = carried_out(state, ask, made)
    if ask.short_lines is not None and after.outcome == "processed":
        emits.append(Emit(ORDERS_EVENTS, ask.order_id, out_of_stock(after, ask, ask.short_lines, now)))
    return Decided(after, emits)


def out_of_stock(
    state: PaymentState, ask: RefundAsk, short_lines: list[ShortLine], now: datetime.datetime
) -> OrderFailed:
    """The order's end once its shortage was refunded: what went back of it, in all, as refunds and store credit."""
    shortages = ", ".join(f"{line.sku} ({line.available} of {line.requested} available)" for line in short_lines)
    refunded = None
    if state.charges:
        returned = sum(state.returned_minor.values())
        refunded = Money(amount_minor=returned, currency=state.charges[0].amount.currency)
    return OrderFailed(
        event_id=derive_event_id(ask.cause_id, "order-failed"),
        order_id=ask.order_id,
        occurred_at=now,
        reason=OrderFailureReason.OUT_OF_STOCK,
        detail=cut(f"out of stock: {shortages}", DETAIL_LENGTH),
        refunded=refunded,
        caused_by=ask.cause_id,
    )


def refunded(
    state: PaymentState,
    ask: RefundAsk,
    part: RefundPart,
    answer: TenderRefunded | TenderCredited,
    now: datetime.datetime,
) -> PaymentRefunded:
    method = state.charges[part.index].method if isinstance(answer, TenderRefunded) else PaymentMethod.STORE_CREDIT
    return PaymentRefunded(
        event_id=derive_event_id(ask.cause_id, f"refunded/{part.index}"),
        order_id=ask.order_id,
        occurred_at=now,
        amount=part.amount,
        method=method,
        transaction_id=answer.transaction_id,
        request_id=str(ask.cause_id),
    )


def refund_failed(ask: RefundAsk, amount: Money, reason: str, now: datetime.datetime, retryable: bool = False) -> Emit:
    failed = PaymentRefundFailed(
        event_id=derive_event_id(ask.cause_id, "refund-unavailable" if retryable else "refund-failed"),
        order_id=ask.order_id,
        occurred_at=now,
        amount=amount,
        reason=reason,
        request_id=str(ask.cause_id),
        retryable=retryable,
    )
    return Emit(PAYMENTS_EVENTS, ask.order_id, failed)


def carried_out(state: PaymentState, ask: RefundAsk, parts: list[RefundPart]) -> PaymentState:
    returned = dict(state.returned_minor)
    for part in parts:
        returned[part.index] = returned.get(part.index, 0) + part.amount.amount_minor
    return state.model_copy(
        update={
            "returned_minor": returned,
            "refunds_done": [*state.refunds_done, ask.cause_id],
            "refunds_waiting": [waiter for waiter in state.refunds_waiting if waiter.cause_id != ask.cause_id],
        }
    )


def perform(gateway: PaymentGateway, order: OrderCreated, call: GatewayCall, retry: RetryPolicy) -> CallResult:
    """Make one gateway call, retrying transient failures; a charge that keeps failing counts as refused."""
    if isinstance(call, VoidCharge):
        # A void that keeps failing propagates: RecordStage re-runs the whole message (its keys make that
        # harmless) and at last dead-letters it, to be redriven once the gateway is back.
        retrying(lambda: gateway.void(call.idempotency_key, call.transaction_id), retry)
        return ChargeVoided(call.index)
    tender = call.tender
    try:
        answer: ChargeResult = retrying(
            lambda: gateway.charge(
                call.idempotency_key, tender.method, tender.token, tender.amount, order_id=order.order_id
            ),
            retry,
        )
    except TransientError as error:
        return TenderRefused(call.index, str(error), gateway_unavailable=True)
    if answer.approved:
        return TenderCharged(call.index, answer.transaction_id)
    return TenderRefused(call.index, answer.reason, code=answer.code)


def perform_refund(gateway: PaymentGateway, ask: RefundAsk, call: RefundCall, retry: RetryPolicy) -> RefundCallResult:
    """Make one refund call, retrying transient failures; a refund that keeps failing counts as refused."""
    if isinstance(call, CreditTender):
        # Store credit is the last resort: a credit that keeps failing propagates, for RecordStage to re-run
        # the whole message (its keys make that harmless) and at last dead-letter it.
        credit_id: str = retrying(lambda: gateway.credit(call.idempotency_key, ask.order_id, call.amount), retry)
        return TenderCredited(call.index, credit_id)
    try:
        answer: RefundResult = retrying(
            lambda: gateway.refund(call.idempotency_key, call.transaction_id, call.amount), retry
        )
    except TransientError as error:
        return RefundRefused(call.index, f"payment gateway unavailable: {error}", gateway_unavailable=True)
    if answer.approved:
        return TenderRefunded(call.index, answer.transaction_id)
    return RefundRefused(call.index, answer.reason)


PAYMENT = StateSlot("payment", PaymentState)


def handle(record: AvroRecord, state: State, gateway: PaymentGateway, retry: RetryPolicy = GATEWAY_RETRY) -> list[Emit]:
    known = before = PAYMENT.load(state)
    if isinstance(record, OrderCreated):
        charged = charge(gateway, known, record, retry)
        known, emits = charged.state, charged.emits
        asks = known.refunds_waiting  # asked before the payment was decided: their turn has come
    elif isinstance(record, RefundPayment | InventoryShortage):
        emits, asks = [], [refund_asked(record)]
    else:
        return []  # the order's other events are not for payments
    for ask in asks:
        refunds = refund(gateway, known, ask, retry)
        known, emits = refunds.state, [*emits, *refunds.emits]
    PAYMENT.update(state, before, known)
    return emits


def charge(gateway: PaymentGateway, known: PaymentState | None, order: OrderCreated, retry: RetryPolicy) -> Decided:
    results: list[CallResult] = []
    while not isinstance(step := decide(known, order, results, utc_now()), Decided):
        results.append(perform(gateway, order, step, retry))
    return step


def refund(gateway: PaymentGateway, known: PaymentState | None, ask: RefundAsk, retry: RetryPolicy) -> Decided:
    results: list[RefundCallResult] = []
    while not isinstance(step := decide_refund(known, ask, results, utc_now()), Decided):
        results.append(perform_refund(gateway, ask, step, retry))
    return step


def _handler(settings: Settings, registry: SchemaRegistryClient) -> Handler:
    gateway = SimulatedPaymentGateway(default_ledger_path(settings), deferred=True)
    return with_message(functools.partial(handle, gateway=gateway))


SPEC = ProcessorSpec(
    name="payments",
    group=PROCESSOR,
    # Merged, so that one per-order state holds the payment and the refunds made of it.
    streams=(Stream(INPUTS, _handler, handles=(OrderCreated, RefundPayment, InventoryShortage)),),
    outputs=(PAYMENTS_EVENTS, ORDERS_EVENTS),
    state="order id: outcome, charges, what was given back, refunds waiting for the payment",
)
