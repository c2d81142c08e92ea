"""Inventory: stock is state keyed by SKU; an order is reserved line by line there and decided once per order.

As in Confluent's orders demo, reservation is a stream-processing problem:

    PaymentProcessed ──(one request per SKU)──▶ by SKU ──▶ reserve ──▶ by order ──▶ decide once
    ReleaseInventory ──(one request per SKU)──▶ by SKU ──▶ release ──▶ by order ──▶ InventoryReleased
    StockLevel (operator) ─────────────────────▶ by SKU ──▶ set

An order short of any line gets `InventoryShortage` naming the short lines, and a `ReleaseInventory` for the
lines that were reserved, so no stock stays reserved for it. Stock never goes negative: a line is reserved
only from what is available. After every change the SKU's level is reported on the stock topic, marked as
ours (`ce_source`), so that `oms stock show` sees live levels and the report is not mistaken for an operator
setting when it comes back around.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Literal

from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import BaseModel
from quixstreams import Application, State
from quixstreams.dataframe import StreamingDataFrame

from processors.runtime.app import app_topic
from processors.runtime.cloudevents import header
from processors.runtime.decoding import Decode, Decoded, guarded, split
from processors.runtime.records import Emit, Outgoing, derive_event_id, utc_now
from processors.runtime.stage import Encoder
from schemas.models import (
    InventoryReleased,
    InventoryReserved,
    InventoryShortage,
    PaymentProcessed,
    ReleaseInventory,
    ShortLine,
    StockLevel,
    StockLine,
)
from topology.settings import Settings
from topology.topics import INVENTORY_COMMANDS, INVENTORY_EVENTS, INVENTORY_STOCK, PAYMENTS_EVENTS

PROCESSOR = "oms.inventory"

RequestKind = Literal["reserve", "release"]


class LineRequest(BaseModel):
    """Reserve or release one SKU's units for an order; one of `line_count` parts of request `request_id`."""

    request_id: str
    kind: RequestKind
    order_id: str
    sku: str
    quantity: int
    line_count: int
    reason: str = ""


class LineResult(BaseModel):
    request_id: str
    kind: RequestKind
    order_id: str
    sku: str
    requested: int
    granted: int
    available: int
    line_count: int
    reason: str = ""


class StockSetting(BaseModel):
    event_id: str
    sku: str
    available: int


class SkuStock(BaseModel):
    """What the SKU's state holds that matters to one request: its free units and the order's holding."""

    available: int
    held_by_order: int


class PendingRequest(BaseModel):
    results: list[LineResult]


# --- pure decisions ------------------------------------------------------------------------------


def requests_for(
    request_id: str, kind: RequestKind, order_id: str, lines: Iterable[StockLine], reason: str = ""
) -> list[LineRequest]:
    """One request per SKU, quantities of repeated SKUs summed."""
    quantities: dict[str, int] = {}
    for line in lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    return [
        LineRequest(
            request_id=request_id,
            kind=kind,
            order_id=order_id,
            sku=sku,
            quantity=quantity,
            line_count=len(quantities),
            reason=reason,
        )
        for sku, quantity in sorted(quantities.items())
    ]


def apply_request(stock: SkuStock, request: LineRequest) -> tuple[SkuStock, LineResult]:
    """Reserve from what is free (all or nothing per line), or give back at most what the order holds."""
    if request.kind == "reserve":
        if stock.held_by_order:
            granted = stock.held_by_order  # this order's line was reserved before: a duplicate
            after = stock
        elif stock.available >= request.quantity:
            granted = request.quantity
            after = SkuStock(available=stock.available - granted, held_by_order=granted)
        else:
            granted = 0
            after = stock
    else:
        granted = min(request.quantity, stock.held_by_order)
        after = SkuStock(available=stock.available + granted, held_by_order=stock.held_by_order - granted)
    result = LineResult(
        request_id=request.request_id,
        kind=request.kind,
        order_id=request.order_id,
        sku=request.sku,
        requested=request.quantity,
        granted=granted,
        available=after.available,
        line_count=request.line_count,
        reason=request.reason,
    )
    return after, result


