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


class StockLine(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.common.StockLine"
    sku: str
    quantity: int


class InventoryReleased(AvroRecord):
    """Reserved stock of the order is back on the shelf."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.InventoryReleased"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    lines: list[StockLine]


class InventoryReserved(AvroRecord):
    """Every line of the order is reserved."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.InventoryReserved"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    lines: list[StockLine]


class ShortLine(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.inventory.ShortLine"
    sku: str
    requested: int
    available: int


class InventoryShortage(AvroRecord):
    """Some lines could not be reserved; partial reservations were released."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.InventoryShortage"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    short_lines: list[ShortLine]


class ReleaseInventory(AvroRecord):
    """Command: put an order's reserved stock back."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.ReleaseInventory"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    lines: list[StockLine]
    reason: str


class StockLevel(AvroRecord):
    """Units of a SKU available to reserve, keyed by SKU on a compacted topic. Not per order, so no order_id."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.StockLevel"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    sku: str
    available: int
    occurred_at: datetime.datetime


class StockRequestKind(enum.StrEnum):
    RESERVE = "RESERVE"
    RELEASE = "RELEASE"


class StockRequest(AvroRecord):
    """Reserve or release one SKU's units for an order: one of line_count parts of request request_id. Keyed by SKU."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.StockRequest"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    request_id: str = Field(description="event_id of the PaymentProcessed or ReleaseInventory it is part of.")
    kind: StockRequestKind
    sku: str
    quantity: int
    line_count: int = Field(description="How many SKUs the whole request has.")
    reason: str = Field(default="")


class StockResult(AvroRecord):
    """What a SKU granted to one part of a request. Keyed by order id."""

    AVRO_NAME: ClassVar[str] = "oms.inventory.StockResult"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    request_id: str
    kind: StockRequestKind
    sku: str
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


class NotificationSent(AvroRecord):
    """A customer was told something about their order, once per kind."""

    AVRO_NAME: ClassVar[str] = "oms.notifications.NotificationSent"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    kind: NotificationKind
    channel: str = Field(description="email, sms, webhook...")
    recipient: str
    message_id: str = Field(description="The channel's id for the message sent.")
    caused_by: uuid.UUID = Field(description="event_id of the event that triggered it.")


class CancelOrder(AvroRecord):
    """Command: cancel an order that is not yet delivered."""

    AVRO_NAME: ClassVar[str] = "oms.orders.CancelOrder"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    reason: str
    requested_by: str = Field(default="customer")


class Money(AvroRecord):
    """An amount in the currency's minor unit (cents), so that sums are exact."""

    AVRO_NAME: ClassVar[str] = "oms.common.Money"
    amount_minor: int
    currency: str = Field(description="ISO 4217 code, e.g. EUR.")


class OrderLine(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.common.OrderLine"
    sku: str
    quantity: int
    unit_price: Money


class Address(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.common.Address"
    recipient: str
    line1: str
    line2: str | None = Field(default=None)
    city: str
    postal_code: str
    country: str = Field(description="ISO 3166-1 alpha-2 code, e.g. DE.")


class PaymentMethod(enum.StrEnum):
    CARD = "CARD"
    GIFT_CARD = "GIFT_CARD"
    STORE_CREDIT = "STORE_CREDIT"


class Tender(AvroRecord):
    """One way the customer pays part of the order."""

    AVRO_NAME: ClassVar[str] = "oms.common.Tender"
    method: PaymentMethod
    token: str = Field(description="Card token, gift-card number or store-credit account.")
    amount: Money


class ShippingPriority(enum.StrEnum):
    STANDARD = "STANDARD"
    EXPRESS = "EXPRESS"


class OrderCreated(AvroRecord):
    """An order passed intake; it carries everything downstream services need."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderCreated"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    customer_id: str
    customer_email: str
    lines: list[OrderLine]
    shipping_address: Address
    tenders: list[Tender]
    total: Money
    priority: ShippingPriority = Field(default=ShippingPriority.STANDARD)
    is_gift: bool = Field(default=False)


class OrderRejected(AvroRecord):
    """A PlaceOrder failed intake; every reason is listed."""

    AVRO_NAME: ClassVar[str] = "oms.orders.OrderRejected"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    customer_id: str | None = Field(default=None)
    reasons: list[str]


class PlaceOrder(AvroRecord):
    """Command: place a new order."""

    AVRO_NAME: ClassVar[str] = "oms.orders.PlaceOrder"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    customer_id: str
    customer_email: str
    lines: list[OrderLine]
    shipping_address: Address
    tenders: list[Tender]
    priority: ShippingPriority = Field(default=ShippingPriority.STANDARD)
    is_gift: bool = Field(default=False)


class PaymentFailed(AvroRecord):
    """The order could not be charged; nothing stays charged."""

    AVRO_NAME: ClassVar[str] = "oms.payments.PaymentFailed"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    amount: Money
    reason: str
    retryable: bool = Field(default=False)


class TenderCharge(AvroRecord):
    AVRO_NAME: ClassVar[str] = "oms.payments.TenderCharge"
    method: PaymentMethod
    amount: Money
    transaction_id: str


class PaymentProcessed(AvroRecord):
    """The order was charged in full."""

    AVRO_NAME: ClassVar[str] = "oms.payments.PaymentProcessed"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    amount: Money
    charges: list[TenderCharge]
    lines: list[StockLine] = Field(default_factory=list, description="What was paid for, so that inventory can reserve it without a lookup.")


class PaymentRefundFailed(AvroRecord):
    """A refund could not be made."""

    AVRO_NAME: ClassVar[str] = "oms.payments.PaymentRefundFailed"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    amount: Money
    reason: str


class PaymentRefunded(AvroRecord):
    """Money went back to the customer."""

    AVRO_NAME: ClassVar[str] = "oms.payments.PaymentRefunded"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    amount: Money
    method: PaymentMethod
    transaction_id: str


class RefundPayment(AvroRecord):
    """Command: refund (part of) what was charged for an order."""

    AVRO_NAME: ClassVar[str] = "oms.payments.RefundPayment"
    event_id: uuid.UUID = Field(description="Unique per message; consumers deduplicate by it.")
    order_id: str
    occurred_at: datetime.datetime
    amount: Money
    reason: str


RECORD_TYPES: dict[str, type[AvroRecord]] = {
    "oms.inventory.InventoryReleased": InventoryReleased,
    "oms.inventory.InventoryReserved": InventoryReserved,
    "oms.inventory.InventoryShortage": InventoryShortage,
    "oms.inventory.ReleaseInventory": ReleaseInventory,
    "oms.inventory.StockLevel": StockLevel,
    "oms.inventory.StockRequest": StockRequest,
    "oms.inventory.StockResult": StockResult,
    "oms.notifications.NotificationSent": NotificationSent,
    "oms.orders.CancelOrder": CancelOrder,
    "oms.orders.OrderCreated": OrderCreated,
    "oms.orders.OrderRejected": OrderRejected,
    "oms.orders.PlaceOrder": PlaceOrder,
    "oms.payments.PaymentFailed": PaymentFailed,
    "oms.payments.PaymentProcessed": PaymentProcessed,
    "oms.payments.PaymentRefundFailed": PaymentRefundFailed,
    "oms.payments.PaymentRefunded": PaymentRefunded,
    "oms.payments.RefundPayment": RefundPayment,
}
