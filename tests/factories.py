"""Records for tests, valid unless a test says otherwise."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.chaos import stock_for
from ops.orders import OrderMix, generate_orders
from ops.produce import CancellationPlan
from ops.stock import level_records
from processors.adapters.catalog import PRODUCTS_BY_SKU
from processors.fulfillment.starter import fulfillment_line
from processors.runtime.inprocess import InProcessRunner
from processors.runtime.memory import MemoryState
from processors.runtime.records import Emit
from processors.services import STREAM_PROCESSORS
from schemas.models import (
    Address,
    AvroRecord,
    FulfillmentRequest,
    Money,
    OrderCreated,
    OrderLine,
    PlaceOrder,
    ShippingPriority,
)
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ORDERS_COMMANDS, fulfillment_activity

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)


def a_valid_order(order_id: str | None = None, **overrides: Any) -> PlaceOrder:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "order_id": order_id or f"o-{uuid.uuid4().hex[:8]}",
        "occurred_at": NOW,
        "customer_id": "c-7",
        "customer_email": "ada@example.com",
        "lines": [
            {"sku": "SKU-MUG-01", "quantity": 2, "unit_price": {"amount_minor": 1250, "currency": "EUR"}},
            {"sku": "SKU-TEA-01", "quantity": 1, "unit_price": {"amount_minor": 500, "currency": "EUR"}},
        ],
        "shipping_address": {
            "recipient": "Ada Lovelace",
            "line1": "1 Loop Road",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "tenders": [{"method": "CARD", "token": "tok_ok_visa", "amount": {"amount_minor": 3000, "currency": "EUR"}}],
    }
    return PlaceOrder.model_validate(fields | overrides)


def order_created_from(command: PlaceOrder) -> OrderCreated:
    from processors.intake import decide

    _, [emit] = decide(None, command, NOW)
    assert isinstance(emit.record, OrderCreated)
    return emit.record


@dataclass(frozen=True)
class Order:
    """An order as fulfillment gets it, told briefly: units per SKU of the demo catalog and the options."""

    units: dict[str, int]
    country: str = "DE"
    priority: ShippingPriority = ShippingPriority.STANDARD
    is_gift: bool = False
    total: Money | None = None
    """The lines' sum unless given."""
    expected: list[str] = field(default_factory=list)


def fulfillment_request(order: Order) -> FulfillmentRequest:
    lines = [
        fulfillment_line(
            sku,
            quantity,
            Money(amount_minor=PRODUCTS_BY_SKU[sku].unit_price_minor, currency="EUR"),
            PRODUCTS_BY_SKU[sku],
        )
        for sku, quantity in order.units.items()
    ]
    total = order.total or Money(
        amount_minor=sum(line.unit_price.amount_minor * line.quantity for line in lines), currency="EUR"
    )
    return FulfillmentRequest(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=NOW,
        lines=lines,
        shipping_address=Address(
            recipient="Ada", line1="1 Loop Road", city="X", postal_code="1", country=order.country
        ),
        total=total,
        priority=order.priority,
        is_gift=order.is_gift,
    )


DictState = MemoryState  # the state of one key, in memory


def order_of(name: str, skus: dict[str, int], country: str = "DE", **fields: Any) -> PlaceOrder:
    """A valid order of `skus` (units each) at catalog prices, paid by one card, id `<name>-<random>`."""
    lines = [
        OrderLine(
            sku=sku,
            quantity=units,
            unit_price=Money(amount_minor=PRODUCTS_BY_SKU[sku].unit_price_minor, currency="EUR"),
        )
        for sku, units in skus.items()
    ]
    total = sum(line.quantity * line.unit_price.amount_minor for line in lines)
    base = a_valid_order()
    return a_valid_order(
        order_id=f"{name}-{uuid.uuid4().hex[:8]}",
        lines=lines,
        shipping_address=base.shipping_address.model_copy(update={"country": country}),
        tenders=[{"method": "CARD", "token": "tok_ok_slips", "amount": {"amount_minor": total, "currency": "EUR"}}],
        **fields,
    )


def records_the_processors_emit(tmp_path: Path) -> list[AvroRecord]:
    """Every record the processors emit over a small mix with cancellations, some before the parcel leaves."""
    return the_processors_run(tmp_path).records()


def the_processors_run(tmp_path: Path) -> InProcessRunner:
    """The processors, in process, once they have run a small mix with cancellations, some before the parcel
    leaves."""
    generated = generate_orders(60, 3, prefix="avro", mix=OrderMix())
    runner = InProcessRunner(STREAM_PROCESSORS, Settings(run_dir=tmp_path))
    runner.send(*(Emit(INVENTORY_STOCK, level.sku, level) for level in level_records(stock_for(generated))))
    runner.hold(fulfillment_activity("ship").name)
    placed = [(float(index), order.order_id, order.record) for index, order in enumerate(generated)]
    for _, order_id, record in sorted([*placed, *CancellationPlan(0.3, 3).commands(placed)], key=lambda c: c[0]):
        runner.send(Emit(ORDERS_COMMANDS, order_id, record))
        runner.run()
    runner.release(fulfillment_activity("ship").name)
    runner.run()
    return runner


def record_of(emit: Emit) -> AvroRecord:
    """What `emit` publishes, when it is a record and not a tombstone."""
    assert emit.record is not None, f"a tombstone of {emit.key} on {emit.topic.name}"
    return emit.record