def decide_order(results: list[LineResult], now: datetime.datetime) -> list[Emit]:
    """Once every line of a request has a result: the order's one outcome."""
    first = results[0]
    order_id, request_id = first.order_id, first.request_id
    if first.kind == "release":
        released = InventoryReleased(
            event_id=derive_event_id(request_id, "released"),
            order_id=order_id,
            occurred_at=now,
            lines=[StockLine(sku=r.sku, quantity=r.granted) for r in results if r.granted],
        )
        return [Emit(INVENTORY_EVENTS, order_id, released)]
    short = [r for r in results if r.granted < r.requested]
    if not short:
        reserved = InventoryReserved(
            event_id=derive_event_id(request_id, "reserved"),
            order_id=order_id,
            occurred_at=now,
            lines=[StockLine(sku=r.sku, quantity=r.granted) for r in results],
        )
        return [Emit(INVENTORY_EVENTS, order_id, reserved)]
    shortage = InventoryShortage(
        event_id=derive_event_id(request_id, "shortage"),
        order_id=order_id,
        occurred_at=now,
        short_lines=[ShortLine(sku=r.sku, requested=r.requested, available=r.available) for r in short],
    )
    emits = [Emit(INVENTORY_EVENTS, order_id, shortage)]
    partial = [StockLine(sku=r.sku, quantity=r.granted) for r in results if r.granted]
    if partial:
        release = ReleaseInventory(
            event_id=derive_event_id(request_id, "release-after-shortage"),
            order_id=order_id,
            occurred_at=now,
            lines=partial,
            reason=f"shortage of {', '.join(r.sku for r in short)}",
        )
        emits.append(Emit(INVENTORY_COMMANDS, order_id, release))
    return emits


def stock_report(sku: str, available: int, cause: str, now: datetime.datetime) -> StockLevel:
    return StockLevel(event_id=derive_event_id(cause, f"stock/{sku}"), sku=sku, available=available, occurred_at=now)


# --- steps over state ----------------------------------------------------------------------------


def request_reservation(decoded: Decoded, state: State) -> list[dict[str, object]]:
    """Per order: a PaymentProcessed becomes one reservation request per SKU, once."""
    payment = decoded.record
    if not isinstance(payment, PaymentProcessed) or state.get("reservation_requested"):
        return []
    if not payment.lines:
        raise ValueError("PaymentProcessed carries no lines to reserve")
    requests = requests_for(str(payment.event_id), "reserve", payment.order_id, payment.lines)
    state.set("reservation_requested", str(payment.event_id))
    return [request.model_dump() for request in requests]


def request_release(decoded: Decoded, state: State) -> list[dict[str, object]]:
    """Per order: each ReleaseInventory command becomes one release request per SKU, once."""
    command = decoded.record
    if not isinstance(command, ReleaseInventory) or state.get(f"release:{command.event_id}"):
        return []
    if not command.lines:
        raise ValueError("ReleaseInventory names no lines to release")
    requests = requests_for(str(command.event_id), "release", command.order_id, command.lines, command.reason)
    state.set(f"release:{command.event_id}", True)
    return [request.model_dump() for request in requests]


def operator_setting(decoded: Decoded | Outgoing) -> list[dict[str, object]]:
    """An operator's stock level; our own reports come back on the same topic and are skipped."""
    if isinstance(decoded, Outgoing):
        return []
    level = decoded.record
    if not isinstance(level, StockLevel) or header(decoded.received.headers, "ce_source") == PROCESSOR:
        return []
    return [StockSetting(event_id=str(level.event_id), sku=level.sku, available=level.available).model_dump()]


