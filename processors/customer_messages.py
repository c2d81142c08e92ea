"""What a customer reads about their order: one template per kind of news and, where the news has one, per code.

The templates are the one place for the wording (docs/choreography.md shows them as a table). They are filled
with the order's facts only (order id, items, amounts); never with an event's internal wording, such as which
tender of how many a gateway declined. Codes are machine-readable reasons that producers of events choose:
a code the table does not know falls back to the kind's general template (`ANY_CODE`), and an intake rejection
with an unknown code quotes the event's own plain-text reason, which intake writes for people.

Every fact is shown visibly (`processors.plain_text.visible`): an order id, a SKU or a reason that came in a
command with control, escape or bidirectional-formatting characters reaches the customer with those escaped
(`\x1b`), never as the characters themselves; and a text is at most `MAX_TEXT_CHARS` long.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from processors.adapters.catalog import PRODUCTS_BY_SKU
from processors.intake import DUPLICATE_ORDER_ID
from processors.intake_rules import RejectionCode, is_duplicate_id_rejection
from processors.plain_text import cut, visible
from processors.sagas.cancellation import Refusal
from schemas.models import (
    InventoryShortage,
    Money,
    NotificationKind,
    OrderCancellationRejected,
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderLine,
    OrderRejected,
    OrderShipped,
    PaymentFailed,
    PaymentMethod,
    PaymentProcessed,
    TenderCharge,
)

Kind = NotificationKind
# The longest text a customer is sent: a receipt of the most lines an order may have fits, with room to spare.
MAX_TEXT_CHARS = 6_000
ANY_CODE = "*"  # the kind's template for a code the table does not know
ORDER_CAME_LATER = "order-came-later"  # an unknown-order refusal, told once the order exists after all
NO_CODE = ""  # the kind has no codes
REFUNDED = "refunded"  # a cancellation that gave money back
NOTHING_CHARGED = "nothing-charged"  # a cancellation of an order that had not been charged

# What the customer reads, by kind of news and code. Facts in braces are filled in by `Message.text`.
TEMPLATES: dict[tuple[NotificationKind, str], str] = {
    (Kind.ORDER_RECEIVED, NO_CODE): (
        "We have received your order {order_id}: {items}, {total}. We will confirm it once the payment has gone "
        "through."
    ),
    (Kind.ORDER_CONFIRMED, NO_CODE): (
        "Your order {order_id} is confirmed: we have taken the payment of {amount}{paid_with}. We will let you "
        "know when it ships."
    ),
    (Kind.PAYMENT_FAILED, "card-declined"): (
        "We could not take the payment of {amount} for your order {order_id}: your card was declined. Nothing has "
        "been charged and the order will not be sent."
    ),
    (Kind.PAYMENT_FAILED, "insufficient-funds"): (
        "We could not take the payment of {amount} for your order {order_id}: your bank declined it for "
        "insufficient funds. Nothing has been charged and the order will not be sent."
    ),
    (Kind.PAYMENT_FAILED, "over-card-limit"): (
        "We could not take the payment of {amount} for your order {order_id}: the amount is above your card's "
        "limit. Nothing has been charged and the order will not be sent."
    ),
    (Kind.PAYMENT_FAILED, "gift-card-empty"): (
        "We could not take the payment of {amount} for your order {order_id}: your gift card's balance is too low."
        " Nothing has been charged and the order will not be sent."
    ),
    (Kind.PAYMENT_FAILED, "unknown-token"): (
        "We could not take the payment of {amount} for your order {order_id}: we did not recognise your payment "
        "details. Nothing has been charged and the order will not be sent."
    ),
    (Kind.PAYMENT_FAILED, "tenders-mismatch"): (
        "We could not take the payment of {amount} for your order {order_id}: your payments do not add up to the "
        "order's total. Nothing has been charged and the order will not be sent."
    ),
    (Kind.PAYMENT_FAILED, "gateway-unavailable"): (
        "We could not take the payment of {amount} for your order {order_id}: our payment provider could not be "
        "reached. Nothing has been charged and the order will not be sent. Please try again in a little while."
    ),
    (Kind.PAYMENT_FAILED, ANY_CODE): (
        "We could not take the payment of {amount} for your order {order_id}: the payment was not accepted. "
        "Nothing has been charged and the order will not be sent."
    ),
    (Kind.OUT_OF_STOCK, NO_CODE): (
        "Sorry, we cannot fulfil your order {order_id}, not enough stock of {missing}. Any payment taken will be "
        "refunded."
    ),
    (Kind.ORDER_SHIPPED, NO_CODE): "Your order {order_id} is on its way.",
    (Kind.ORDER_DELIVERED, NO_CODE): "Your order {order_id} has been delivered.",
    (Kind.ORDER_CANCELLED, REFUNDED): "Your order {order_id} has been cancelled. We have refunded {refunded}.",
    (Kind.ORDER_CANCELLED, NOTHING_CHARGED): (
        "Your order {order_id} has been cancelled. Nothing had been charged, so there is nothing to refund."
    ),
    (Kind.ORDER_REJECTED, ANY_CODE): (
        "We could not accept your order {order_id}: {reasons}. Nothing has been charged. You are welcome to place "
        "it again once this is put right."
    ),
    (Kind.ORDER_REJECTED, DUPLICATE_ORDER_ID): (
        "We could not accept your order {order_id}: that order number is already in use. Nothing has been charged."
        " Please place your order again with a new order number."
    ),
    (Kind.CANCELLATION_REFUSED, Refusal.DELIVERED): (
        "We could not cancel your order {order_id}: it has already been delivered. You can still return it."
    ),
    (Kind.CANCELLATION_REFUSED, Refusal.SHIPPED): (
        "We could not cancel your order {order_id}: it has already shipped, so it is too late to cancel. You can "
        "return it once it has been delivered."
    ),
    (Kind.CANCELLATION_REFUSED, Refusal.UNKNOWN_ORDER): (
        "We could not cancel your order {order_id}: we have no order with that number."
    ),
    # The same refusal, told only once the order has come after all (`once_the_order_came`).
    (Kind.CANCELLATION_REFUSED, ORDER_CAME_LATER): (
        "Your request to cancel order {order_id} reached us before the order itself, and we could not wait for "
        "it any longer, so the order goes ahead. If you still want it cancelled, please ask again."
    ),
    # Not a failure: the customer asked for what has happened already (a second click, a retry).
    (Kind.CANCELLATION_REFUSED, Refusal.ALREADY_CANCELLED): (
        "Your order {order_id} was already cancelled: there is nothing more to do, and any refund is on its way or "
        "made."
    ),
    (Kind.CANCELLATION_REFUSED, Refusal.ORDER_REJECTED): (
        "We could not cancel your order {order_id}: we did not accept it when it was placed, so there is nothing "
        "to cancel."
    ),
    (Kind.CANCELLATION_REFUSED, Refusal.PAYMENT_FAILED): (
        "We could not cancel your order {order_id}: it has already ended because its payment did not go through. "
        "Nothing has been charged."
    ),
    (Kind.CANCELLATION_REFUSED, Refusal.OUT_OF_STOCK): (
        "We could not cancel your order {order_id}: it has already ended because items were out of stock. Your "
        "payment has been refunded."
    ),
    (Kind.CANCELLATION_REFUSED, Refusal.NEVER_DECIDED): (
        "We could not cancel your order {order_id}: it was placed but never accepted, so there is nothing to cancel."
    ),
    (Kind.CANCELLATION_REFUSED, ANY_CODE): "We could not cancel your order {order_id}: {reason}.",
}

# Why intake rejected an order, one phrase per code; a code not listed here is told in the event's own words.
REJECTION_REASONS: dict[str, str] = {
    RejectionCode.INVALID_FIELD: "some of its details are missing or not valid",
    RejectionCode.UNKNOWN_SKU: "it includes a product we do not sell",
    RejectionCode.CURRENCY_MISMATCH: "its prices and payments are not all in one currency",
    RejectionCode.TENDERS_MISMATCH: "its payments do not add up to its total",
    RejectionCode.TOTAL_OVER_LIMIT: "its total is above the limit for a single order",
}
# A reason that came without a code (written before codes existed) may be internal wording: not quoted.
UNCODED_REASON = "some of its details could not be accepted"

PAYMENT_METHODS: dict[PaymentMethod, str] = {
    PaymentMethod.CARD: "card",
    PaymentMethod.GIFT_CARD: "gift card",
    PaymentMethod.STORE_CREDIT: "store credit",
}

# ISO 4217 currencies whose minor unit is not a hundredth.
MINOR_UNIT_DIGITS: dict[str, int] = {"JPY": 0, "KRW": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3}


@dataclass(frozen=True)
class Message:
    """A template's key and the facts that fill it."""

    kind: NotificationKind
    code: str
    facts: dict[str, Any]

    @property
    def text(self) -> str:
        template = TEMPLATES.get((self.kind, self.code)) or TEMPLATES[(self.kind, ANY_CODE)]
        return cut(template.format(**{name: visible(str(fact)) for name, fact in self.facts.items()}), MAX_TEXT_CHARS)


