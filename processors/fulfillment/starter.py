"""Fulfillment starts a routing slip once an order is both created and reserved (choreography's last hop).

It merges `oms.orders.events` and `oms.inventory.events` (both keyed by order) into one per-order state,
since either may be read first: `OrderCreated` carries what fulfillment needs, `InventoryReserved` says
it may start. The planner turns the order into an itinerary; the slip travels in the header of the record
sent to its first step.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import BaseModel
from quixstreams import State

from processors.adapters.catalog import PRODUCTS_BY_SKU, Product
from processors.fulfillment.planner import plan
from processors.routingslip import slip as slips
from processors.routingslip.host import SlipCodec
from processors.runtime.records import Emit, derive_event_id, utc_now
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import Handler, with_message
from processors.runtime.state import StateSlot
from schemas.models import (
    AvroRecord,
    FulfillmentLine,
    FulfillmentRequest,
    InventoryReserved,
    Money,
    OrderCreated,
    RoutingSlip,
    RoutingSlipCreated,
)
from schemas.serde import HeaderCodec
from topology.settings import Settings
from topology.topics import (
    FULFILLMENT_ACTIVITIES,
    INVENTORY_EVENTS,
    ORDERS_EVENTS,
    ROUTING_SLIP_HEADER,
    ROUTING_SLIPS_EVENTS,
    fulfillment_activity,
    topic_named,
)

PROCESSOR = "oms.fulfillment"

ProductLookup = Callable[[str], Product]


class StarterState(BaseModel):
    order: OrderCreated | None = None
    reserved: bool = False
    tracking_number: str | None = None


def fulfillment_line(sku: str, quantity: int, unit_price: Money, product: Product) -> FulfillmentLine:
    """An order line with the product facts packing and shipping need."""
    return FulfillmentLine(
        sku=sku,
        quantity=quantity,
        unit_price=unit_price,
        weight_g=product.weight_g,
        length_cm=product.length_cm,
        width_cm=product.width_cm,
        height_cm=product.height_cm,
        fragile=product.fragile,
        cold_chain=product.cold_chain,
    )


def fulfillment_request(order: OrderCreated, product: ProductLookup, now: datetime.datetime) -> FulfillmentRequest:
    """The order as fulfillment sees it."""
    lines = [fulfillment_line(line.sku, line.quantity, line.unit_price, product(line.sku)) for line in order.lines]
    return FulfillmentRequest(
        event_id=derive_event_id(order.event_id, "fulfillment"),
        order_id=order.order_id,
        occurred_at=now,
        lines=lines,
        shipping_address=order.shipping_address,
        total=order.total,
        priority=order.priority,
        is_gift=order.is_gift,
    )


def decide(
    state: StarterState, record: AvroRecord, product: ProductLookup, now: datetime.datetime
) -> tuple[StarterState, RoutingSlip | None, FulfillmentRequest | None]:
    """The new state, and the slip and record to start with once the order is both known and reserved."""
    if state.tracking_number is not None:
        return state, None, None
    if isinstance(record, OrderCreated):
        state = state.model_copy(update={"order": record})
    elif isinstance(record, InventoryReserved):
        state = state.model_copy(update={"reserved": True})
    else:
        return state, None, None
    if state.order is None or not state.reserved:
        return state, None, None
    request = fulfillment_request(state.order, product, now)
    slip = slips.build(request.order_id, plan(request), now)
    return state.model_copy(update={"tracking_number": str(slip.tracking_number), "order": None}), slip, request


def catalog_product(sku: str) -> Product:
    try:
        return PRODUCTS_BY_SKU[sku]
    except KeyError:
        raise ValueError(f"SKU {sku} is not in the product catalog") from None


class Starter:
    def __init__(self, slip_codec: SlipCodec, product: ProductLookup = catalog_product) -> None:
        self._slips = slip_codec
        self._product = product
        self._state = StateSlot("fulfillment", StarterState)

    def handle(self, record: AvroRecord, state: State) -> list[Emit]:
        now = utc_now()
        before = self._state.load(state) or StarterState()
        after, slip, request = decide(before, record, self._product, now)
        emits = []
        if slip is not None and request is not None:
            first = slips.next_step(slip)
            assert first is not None, "the planner always plans at least one step"
            created = RoutingSlipCreated(
                event_id=derive_event_id(slip.tracking_number, "created"),
                order_id=slip.order_id,
                occurred_at=now,
                tracking_number=slip.tracking_number,
                itinerary=[step.name for step in slip.itinerary],
            )
            emits = [
                Emit(ROUTING_SLIPS_EVENTS, slip.order_id, created),
                Emit(topic_named(first.address), slip.order_id, request, headers=self._slips.header(slip)),
            ]
        self._state.update(state, before, after)
        return emits


def _handler(settings: Settings, registry: SchemaRegistryClient) -> Handler:
    return with_message(Starter(SlipCodec(HeaderCodec(registry, ROUTING_SLIP_HEADER))).handle)


SPEC = ProcessorSpec(
    name="fulfillment",
    group=PROCESSOR,
    # Merged: a slip starts once the order is both known (OrderCreated) and reserved (InventoryReserved).
    streams=(Stream((ORDERS_EVENTS, INVENTORY_EVENTS), _handler, handles=(OrderCreated, InventoryReserved)),),
    outputs=(ROUTING_SLIPS_EVENTS, *(fulfillment_activity(name) for name in FULFILLMENT_ACTIVITIES)),
    state="order id: the order until it is reserved, then the slip's tracking number",
)
