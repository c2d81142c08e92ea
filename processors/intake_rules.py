"""What makes a `PlaceOrder` acceptable, and every reason it is not: a code for machines, plain words for people.

Pure: `validate` reads only the command and the catalog it is given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from processors.adapters.catalog import PRODUCTS_BY_SKU, Product
from schemas.models import AvroRecord, Money, OrderRejected, PlaceOrder

MAX_LINES = 100
MAX_QUANTITY_PER_LINE = 1_000
MAX_TENDERS = 5
MAX_ORDER_TOTAL_MINOR = 10_000_000


class RejectionCode(StrEnum):
    """Why intake rejects a `PlaceOrder`, one code per reason (`OrderRejected.codes`): every code there is."""

    INVALID_FIELD = "invalid-field"
    """A field breaks its own rule: blank, malformed, out of range, too few or too many lines or tenders."""
    UNKNOWN_SKU = "unknown-sku"
    """A line orders a SKU the catalog does not list."""
    CURRENCY_MISMATCH = "currency-mismatch"
    """Lines and tenders are not all in one currency."""
    TENDERS_MISMATCH = "tenders-mismatch"
    """The tenders do not add up to the order's total."""
    TOTAL_OVER_LIMIT = "total-over-limit"
    """The order costs more than one order may."""
    DUPLICATE_ORDER_ID = "duplicate-order-id"
    """The order id was used before by a command with other content; the order holding the id is unaffected."""


@dataclass(frozen=True)
class Reason:
    code: RejectionCode
    text: str


NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Rules(BaseModel):
    """Limits on a PlaceOrder's fields; rules across fields are in `cross_field_reasons`."""

    model_config = ConfigDict(extra="ignore")


class _MoneyRules(_Rules):
    amount_minor: int = Field(gt=0)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class _LineRules(_Rules):
    sku: NonBlank
    quantity: int = Field(gt=0, le=MAX_QUANTITY_PER_LINE)
    unit_price: _MoneyRules


class _AddressRules(_Rules):
    recipient: NonBlank
    line1: NonBlank
    city: NonBlank
    postal_code: NonBlank
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class _TenderRules(_Rules):
    token: NonBlank
    amount: _MoneyRules


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class PlaceOrderRules(_Rules):
    order_id: NonBlank
    customer_id: NonBlank
    customer_email: Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]
    lines: list[_LineRules] = Field(min_length=1, max_length=MAX_LINES)
    shipping_address: _AddressRules
    tenders: list[_TenderRules] = Field(min_length=1, max_length=MAX_TENDERS)


def validate(command: PlaceOrder, catalog: Mapping[str, Product] = PRODUCTS_BY_SKU) -> list[Reason]:
    """Every reason the order cannot be accepted, fields first; empty when it can."""
    reasons = []
    try:
        PlaceOrderRules.model_validate(command.model_dump())
    except ValidationError as error:
        reasons += [field_reason(detail) for detail in error.errors()]
    return reasons + unknown_sku_reasons(command, catalog) + cross_field_reasons(command)


def unknown_sku_reasons(command: PlaceOrder, catalog: Mapping[str, Product]) -> list[Reason]:
    return [
        Reason(RejectionCode.UNKNOWN_SKU, f"line {number}: {line.sku.strip()} is not a product we sell")
        for number, line in enumerate(command.lines, start=1)
        if line.sku.strip() and line.sku.strip() not in catalog  # a blank SKU is a field's reason already
    ]


def cross_field_reasons(command: PlaceOrder) -> list[Reason]:
    reasons = []
    currencies = {line.unit_price.currency for line in command.lines} | {t.amount.currency for t in command.tenders}
    if len(currencies) > 1:
        reasons.append(
            Reason(
                RejectionCode.CURRENCY_MISMATCH,
                f"lines and payments must all be in one currency, this order uses {' and '.join(sorted(currencies))}",
            )
        )
    total = order_total(command)
    paid = sum(tender.amount.amount_minor for tender in command.tenders)
    if paid != total.amount_minor:
        reasons.append(
            Reason(
                RejectionCode.TENDERS_MISMATCH,
                f"the payments add up to {_amount(paid, total.currency)}, "
                f"the order totals {_amount(total.amount_minor, total.currency)}",
            )
        )
    if total.amount_minor > MAX_ORDER_TOTAL_MINOR:
        reasons.append(
            Reason(
                RejectionCode.TOTAL_OVER_LIMIT,
                f"the order totals {_amount(total.amount_minor, total.currency)}, "
                f"more than the {_amount(MAX_ORDER_TOTAL_MINOR, total.currency)} one order may cost",
            )
        )
    return reasons