Notified = (
    OrderCreated
    | PaymentProcessed
    | PaymentFailed
    | InventoryShortage
    | OrderShipped
    | OrderDelivered
    | OrderCancelled
    | OrderRejected
    | OrderCancellationRejected
)


def once_the_order_came(message: Message) -> Message:
    """A message held until the order's address was known, decided again now that the order exists: a
    cancellation refused because the order was unknown must not tell its customer there is no such order."""
    if message.kind == Kind.CANCELLATION_REFUSED and message.code == Refusal.UNKNOWN_ORDER:
        return Message(message.kind, ORDER_CAME_LATER, message.facts)
    return message


def message_for(record: Notified) -> Message:
    """The message `record` tells its customer."""
    order_id = record.order_id
    match record:
        case OrderCreated(lines=lines, total=total):
            return Message(
                Kind.ORDER_RECEIVED,
                NO_CODE,
                {"order_id": order_id, "items": items(lines), "total": format_money(total)},
            )
        case PaymentProcessed(amount=amount, charges=charges):
            return Message(
                Kind.ORDER_CONFIRMED,
                NO_CODE,
                {"order_id": order_id, "amount": format_money(amount), "paid_with": paid_with(charges)},
            )
        case PaymentFailed(amount=amount, code=code):
            return Message(Kind.PAYMENT_FAILED, code, {"order_id": order_id, "amount": format_money(amount)})
        case InventoryShortage(short_lines=short_lines):
            missing = ", ".join(
                f"{product(line.sku)} ({line.requested} ordered, {line.available} available)" for line in short_lines
            )
            return Message(Kind.OUT_OF_STOCK, NO_CODE, {"order_id": order_id, "missing": missing})
        case OrderShipped():
            return Message(Kind.ORDER_SHIPPED, NO_CODE, {"order_id": order_id})
        case OrderDelivered():
            return Message(Kind.ORDER_DELIVERED, NO_CODE, {"order_id": order_id})
        case OrderCancelled(refunded=refunded):
            if refunded is None or refunded.amount_minor == 0:
                return Message(Kind.ORDER_CANCELLED, NOTHING_CHARGED, {"order_id": order_id})
            return Message(Kind.ORDER_CANCELLED, REFUNDED, {"order_id": order_id, "refunded": format_money(refunded)})
        case OrderRejected():
            code = DUPLICATE_ORDER_ID if is_duplicate_id_rejection(record) else ANY_CODE
            return Message(Kind.ORDER_REJECTED, code, {"order_id": order_id, "reasons": rejection_reasons(record)})
        case OrderCancellationRejected(code=code, reason=reason):
            return Message(
                Kind.CANCELLATION_REFUSED, code, {"order_id": order_id, "reason": reason.strip().rstrip(".")}
            )
    raise TypeError(f"no message tells of {type(record).__name__}")