class SkuStep:
    """Per SKU: set, reserve or release stock; report the new level and each line's result."""

    def __init__(self, encode: Encoder) -> None:
        self._encode = encode

    def __call__(self, message: dict[str, object], state: State) -> list[dict[str, object] | Outgoing]:
        now = utc_now()
        if "kind" not in message:
            setting = StockSetting.model_validate(message)
            state.set("available", setting.available)
            return [self._report(setting.sku, setting.available, setting.event_id, now)]
        request = LineRequest.model_validate(message)
        holding_key = f"held:{request.order_id}"
        before = SkuStock(available=state.get("available", 0), held_by_order=state.get(holding_key, 0))
        after, result = apply_request(before, request)
        state.set("available", after.available)
        if after.held_by_order:
            state.set(holding_key, after.held_by_order)
        else:
            state.delete(holding_key)
        outputs: list[dict[str, object] | Outgoing] = [result.model_dump()]
        if after != before:
            outputs.append(self._report(request.sku, after.available, f"{request.request_id}/{request.kind}", now))
        return outputs

    def _report(self, sku: str, available: int, cause: str, now: datetime.datetime) -> Outgoing:
        return self._encode(Emit(INVENTORY_STOCK, sku, stock_report(sku, available, cause, now)))


class OrderStep:
    """Per order: collect a request's line results and decide once when all are in."""

    def __init__(self, encode: Encoder) -> None:
        self._encode = encode

    def __call__(self, message: dict[str, object], state: State) -> list[Outgoing]:
        result = LineResult.model_validate(message)
        decided_key, pending_key = f"decided:{result.request_id}", f"pending:{result.request_id}"
        if state.get(decided_key):
            return []
        stored = state.get(pending_key)
        pending = PendingRequest.model_validate(stored) if stored else PendingRequest(results=[])
        if any(r.sku == result.sku for r in pending.results):
            return []
        results = [*pending.results, result]
        if len(results) < result.line_count:
            state.set(pending_key, PendingRequest(results=results).model_dump())
            return []
        state.delete(pending_key)
        state.set(decided_key, True)
        return [self._encode(emit) for emit in decide_order(sorted(results, key=lambda r: r.sku), utc_now())]


# --- wiring --------------------------------------------------------------------------------------


def regroup(sdf: StreamingDataFrame, field: str, name: str) -> StreamingDataFrame:
    """Re-key by a field of the internal message, as raw bytes like the stock topic's keys, so they meet."""
    return sdf.group_by(
        lambda value: str(value[field]).encode(), name=name, key_serializer="bytes", key_deserializer="bytes"
    )


def build(app: Application, settings: Settings, registry: SchemaRegistryClient) -> None:
    payments, commands, stock = (
        app_topic(app, spec, settings) for spec in (PAYMENTS_EVENTS, INVENTORY_COMMANDS, INVENTORY_STOCK)
    )
    outputs = [
        app_topic(app, spec, settings)
        for spec in (
            INVENTORY_EVENTS,
            INVENTORY_COMMANDS,
            INVENTORY_STOCK,
            PAYMENTS_EVENTS.dead_letter_topic,
            INVENTORY_COMMANDS.dead_letter_topic,
            INVENTORY_STOCK.dead_letter_topic,
        )
    ]
    decode = Decode(PROCESSOR, registry)
    encode = Encoder(registry, PROCESSOR)

    # Payments: request a reservation per SKU, once per order.
    reservations = split(app.dataframe(payments).apply(decode, metadata=True), outputs)
    reservations = split(
        reservations.apply(guarded(PROCESSOR, request_reservation), stateful=True, expand=True), outputs
    )
    reservations = regroup(reservations, "sku", "reserve-by-sku")

    # Release commands (from a shortage, or a cancellation): release per SKU, once per command.
    releases = split(app.dataframe(commands).apply(decode, metadata=True), outputs)
    releases = split(releases.apply(guarded(PROCESSOR, request_release), stateful=True, expand=True), outputs)
    releases = regroup(releases, "sku", "release-by-sku")

    # Operator stock levels, already keyed by SKU.
    settings_in = split(app.dataframe(stock).apply(decode, metadata=True), outputs)
    settings_in = settings_in.apply(operator_setting, expand=True)

    # Per SKU: apply each setting and request to the stock; results go on to their order.
    per_sku = settings_in.concat(reservations).concat(releases)
    results = split(per_sku.apply(SkuStep(encode), stateful=True, expand=True), outputs)
    results = regroup(results, "order_id", "results-by-order")

    # Per order: decide once when every line is in.
    split(results.apply(OrderStep(encode), stateful=True, expand=True), outputs)
