"""Payments, the second step of the choreography: an `OrderCreated` is charged through the payment gateway and
becomes `PaymentProcessed`, or `PaymentFailed` with nothing left charged.

Charging several tenders is a small saga: tenders are charged in order, and when one is refused the ones
already charged are voided, newest first. The saga is the pure function `decide`, which tells from the answers
so far which gateway call comes next or what the outcome is; `handle` makes the calls. Every call's
idempotency key derives from the `OrderCreated` event id, so a re-run after a crash repeats the same calls and
the gateway answers them from its records, without a second charge.
"""

from __future__ import annotations

import datetime
import functools
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import BaseModel
from quixstreams import Application, State

from processors.adapters.payment_gateway import (
    ChargeResult,
    PaymentGateway,
    SimulatedPaymentGateway,
    default_ledger_path,
)
from processors.runtime.app import app_topic
from processors.runtime.records import Emit, derive_event_id, utc_now
from processors.runtime.stage import RecordStage, RetryPolicy, TransientError, publish, retrying
from processors.runtime.state import StateSlot
from schemas.models import (
    AvroRecord,
    OrderCreated,
    PaymentFailed,
    PaymentProcessed,
    StockLine,
    Tender,
    TenderCharge,
)
from topology.settings import Settings
from topology.topics import ORDERS_EVENTS, PAYMENTS_EVENTS

PROCESSOR = "oms.payments"

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


@dataclass(frozen=True)
class ChargeVoided:
    index: int


CallResult = TenderCharged | TenderRefused | ChargeVoided


class PaymentState(BaseModel):
    """What payments remembers per order id: that it decided, and what stays charged (for refunds)."""

    outcome: Literal["processed", "failed"]
    order_event_id: str
    charges: list[TenderCharge] = []


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
    if state is not None:
        return Decided(state, [])  # decided before: a replayed OrderCreated changes nothing
    mismatch = tender_mismatch(order)
    if mismatch is not None:
        return payment_failed(order, mismatch, retryable=False, now=now)
    call = next_call(order, results)
    if call is not None:
        return call
    return outcome(order, results, now)


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


def outcome(order: OrderCreated, results: list[CallResult], now: datetime.datetime) -> Decided:
    refusal = next((result for result in results if isinstance(result, TenderRefused)), None)
    if refusal is not None:
        return payment_failed(order, refusal_reason(order, refusal), refusal.gateway_unavailable, now)
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
        PaymentState(outcome="processed", order_event_id=str(order.event_id), charges=charges),
        [Emit(PAYMENTS_EVENTS, order.order_id, processed)],
    )


def payment_failed(order: OrderCreated, reason: str, retryable: bool, now: datetime.datetime) -> Decided:
    failed = PaymentFailed(
        event_id=derive_event_id(order.event_id, "payment-failed"),
        order_id=order.order_id,
        occurred_at=now,
        amount=order.total,
        reason=reason,
        retryable=retryable,
    )
    return Decided(
        PaymentState(outcome="failed", order_event_id=str(order.event_id)),
        [Emit(PAYMENTS_EVENTS, order.order_id, failed)],
    )


def refusal_reason(order: OrderCreated, refusal: TenderRefused) -> str:
    tender = order.tenders[refusal.index]
    named = f"tender {refusal.index + 1} of {len(order.tenders)} ({tender.method.value})"
    if refusal.gateway_unavailable:
        return f"payment gateway unavailable for {named}: {refusal.reason}"
    return f"{named} declined: {refusal.reason}"


def paid_lines(order: OrderCreated) -> list[StockLine]:
    """The order's lines summed per SKU, in order of first appearance."""
    quantities: Counter[str] = Counter()
    for line in order.lines:
        quantities[line.sku] += line.quantity
    return [StockLine(sku=sku, quantity=quantity) for sku, quantity in quantities.items()]


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
    return TenderRefused(call.index, answer.reason)


PAYMENT = StateSlot("payment", PaymentState)


def handle(record: AvroRecord, state: State, gateway: PaymentGateway, retry: RetryPolicy = GATEWAY_RETRY) -> list[Emit]:
    if not isinstance(record, OrderCreated):
        return []  # the order's other events are not for payments
    known = PAYMENT.load(state)
    results: list[CallResult] = []
    while not isinstance(step := decide(known, record, results, utc_now()), Decided):
        results.append(perform(gateway, record, step, retry))
    PAYMENT.save(state, step.state)
    return step.emits


def build(app: Application, settings: Settings, registry: SchemaRegistryClient) -> None:
    events = app_topic(app, ORDERS_EVENTS, settings)
    outputs = [app_topic(app, topic, settings) for topic in (PAYMENTS_EVENTS, ORDERS_EVENTS.dead_letter_topic)]
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    stage = RecordStage(PROCESSOR, events.name, registry, functools.partial(handle, gateway=gateway))
    publish(app.dataframe(events).apply(stage, stateful=True, expand=True, metadata=True), outputs)