def rejection_reasons(rejected: OrderRejected) -> str:
    """Each reason once, in plain words: the code's phrase, the event's words for a code we do not know."""
    phrases = [
        UNCODED_REASON if not code else REJECTION_REASONS.get(code, reason)
        for reason, code in zip_longest(rejected.reasons, rejected.codes, fillvalue="")
    ]
    return "; ".join(unique(phrase.strip().rstrip(".") for phrase in phrases if phrase.strip())) or UNCODED_REASON


def unique(phrases: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(phrases))


def paid_with(charges: list[TenderCharge]) -> str:
    """` (20.00 EUR by card, 5.00 EUR by gift card)` for a payment of several tenders; nothing for one."""
    if len(charges) < 2:
        return ""
    return " (" + ", ".join(f"{format_money(c.amount)} by {PAYMENT_METHODS[c.method]}" for c in charges) + ")"


def items(lines: list[OrderLine]) -> str:
    """`3 items (2 x Stoneware mug, 1 x Loose-leaf green tea)`"""
    count = sum(line.quantity for line in lines)
    listed = ", ".join(f"{line.quantity} x {product(line.sku)}" for line in lines)
    return f"{count} item{'' if count == 1 else 's'} ({listed})"


def product(sku: str) -> str:
    """The product's name in the catalog, or its SKU for one the catalog does not list."""
    known = PRODUCTS_BY_SKU.get(sku)
    return known.name if known is not None else sku


def format_money(amount: Money) -> str:
    """`25.00 EUR` for 2500 minor units of EUR."""
    digits = MINOR_UNIT_DIGITS.get(amount.currency, 2)
    return f"{amount.amount_minor / 10**digits:.{digits}f} {amount.currency}"
