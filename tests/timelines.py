"""One order's events for the tracker's timeline tests, folded as the tracker folds them."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from processors.tracking.timeline import fold
from schemas.models import (
    AvroRecord,
    InventoryReserved,
    Money,
    OrderTimeline,
    PaymentProcessed,
    RoutingSlipActivityCompleted,
    RoutingSlipCreated,
    StockLine,
)
from tests.factories import NOW, a_valid_order, order_created_from


def fields_at(order_id: str, seconds: float) -> dict[str, Any]:
    """An event's common fields: a fresh id, the order, `seconds` after NOW."""
    return {"event_id": uuid.uuid4(), "order_id": order_id, "occurred_at": NOW + datetime.timedelta(seconds=seconds)}


def folded(*records: AvroRecord) -> OrderTimeline:
    timeline = None
    for record in records:
        timeline = fold(timeline, record) or timeline
    assert timeline is not None
    return timeline


def up_to_the_first_pick(order_id: str, slip: uuid.UUID, itinerary: list[str]) -> list[AvroRecord]:
    """Placed, created, paid, reserved, its slip started and picked: an order in flight."""
    placed = a_valid_order(order_id)
    return [
        placed,
        order_created_from(placed).model_copy(update={"occurred_at": NOW + datetime.timedelta(seconds=0.1)}),
        PaymentProcessed(
            **fields_at(order_id, 0.3), amount=Money(amount_minor=3000, currency="EUR"), charges=[], lines=[]
        ),
        InventoryReserved(**fields_at(order_id, 0.5), lines=[StockLine(sku="SKU-MUG-01", quantity=2)]),
        RoutingSlipCreated(**fields_at(order_id, 0.6), tracking_number=slip, itinerary=itinerary),
        RoutingSlipActivityCompleted(
            **fields_at(order_id, 0.9), tracking_number=slip, activity="pick", duration_ms=200
        ),
    ]
