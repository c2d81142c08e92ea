"""Pydantic models of the Avro records in schemas/; made by `oms schemas codegen`, do not edit."""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class AvroRecord(BaseModel):
    """A record of the wire contract; `AVRO_NAME` is its Avro full name."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str]


class Event(AvroRecord):
    """An event or command: unique per message, and when its fact happened."""

    event_id: uuid.UUID
    occurred_at: datetime.datetime


class OrderEvent(Event):
    """An event or command about one order."""

    order_id: str


class Money(AvroRecord):
    """An amount in the currency's minor unit (cents), so that sums are exact."""

    AVRO_NAME: ClassVar[str] = "oms.common.Money"
    amount_minor: int
    currency: str = Field(max_length=64, description="ISO 4217 code, e.g. EUR.")


class FulfillmentLine(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.fulfillment.FulfillmentLine"
    sku: str = Field(max_length=128)
    quantity: int
    unit_price: Money
    weight_g: int
    length_cm: int
    width_cm: int
    height_cm: int
    fragile: bool = Field(default=False)
    cold_chain: bool = Field(default=False)


class Address(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.common.Address"
    recipient: str = Field(max_length=254)
    line1: str = Field(max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(max_length=200)
    postal_code: str = Field(max_length=64)
    country: str = Field(max_length=64, description="ISO 3166-1 alpha-2 code, e.g. DE.")


class ShippingPriority(enum.StrEnum):
    STANDARD = "STANDARD"
    EXPRESS = "EXPRESS"


class FulfillmentRequest(OrderEvent):
    """What every fulfillment activity works on; its routing slip travels in a header."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.FulfillmentRequest"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    lines: list[FulfillmentLine]
    shipping_address: Address
    total: Money
    priority: ShippingPriority = Field(default=ShippingPriority.STANDARD)
    is_gift: bool = Field(default=False)


class ItineraryStep(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.fulfillment.ItineraryStep"
    name: str = Field(max_length=100, description="Activity name, e.g. pack.")
    address: str = Field(max_length=249, description="Topic the step's host reads, e.g. oms.fulfillment.pack.")
    arguments: dict[str, str] = Field(default_factory=dict)


class ActivityLogEntry(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.fulfillment.ActivityLogEntry"
    execution_id: uuid.UUID
    name: str = Field(max_length=100)
    host: str = Field(max_length=200)
    started_at: datetime.datetime
    duration_ms: int


class CompensationLogEntry(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.fulfillment.CompensationLogEntry"
    execution_id: uuid.UUID
    name: str = Field(max_length=100)
    address: str = Field(max_length=249, description="Topic of the step's compensation, e.g. oms.fulfillment.pack.compensate.")
    data: dict[str, str] = Field(description="Exactly what the compensation needs.")


class ActivityFault(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.fulfillment.ActivityFault"
    execution_id: uuid.UUID
    name: str = Field(max_length=100)
    at: datetime.datetime
    reason: str = Field(max_length=2000)


class RoutingSlip(AvroRecord):
    """A routing slip: where a fulfillment goes next and what has been done, carried in the 'oms-routing-slip' header of every fulfillment record."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlip"
    tracking_number: uuid.UUID
    order_id: str = Field(max_length=128)
    created_at: datetime.datetime
    itinerary: list[ItineraryStep] = Field(description="Steps still to run, the next first.")
    activity_log: list[ActivityLogEntry] = Field(default_factory=list)
    compensation_log: list[CompensationLogEntry] = Field(default_factory=list, description="Completed steps that can be undone, the last done last.")
    variables: dict[str, str] = Field(default_factory=dict)
    faults: list[ActivityFault] = Field(default_factory=list)


class RoutingSlipActivityCompensated(OrderEvent):
    """A completed step was undone."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipActivityCompensated"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    activity: str = Field(max_length=100)


class RoutingSlipActivityCompensationFailed(OrderEvent):
    """Undoing a completed step failed; the slip is parked."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipActivityCompensationFailed"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    activity: str = Field(max_length=100)
    reason: str = Field(max_length=2000)


class RoutingSlipActivityCompleted(OrderEvent):
    """A step of the slip ran."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipActivityCompleted"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    activity: str = Field(max_length=100)
    duration_ms: int
    variables: dict[str, str] = Field(default_factory=dict)


class RoutingSlipActivityFaulted(OrderEvent):
    """A step of the slip failed; compensation starts."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipActivityFaulted"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    activity: str = Field(max_length=100)
    reason: str = Field(max_length=2000)


class RoutingSlipCompensationFailed(OrderEvent):
    """The slip failed and a step could not be undone; it is parked for an operator."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipCompensationFailed"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    activity: str = Field(max_length=100)
    reason: str = Field(max_length=2000)


class RoutingSlipCompleted(OrderEvent):
    """Every step of the slip ran."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipCompleted"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    duration_ms: int
    variables: dict[str, str] = Field(default_factory=dict)


class RoutingSlipCreated(OrderEvent):
    """A routing slip was planned for the order and sent to its first step."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipCreated"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    itinerary: list[str]


class RoutingSlipFaulted(OrderEvent):
    """The slip failed and every completed step was undone."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipFaulted"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    reason: str = Field(max_length=2000)


class RoutingSlipRevised(OrderEvent):
    """A step replaced the rest of the itinerary."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipRevised"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    activity: str = Field(max_length=100)
    itinerary: list[str]
    reason: str = Field(default="", max_length=2000)


class RoutingSlipTerminated(OrderEvent):
    """A step ended the slip early, successfully."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.RoutingSlipTerminated"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID
    activity: str = Field(max_length=100)
    reason: str = Field(default="", max_length=2000)


class StopFulfillment(OrderEvent):
    """Command: stop the order's routing slip; its next step compensates instead of executing."""

    AVRO_NAME: ClassVar[str] = "oms.fulfillment.StopFulfillment"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    reason: str = Field(max_length=2000)


class StockLine(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.common.StockLine"
    sku: str = Field(max_length=128)
    quantity: int


class InventoryReleased(OrderEvent):
    """Reserved stock of the order is back on the shelf."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.InventoryReleased"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    lines: list[StockLine]


class InventoryReserved(OrderEvent):
    """Every line of the order is reserved."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.InventoryReserved"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    lines: list[StockLine]


class ShortLine(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.inventory.ShortLine"
    sku: str = Field(max_length=128)
    requested: int
    available: int


class InventoryShortage(OrderEvent):
    """Some lines could not be reserved; partial reservations were released."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.InventoryShortage"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    short_lines: list[ShortLine]


class ReleaseInventory(OrderEvent):
    """Command: put an order's reserved stock back."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.ReleaseInventory"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    lines: list[StockLine]
    reason: str = Field(max_length=2000)


class StockLevel(Event):
    """Units of a SKU available to reserve, keyed by SKU on a compacted topic. Not per order, so no order_id."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.StockLevel"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    sku: str = Field(max_length=128)
    available: int
    occurred_at: datetime.datetime


class StockRequestKind(enum.StrEnum):
    RESERVE = "RESERVE"
    RELEASE = "RELEASE"


class StockRequest(OrderEvent):
    """Reserve or release one SKU's units for an order: one of line_count parts of request request_id. Keyed by SKU."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.StockRequest"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    request_id: str = Field(max_length=128, description="event_id of the PaymentProcessed or ReleaseInventory it is part of.")
    kind: StockRequestKind
    sku: str = Field(max_length=128)
    quantity: int
    line_count: int = Field(description="How many SKUs the whole request has.")
    reason: str = Field(default="", max_length=2000)


class StockResult(OrderEvent):
    """What a SKU granted to one part of a request. Keyed by order id."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.StockResult"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    request_id: str = Field(max_length=128)
    kind: StockRequestKind
    sku: str = Field(max_length=128)
    requested: int
    granted: int
    available: int = Field(description="Units of the SKU free after this request.")
    line_count: int


class NotificationKind(enum.StrEnum):
    ORDER_CONFIRMED = "ORDER_CONFIRMED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    ORDER_SHIPPED = "ORDER_SHIPPED"
    ORDER_DELIVERED = "ORDER_DELIVERED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    OTHER = "OTHER"
    ORDER_RECEIVED = "ORDER_RECEIVED"
    ORDER_REJECTED = "ORDER_REJECTED"
    CANCELLATION_REFUSED = "CANCELLATION_REFUSED"


class NotificationSent(OrderEvent):
    """A customer was told something about their order, once per kind."""

    AVRO_NAME: ClassVar[str] = "oms.notifications.NotificationSent"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    kind: NotificationKind
    channel: str = Field(max_length=100, description="email, sms, webhook...")
    recipient: str = Field(max_length=254)
    message_id: str = Field(max_length=128, description="The channel's id for the message sent.")
    caused_by: uuid.UUID = Field(description="event_id of the event that triggered it.")


class CancelOrder(OrderEvent):
    """Command: cancel an order that is not yet delivered."""

    AVRO_NAME: ClassVar[str] = "oms.orders.CancelOrder"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    reason: str = Field(max_length=500, description="The customer's words; shorter than the reasons derived from it may be.")
    requested_by: str = Field(default="customer", max_length=200)


class OrderCancellationRejected(OrderEvent):
    """A CancelOrder that cannot be carried out: the order is delivered, already cancelled, ended or unknown."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderCancellationRejected"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    cancel_event_id: uuid.UUID = Field(description="The CancelOrder this answers.")
    reason: str = Field(max_length=2000, description="Why, in plain words.")
    code: str = Field(default="", max_length=100, description="Why, machine-readable (e.g. delivered, shipped, unknown-order, already-cancelled).")


class OrderCancelled(OrderEvent):
    """The cancellation saga finished: fulfillment stopped and undone, the money refunded, the stock released."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderCancelled"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    reason: str = Field(max_length=2000, description="Why the cancellation was asked for.")
    requested_by: str = Field(default="customer", max_length=200)
    refunded: Money | None = Field(default=None, description="What went back to the customer; null when nothing was charged.")


class OrderLine(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.common.OrderLine"
    sku: str = Field(max_length=128)
    quantity: int
    unit_price: Money


class PaymentMethod(enum.StrEnum):
    CARD = "CARD"
    GIFT_CARD = "GIFT_CARD"
    STORE_CREDIT = "STORE_CREDIT"


class Tender(AvroRecord):
    """One way the customer pays part of the order."""

    AVRO_NAME: ClassVar[str] = "oms.common.Tender"
    method: PaymentMethod
    token: str = Field(max_length=128, description="Card token, gift-card number or store-credit account.")
    amount: Money


class OrderCreated(OrderEvent):
    """An order passed intake; it carries everything downstream services need."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderCreated"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    customer_id: str = Field(max_length=128)
    customer_email: str = Field(max_length=254)
    lines: list[OrderLine]
    shipping_address: Address
    tenders: list[Tender]
    total: Money
    priority: ShippingPriority = Field(default=ShippingPriority.STANDARD)
    is_gift: bool = Field(default=False)


class OrderDelivered(OrderEvent):
    """The carrier delivered the order."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderDelivered"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    carrier: str = Field(max_length=100)
    signed_by: str | None = Field(default=None, max_length=200)


class OrderFailureReason(enum.StrEnum):
    PAYMENT_FAILED = "PAYMENT_FAILED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    OTHER = "OTHER"


class OrderFailed(OrderEvent):
    """The order ended without being sent: its payment failed (nothing stays charged), or it was out of stock (told once what it had been charged went back). Once per order, on the orders topic, so that a partner follows an order from that one topic."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderFailed"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    reason: OrderFailureReason = Field(description="Why, machine-readable; a reader that does not know a newer reason reads OTHER.")
    code: str = Field(default="", max_length=100, description="The deciding event's own code, when it has one: a PaymentFailed's (card-declined, gateway-unavailable...); empty for OUT_OF_STOCK.")
    detail: str = Field(max_length=500, description="Why, in plain words for an operator (which tender, what the gateway said; which products were short), cut to 500 characters.")
    refunded: Money | None = Field(default=None, description="For OUT_OF_STOCK: what went back to the customer, as refunds and store credit. Null when nothing had been charged (PAYMENT_FAILED).")
    caused_by: uuid.UUID = Field(description="event_id of the event that decided it: the PaymentFailed, or the InventoryShortage.")


class OrderRejected(OrderEvent):
    """A PlaceOrder failed intake; every reason is listed. With the code duplicate-order-id it answers a second PlaceOrder for an order id already used, and says nothing of the order that holds the id."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderRejected"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    customer_id: str | None = Field(default=None, max_length=128)
    reasons: list[str] = Field(description="Why, in plain words, one per problem.")
    codes: list[str] = Field(default_factory=list, description="Why, machine-readable: one code per reason, in the same order (e.g. unknown-sku, duplicate-order-id).")
    customer_email: str | None = Field(default=None, max_length=254, description="Where the customer can be told, when the command had an address.")
    command_event_id: uuid.UUID | None = Field(default=None, description="The PlaceOrder this answers.")


class OrderShipped(OrderEvent):
    """The order left the warehouse with a carrier."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderShipped"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    carrier: str = Field(max_length=100)
    label_id: str = Field(max_length=128)
    parcels: int = Field(default=1)


class PlaceOrder(OrderEvent):
    """Command: place a new order."""

    AVRO_NAME: ClassVar[str] = "oms.orders.PlaceOrder"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    customer_id: str = Field(max_length=128)
    customer_email: str = Field(max_length=254)
    lines: list[OrderLine]
    shipping_address: Address
    tenders: list[Tender]
    priority: ShippingPriority = Field(default=ShippingPriority.STANDARD)
    is_gift: bool = Field(default=False)


class PaymentFailed(OrderEvent):
    """The order could not be charged; nothing stays charged."""

    AVRO_NAME: ClassVar[str] = "oms.payments.PaymentFailed"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    amount: Money
    reason: str = Field(max_length=2000)
    retryable: bool = Field(default=False)
    code: str = Field(default="", max_length=100, description="Why, machine-readable (e.g. card-declined, insufficient-funds, gift-card-empty).")


class TenderCharge(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.payments.TenderCharge"
    method: PaymentMethod
    amount: Money
    transaction_id: str = Field(max_length=128)


class PaymentProcessed(OrderEvent):
    """The order was charged in full."""

    AVRO_NAME: ClassVar[str] = "oms.payments.PaymentProcessed"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    amount: Money
    charges: list[TenderCharge]
    lines: list[StockLine] = Field(default_factory=list, description="What was paid for, so that inventory can reserve it without a lookup.")


class PaymentRefundFailed(OrderEvent):
    """A refund could not be made."""

    AVRO_NAME: ClassVar[str] = "oms.payments.PaymentRefundFailed"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    amount: Money
    reason: str = Field(max_length=2000)
    request_id: str | None = Field(default=None, max_length=128, description="The event that asked for the refund.")
    retryable: bool = Field(default=False, description="The gateway was unavailable: asking again later may succeed.")


class PaymentRefunded(OrderEvent):
    """Money went back to the customer."""

    AVRO_NAME: ClassVar[str] = "oms.payments.PaymentRefunded"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    amount: Money
    method: PaymentMethod
    transaction_id: str = Field(max_length=128)
    request_id: str | None = Field(default=None, max_length=128, description="The event that asked for the refund (a RefundPayment or an InventoryShortage).")


class RefundPayment(OrderEvent):
    """Command: refund (part of) what was charged for an order."""

    AVRO_NAME: ClassVar[str] = "oms.payments.RefundPayment"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    amount: Money
    reason: str = Field(max_length=2000)
    store_credit_if_unavailable: bool = Field(default=True, description="When the gateway stays unavailable for a tender: give store credit (true), or report a retryable PaymentRefundFailed and leave the retry to the asker (false).")


class RetrySaga(OrderEvent):
    """Command (oms.orders.commands): resume the order's saga that ended Failed, from the step that failed."""

    AVRO_NAME: ClassVar[str] = "oms.sagas.RetrySaga"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    saga: str = Field(default="cancellation", max_length=100)
    requested_by: str = Field(default="operator", max_length=200)


class SagaTransitioned(OrderEvent):
    """A saga instance moved (or stayed, doing something) on a trigger; one per transition, for monitoring."""

    AVRO_NAME: ClassVar[str] = "oms.sagas.SagaTransitioned"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    saga: str = Field(max_length=100, description="Which saga, e.g. cancellation.")
    saga_id: str = Field(max_length=128, description="The instance: the id of the command that started it.")
    from_state: str = Field(max_length=100)
    to_state: str = Field(max_length=100)
    trigger: str = Field(max_length=100, description="The record type that caused it, or timeout / retry.")
    trigger_event_id: str = Field(max_length=128)
    actions: list[str] = Field(description="What the saga did: commands sent, timers set.")
    attempt: int = Field(description="Attempt of the step the saga is in, from 1.")
    reason: str | None = Field(default=None, max_length=2000, description="Why it failed or was rejected, when it did.")


class TimerFired(OrderEvent):
    """A durable timer came due; produced once, with the timer's tombstone."""

    AVRO_NAME: ClassVar[str] = "oms.sagas.TimerFired"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    timer_id: str = Field(max_length=256)
    due_at: datetime.datetime
    purpose: str = Field(max_length=100)
    attempt: int = Field(default=0)


class TimerScheduled(OrderEvent):
    """A durable timer, keyed by timer_id on the compacted oms.timers topic; a tombstone cancels it."""

    AVRO_NAME: ClassVar[str] = "oms.sagas.TimerScheduled"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime
    timer_id: str = Field(max_length=256, description="Unique per timer; scheduling it again replaces it.")
    due_at: datetime.datetime
    fire_topic: str = Field(max_length=249, description="Where the TimerFired goes, keyed by order id.")
    purpose: str = Field(max_length=100, description="What the owner should do when it fires, e.g. refund-timeout.")
    attempt: int = Field(default=0)


class TimelineStep(AvroRecord):
    """One step of an order's workflow, as the tracker saw it."""

    AVRO_NAME: ClassVar[str] = "oms.common.TimelineStep"
    pattern: str = Field(max_length=100, description="choreography, routing-slip or saga.")
    name: str = Field(max_length=100, description="e.g. payment, pick, Refunding.")
    status: str = Field(max_length=100, description="pending, started, completed, failed, compensated, compensation-failed, skipped.")
    started_at: datetime.datetime | None = Field(default=None)
    ended_at: datetime.datetime | None = Field(default=None)
    error: str | None = Field(default=None, max_length=2000)


class OrderTimeline(OrderEvent):
    """Where an order stands across choreography, routing slip and saga: the tracker's view, latest per order on a compacted topic."""

    AVRO_NAME: ClassVar[str] = "oms.tracking.OrderTimeline"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str = Field(max_length=128)
    occurred_at: datetime.datetime = Field(description="When the view last changed.")
    status: str = Field(max_length=100, description="in-flight, completed, compensating or faulted.")
    outcome: str | None = Field(default=None, max_length=100, description="delivered, cancelled, rejected, payment-failed, out-of-stock.")
    placed_at: datetime.datetime | None = Field(default=None)
    last_progress_at: datetime.datetime = Field(description="When its latest event happened.")
    slip: str | None = Field(default=None, max_length=100, description="The routing slip: running, compensating, completed, faulted, terminated, compensation-failed.")
    saga: str | None = Field(default=None, max_length=100, description="The cancellation saga's state.")
    saga_reason: str | None = Field(default=None, max_length=2000)
    steps: list[TimelineStep]
    trace_id: str | None = Field(default=None, max_length=128, description="The W3C trace id (32 hex digits) of the order's work: from the first of its events that carried a traceparent.")
    seen: list[str] = Field(default_factory=list, description="Ids of the events folded in: a replay folds nothing twice.")


RECORD_TYPES: dict[str, type[AvroRecord]] = {
    "oms.fulfillment.FulfillmentRequest": FulfillmentRequest,
    "oms.fulfillment.RoutingSlip": RoutingSlip,
    "oms.fulfillment.RoutingSlipActivityCompensated": RoutingSlipActivityCompensated,
    "oms.fulfillment.RoutingSlipActivityCompensationFailed": RoutingSlipActivityCompensationFailed,
    "oms.fulfillment.RoutingSlipActivityCompleted": RoutingSlipActivityCompleted,
    "oms.fulfillment.RoutingSlipActivityFaulted": RoutingSlipActivityFaulted,
    "oms.fulfillment.RoutingSlipCompensationFailed": RoutingSlipCompensationFailed,
    "oms.fulfillment.RoutingSlipCompleted": RoutingSlipCompleted,
    "oms.fulfillment.RoutingSlipCreated": RoutingSlipCreated,
    "oms.fulfillment.RoutingSlipFaulted": RoutingSlipFaulted,
    "oms.fulfillment.RoutingSlipRevised": RoutingSlipRevised,
    "oms.fulfillment.RoutingSlipTerminated": RoutingSlipTerminated,
    "oms.fulfillment.StopFulfillment": StopFulfillment,
    "oms.inventory.InventoryReleased": InventoryReleased,
    "oms.inventory.InventoryReserved": InventoryReserved,
    "oms.inventory.InventoryShortage": InventoryShortage,
    "oms.inventory.ReleaseInventory": ReleaseInventory,
    "oms.inventory.StockLevel": StockLevel,
    "oms.inventory.StockRequest": StockRequest,
    "oms.inventory.StockResult": StockResult,
    "oms.notifications.NotificationSent": NotificationSent,
    "oms.orders.CancelOrder": CancelOrder,
    "oms.orders.OrderCancellationRejected": OrderCancellationRejected,
    "oms.orders.OrderCancelled": OrderCancelled,
    "oms.orders.OrderCreated": OrderCreated,
    "oms.orders.OrderDelivered": OrderDelivered,
    "oms.orders.OrderFailed": OrderFailed,
    "oms.orders.OrderRejected": OrderRejected,
    "oms.orders.OrderShipped": OrderShipped,
    "oms.orders.PlaceOrder": PlaceOrder,
    "oms.payments.PaymentFailed": PaymentFailed,
    "oms.payments.PaymentProcessed": PaymentProcessed,
    "oms.payments.PaymentRefundFailed": PaymentRefundFailed,
    "oms.payments.PaymentRefunded": PaymentRefunded,
    "oms.payments.RefundPayment": RefundPayment,
    "oms.sagas.RetrySaga": RetrySaga,
    "oms.sagas.SagaTransitioned": SagaTransitioned,
    "oms.sagas.TimerFired": TimerFired,
    "oms.sagas.TimerScheduled": TimerScheduled,
    "oms.tracking.OrderTimeline": OrderTimeline,
}