def order_total(command: PlaceOrder) -> Money:
    currency = Counter(line.unit_price.currency for line in command.lines).most_common(1)
    return Money(
        amount_minor=sum(line.quantity * line.unit_price.amount_minor for line in command.lines),
        currency=currency[0][0] if currency else "",
    )


def _amount(minor: int, currency: str) -> str:
    return f"{minor / 100:,.2f} {currency}".rstrip()


# --- a field's rule in plain words -------------------------------------------------------------------

# Where a field sits, by its path's first part: a list's items are counted from 1, as a customer would.
_ITEM_NAMES = {"lines": "line", "tenders": "payment"}
_PLACE_NAMES = {"shipping_address": "shipping address"}
_FIELD_NAMES = {
    "order_id": "order id",
    "customer_id": "customer id",
    "customer_email": "email address",
    "sku": "SKU",
    "unit_price.amount_minor": "unit price",
    "unit_price.currency": "currency",
    "amount.amount_minor": "amount",
    "amount.currency": "currency",
    "token": "payment token",
    "line1": "street",
    "postal_code": "postal code",
}
_PATTERN_WORDS = {
    "customer_email": "is not valid",
    "unit_price.currency": "must be a three-letter code in capitals, such as EUR",
    "amount.currency": "must be a three-letter code in capitals, such as EUR",
    "country": "must be a two-letter code in capitals, such as DE",
}
_COUNTED = {"quantity"}  # whole units: "at least 1" reads better than "more than 0"


def field_reason(detail: ErrorDetails) -> Reason:
    """One broken field rule, e.g. `line 1: quantity must be at least 1`."""
    place, field = _place_and_field(detail["loc"])
    kind, context = detail["type"], detail.get("ctx", {})
    if field in _ITEM_NAMES and kind in ("too_short", "too_long"):
        sentence = _count_broken(_ITEM_NAMES[field], kind, context)
    else:
        name = _FIELD_NAMES.get(field, field.replace("_", " "))
        sentence = f"{name} {_broken_rule(field, kind, context, detail['msg'])}"
    return Reason(RejectionCode.INVALID_FIELD, f"{place}: {sentence}" if place else sentence)


def _place_and_field(location: tuple[int | str, ...]) -> tuple[str, str]:
    first, rest = str(location[0]), list(location[1:])
    if first in _ITEM_NAMES and rest and isinstance(rest[0], int):
        return f"{_ITEM_NAMES[first]} {rest[0] + 1}", ".".join(map(str, rest[1:]))
    if first in _PLACE_NAMES and rest:
        return _PLACE_NAMES[first], ".".join(map(str, rest))
    return "", ".".join(map(str, location))


def _broken_rule(field: str, kind: str, context: dict[str, Any], message: str) -> str:
    match kind:
        case "string_too_short":
            return "must not be blank"
        case "string_pattern_mismatch":
            return _PATTERN_WORDS.get(field, "is not in the expected form")
        case "greater_than" if field in _COUNTED:
            return f"must be at least {context['gt'] + 1}"
        case "greater_than":
            return f"must be more than {context['gt']}"
        case "less_than_equal":
            return f"must be at most {context['le']:,}"
    return message[:1].lower() + message[1:]


def _count_broken(item: str, kind: str, context: dict[str, Any]) -> str:
    if kind == "too_short":
        least = context["min_length"]
        return f"an order needs at least {least} {item}{'s' if least > 1 else ''}"
    return f"an order may have at most {context['max_length']} {item}s, this one has {context['actual_length']}"


def is_duplicate_id_rejection(record: AvroRecord) -> bool:
    """An answer to a second `PlaceOrder` for a used order id: it says nothing of the order holding the id."""
    return isinstance(record, OrderRejected) and RejectionCode.DUPLICATE_ORDER_ID.value in record.codes
