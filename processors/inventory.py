"""Inventory's order side: an order's lines are reserved SKU by SKU, and the order is decided once.

As in Confluent's orders demo, reservation is a stream-processing problem, in two processors:

    PaymentProcessed ─┐                                    ┌─▶ InventoryReserved
                      ├─▶ StockRequest per SKU ─▶ [stock] ─┤   InventoryShortage (+ ReleaseInventory)
    ReleaseInventory ─┘    (keyed by SKU)       StockResult └─▶ InventoryReleased
                                              (keyed by order)

This one is keyed by order: it turns payments and release commands into one request per SKU, once, and
collects the SKUs' answers. `processors.stock`, keyed by SKU, holds the stock. An order short of any line
gets `InventoryShortage` naming the short lines and a `ReleaseInventory` for the lines that were reserved,
so that no stock stays reserved for it.

The two sides are separate processes: Quix Streams reads merged topics in timestamp order and waits on any
partition that has records it cannot yet read, which within one process includes its own uncommitted
output, so one process doing both sides advanced only one hop per commit.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from pydantic import BaseModel
from quixstreams import State

from processors.runtime.records import Emit, derive_event_id, utc_now
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import with_message
from processors.runtime.state import StateSlot, ValueSlot
from schemas.models import (
    AvroRecord,
    Event,
    InventoryReleased,
    InventoryReserved,
    InventoryShortage,
    PaymentProcessed,
    ReleaseInventory,
    ShortLine,
    StockLine,
    StockRequest,
    StockRequestKind,
    StockResult,
)
from topology.topics import INVENTORY_COMMANDS, INVENTORY_EVENTS, PAYMENTS_EVENTS, STOCK_REQUESTS, STOCK_RESULTS

PROCESSOR = "oms.inventory"


class PendingRequest(BaseModel):
    results: list[StockResult]


# --- pure decisions ------------------------------------------------------------------------------


def requests_for(
    cause: Event, kind: StockRequestKind, order_id: str, lines: Iterable[StockLine], now: datetime.datetime
) -> list[Emit]:
    """One request per SKU, quantities of repeated SKUs summed, all part of request `cause.event_id`."""
    request_id = str(cause.event_id)
    reason = getattr(cause, "reason", "")
    quantities: dict[str, int] = {}
    for line in lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    return [
        Emit(
            STOCK_REQUESTS,
            sku,
            StockRequest(
                event_id=derive_event_id(request_id, f"stock-request/{sku}"),
                order_id=order_id,
                occurred_at=now,
                request_id=request_id,
                kind=kind,
                sku=sku,
                quantity=quantity,
                line_count=len(quantities),
                reason=reason,
            ),
        )
        for sku, quantity in sorted(quantities.items())
    ]


def decide_order(results: list[StockResult], now: datetime.datetime) -> list[Emit]:
    """Once every SKU of a request has answered: the order's one outcome."""
    first = results[0]
    order_id, request_id = first.order_id, first.request_id
    if first.kind is StockRequestKind.RELEASE:
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


# --- steps over state, one per input topic -------------------------------------------------------

# Per order: the event whose reservation was asked; per release command, that it was asked; per request,
# the answers so far, and that it was decided.
RESERVATION_REQUESTED = ValueSlot("reservation_requested", "")
RELEASE_REQUESTED = ValueSlot("release", False)
PENDING = StateSlot("pending", PendingRequest)
DECIDED = ValueSlot("decided", False)


def request_reservation(record: AvroRecord, state: State) -> list[Emit]:
    """Per order: a PaymentProcessed becomes one reservation request per SKU, once."""
    if not isinstance(record, PaymentProcessed) or RESERVATION_REQUESTED.load(state):
        return []
    if not record.lines:
        raise ValueError("PaymentProcessed carries no lines to reserve")
    emits = requests_for(record, StockRequestKind.RESERVE, record.order_id, record.lines, utc_now())
    RESERVATION_REQUESTED.save(state, str(record.event_id))
    return emits


def request_release(record: AvroRecord, state: State) -> list[Emit]:
    """Per order: each ReleaseInventory command becomes one release request per SKU, once."""
    if not isinstance(record, ReleaseInventory) or RELEASE_REQUESTED.entry(record.event_id).load(state):
        return []
    if not record.lines:
        raise ValueError("ReleaseInventory names no lines to release")
    emits = requests_for(record, StockRequestKind.RELEASE, record.order_id, record.lines, utc_now())
    RELEASE_REQUESTED.entry(record.event_id).save(state, True)
    return emits


def collect_result(record: AvroRecord, state: State) -> list[Emit]:
    """Per order: gather a request's answers; decide once when every SKU has answered."""
    if not isinstance(record, StockResult):
        return []
    decided, pending_slot = DECIDED.entry(record.request_id), PENDING.entry(record.request_id)
    if decided.load(state):
        return []
    pending = pending_slot.load(state) or PendingRequest(results=[])
    if any(result.sku == record.sku for result in pending.results):
        return []
    results = [*pending.results, record]
    if len(results) < record.line_count:
        pending_slot.save(state, PendingRequest(results=results))
        return []
    emits = decide_order(sorted(results, key=lambda result: result.sku), utc_now())
    pending_slot.save(state, None)
    decided.save(state, True)
    return emits


SPEC = ProcessorSpec(
    name="inventory",
    group=PROCESSOR,
    # Three inputs, each with a state of its own: no merge, so no waiting to read them in timestamp order.
    streams=(
        Stream((PAYMENTS_EVENTS,), lambda s, r: with_message(request_reservation), handles=(PaymentProcessed,)),
        Stream((INVENTORY_COMMANDS,), lambda s, r: with_message(request_release), handles=(ReleaseInventory,)),
        Stream((STOCK_RESULTS,), lambda s, r: with_message(collect_result), handles=(StockResult,)),
    ),
    outputs=(STOCK_REQUESTS, INVENTORY_EVENTS, INVENTORY_COMMANDS),
    state="order id: reservation asked, answers per request",
)
