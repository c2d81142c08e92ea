"""Inventory's SKU side: stock is state keyed by SKU, set by operators and spent by reservations.

It merges two SKU-keyed topics into one per-SKU store: operator levels on `oms.inventory.stock` and
inventory's `StockRequest`s. A reservation takes all of a line's units or none (stock never goes negative);
a release gives back at most what the order holds of the SKU. Each request is answered with a
`StockResult` to the order side, and each change of level is reported on the stock topic, marked as ours
(`ce_source`), so that `oms stock show` sees live levels; our own reports are skipped when they come back.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence

from pydantic import BaseModel
from quixstreams import State

from processors.runtime.cloudevents import header
from processors.runtime.records import Emit, derive_event_id, utc_now
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import with_message
from processors.runtime.state import ValueSlot
from schemas.models import AvroRecord, StockLevel, StockRequest, StockRequestKind, StockResult
from topology.topics import INVENTORY_STOCK, STOCK_REQUESTS, STOCK_RESULTS

PROCESSOR = "oms.stock"


class SkuStock(BaseModel):
    """What the SKU's state holds that matters to one request: its free units and the order's holding."""

    available: int
    held_by_order: int


def apply_request(stock: SkuStock, request: StockRequest) -> tuple[SkuStock, int]:
    """Reserve from what is free (all or nothing), or give back at most what the order holds; the units granted."""
    if request.kind is StockRequestKind.RESERVE:
        if stock.held_by_order:
            return stock, stock.held_by_order  # this order's line was reserved before: a duplicate
        if stock.available >= request.quantity:
            return SkuStock(
                available=stock.available - request.quantity, held_by_order=request.quantity
            ), request.quantity
        return stock, 0
    granted = min(request.quantity, stock.held_by_order)
    return SkuStock(available=stock.available + granted, held_by_order=stock.held_by_order - granted), granted


def answer(request: StockRequest, granted: int, available: int, now: datetime.datetime) -> StockResult:
    return StockResult(
        event_id=derive_event_id(request.event_id, "stock-result"),
        order_id=request.order_id,
        occurred_at=now,
        request_id=request.request_id,
        kind=request.kind,
        sku=request.sku,
        requested=request.quantity,
        granted=granted,
        available=available,
        line_count=request.line_count,
    )


def level_report(sku: str, available: int, cause: str, now: datetime.datetime) -> StockLevel:
    return StockLevel(event_id=level_report_id(cause, sku), sku=sku, available=available, occurred_at=now)


def level_report_id(cause: str, sku: str) -> uuid.UUID:
    """The event id of the level report that the record with event id `cause` brings about."""
    return derive_event_id(cause, f"stock/{sku}")


# Per SKU: units available to reserve, and units held per order (reserved, not yet shipped or released).
AVAILABLE = ValueSlot("available", 0)
HELD = ValueSlot("held", 0)


def handle(record: AvroRecord, state: State) -> list[Emit]:
    now = utc_now()
    if isinstance(record, StockLevel):
        AVAILABLE.save(state, record.available)
        return [
            Emit(INVENTORY_STOCK, record.sku, level_report(record.sku, record.available, str(record.event_id), now))
        ]
    if not isinstance(record, StockRequest):
        return []
    held = HELD.entry(record.order_id)
    before = SkuStock(available=AVAILABLE.load(state), held_by_order=held.load(state))
    after, granted = apply_request(before, record)
    emits = [Emit(STOCK_RESULTS, record.order_id, answer(record, granted, after.available, now))]
    if after != before:
        emits.append(
            Emit(INVENTORY_STOCK, record.sku, level_report(record.sku, after.available, str(record.event_id), now))
        )
        AVAILABLE.save(state, after.available)
        held.save(state, after.held_by_order)
    return emits


def own_report(headers: Sequence[tuple[str, bytes]]) -> bool:
    """Our own level reports come back on the stock topic: passed over before anything is decoded."""
    return header(headers, "ce_source") == PROCESSOR


SPEC = ProcessorSpec(
    name="stock",
    group=PROCESSOR,
    # Both topics are keyed by SKU with the same partition count, so one state per SKU sees both.
    streams=(
        Stream((INVENTORY_STOCK, STOCK_REQUESTS), lambda settings, registry: with_message(handle), skip=own_report),
    ),
    outputs=(STOCK_RESULTS, INVENTORY_STOCK),
    state="SKU: available units, units held per order",
)
