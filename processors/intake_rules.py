"""What makes a `PlaceOrder` acceptable, and every reason it is not: a code for machines, plain words for people.

A problem found on many lines or payments is one reason, with the places and a count ("lines 1 to 15,000: ..."),
and there are at most `MAX_REASONS` reasons of at most `MAX_REASON_CHARS` characters, with the command's own
text shown visibly (`processors.plain_text`): however big or strange the command, its answer fits in a message.

Pure: `validate` reads only the command and the catalog it is given.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from processors.adapters.catalog import PRODUCTS_BY_SKU, Product
from processors.plain_text import shown
from schemas.models import AvroRecord, Money, OrderRejected, PlaceOrder

MAX_LINES = 100
MAX_QUANTITY_PER_LINE = 1_000
MAX_TENDERS = 5
MAX_ORDER_TOTAL_MINOR = 10_000_000
MAX_ORDER_ID_CHARS = 64
# What a partner's order id may be: it is a key, a file name in exports, and text in every customer's message.
ORDER_ID_PATTERN = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_ORDER_ID_CHARS}}}")
ORDER_ID_RULE = f"order id must be 1 to {MAX_ORDER_ID_CHARS} letters, digits, or - _ . :"
# The most an `OrderRejected` says: so many reasons of so many characters fit in any message, with room to spare.
MAX_REASONS = 20
MAX_REASON_CHARS = 500
# The most of a command's own text (a SKU, a currency) a reason quotes, and how many it quotes of a kind.
MAX_QUOTED_CHARS = 40
MAX_QUOTED = 3


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
    customer_id: NonBlank
    customer_email: Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]
    lines: list[_LineRules] = Field(min_length=1, max_length=MAX_LINES)
    shipping_address: _AddressRules
    tenders: list[_TenderRules] = Field(min_length=1, max_length=MAX_TENDERS)


def validate(command: PlaceOrder, catalog: Mapping[str, Product] = PRODUCTS_BY_SKU) -> list[Reason]:
    """Every reason the order cannot be accepted, fields first; empty when it can. A problem repeated on many
    lines or payments is told once, with where; what is past `MAX_REASONS` is told as a count."""
    reasons = order_id_reasons(command.order_id)
    try:
        PlaceOrderRules.model_validate(command.model_dump())
    except ValidationError as error:
        reasons += grouped(field_problem(detail) for detail in error.errors())
    return bounded(reasons + unknown_sku_reasons(command, catalog) + cross_field_reasons(command))


def order_id_reasons(order_id: str) -> list[Reason]:
    if ORDER_ID_PATTERN.fullmatch(order_id):
        return []
    return [Reason(RejectionCode.INVALID_FIELD, ORDER_ID_RULE)]


def bounded(reasons: Sequence[Reason]) -> list[Reason]:
    """At most `MAX_REASONS` reasons, each visible and at most `MAX_REASON_CHARS` long: the last tells how many
    more there were, under the first code it stands for."""
    kept = [Reason(reason.code, shown(reason.text, MAX_REASON_CHARS)) for reason in reasons[:MAX_REASONS]]
    if len(reasons) <= MAX_REASONS:
        return kept
    rest = reasons[MAX_REASONS - 1 :]
    return [*kept[:-1], Reason(rest[0].code, f"and {len(rest):,} more problems")]


def unknown_sku_reasons(command: PlaceOrder, catalog: Mapping[str, Product]) -> list[Reason]:
    """One reason for every line whose SKU the catalog does not list, naming the lines and the first SKUs."""
    unknown = {
        number: line.sku.strip()
        for number, line in enumerate(command.lines, start=1)
        if line.sku.strip() and line.sku.strip() not in catalog  # a blank SKU is a field's reason already
    }
    if not unknown:
        return []
    skus = list(dict.fromkeys(unknown.values()))
    named = quoted(skus)
    if len(skus) == 1:
        text = f"{numbered('line', unknown)}: {named} is not a product we sell"
    else:
        text = f"{numbered('line', unknown)}: {len(skus):,} SKUs are not products we sell ({named})"
    return [Reason(RejectionCode.UNKNOWN_SKU, text)]


def quoted(texts: Sequence[str]) -> str:
    """The first `MAX_QUOTED` of a command's `texts`, each shown visibly and cut short, and how many more:
    `SKU-A and SKU-B`, `SKU-A, SKU-B, SKU-C and 14,997 more`."""
    named = [shown(text, MAX_QUOTED_CHARS) for text in texts[:MAX_QUOTED]]
    if len(texts) > MAX_QUOTED:
        named.append(f"{len(texts) - MAX_QUOTED:,} more")
    return f"{', '.join(named[:-1])} and {named[-1]}" if len(named) > 1 else "".join(named)


def numbered(item: str, numbers: Iterable[int]) -> str:
    """Where, counted from 1 as a customer would: `line 2`, `lines 1 to 15,000`, `lines 2, 5 and 9 to 12`,
    or the first runs and a count, `lines 1, 3, 5 and 4,997 more`."""
    ordered = sorted(set(numbers))
    if len(ordered) == 1:
        return f"{item} {ordered[0]:,}"
    runs: list[list[int]] = []
    for number in ordered:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    parts: list[tuple[str, int]] = []  # a number or a run of three or more, and how many lines it covers
    for run in runs:
        parts += [(f"{run[0]:,} to {run[-1]:,}", len(run))] if len(run) > 2 else [(f"{n:,}", 1) for n in run]
    if len(parts) > MAX_QUOTED:
        listed = sum(covered for _, covered in parts[:MAX_QUOTED])
        return f"{item}s {', '.join(text for text, _ in parts[:MAX_QUOTED])} and {len(ordered) - listed:,} more"
    texts = [text for text, _ in parts]
    return f"{item}s {', '.join(texts[:-1])} and {texts[-1]}" if len(texts) > 1 else f"{item}s {texts[0]}"


def cross_field_reasons(command: PlaceOrder) -> list[Reason]:
    reasons = []
    currencies = {line.unit_price.currency for line in command.lines} | {t.amount.currency for t in command.tenders}
    if len(currencies) > 1:
        reasons.append(
            Reason(
                RejectionCode.CURRENCY_MISMATCH,
                "lines and payments must all be in one currency, this order uses " + quoted(sorted(currencies)),
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
    return f"{minor / 100:,.2f} {shown(currency, MAX_QUOTED_CHARS)}".rstrip()


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


@dataclass(frozen=True)
class _FieldProblem:
    """A broken field rule and where: `item` (a line, a payment) and its `number`, or a place (the shipping
    address) without one, or neither for the order's own fields."""

    sentence: str
    item: str = ""
    number: int | None = None


def field_reason(detail: ErrorDetails) -> Reason:
    """One broken field rule, e.g. `line 1: quantity must be at least 1`."""
    [reason] = grouped([field_problem(detail)])
    return reason


def grouped(problems: Iterable[_FieldProblem]) -> list[Reason]:
    """One reason per broken rule, naming every item that breaks it: `lines 1 to 100: quantity must be at least
    1`; in the order first found."""
    numbers: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for problem in problems:
        numbers[(problem.item, problem.sentence)] += [] if problem.number is None else [problem.number]
    reasons = []
    for (item, sentence), found in numbers.items():
        place = numbered(item, found) if found else item
        reasons.append(Reason(RejectionCode.INVALID_FIELD, f"{place}: {sentence}" if place else sentence))
    return reasons


def field_problem(detail: ErrorDetails) -> _FieldProblem:
    item, number, field = _place_and_field(detail["loc"])
    kind, context = detail["type"], detail.get("ctx", {})
    if field in _ITEM_NAMES and kind in ("too_short", "too_long"):
        return _FieldProblem(_count_broken(_ITEM_NAMES[field], kind, context), item, number)
    name = _FIELD_NAMES.get(field, field.replace("_", " "))
    return _FieldProblem(f"{name} {_broken_rule(field, kind, context, detail['msg'])}", item, number)


def _place_and_field(location: tuple[int | str, ...]) -> tuple[str, int | None, str]:
    first, rest = str(location[0]), list(location[1:])
    if first in _ITEM_NAMES and rest and isinstance(rest[0], int):
        return _ITEM_NAMES[first], rest[0] + 1, ".".join(map(str, rest[1:]))
    if first in _PLACE_NAMES and rest:
        return _PLACE_NAMES[first], None, ".".join(map(str, rest))
    return "", None, ".".join(map(str, location))


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
        case "string_too_long":
            return f"must be at most {context['max_length']:,} characters"
    return message[:1].lower() + message[1:]


def _count_broken(item: str, kind: str, context: dict[str, Any]) -> str:
    if kind == "too_short":
        least = context["min_length"]
        return f"an order needs at least {least} {item}{'s' if least > 1 else ''}"
    return f"an order may have at most {context['max_length']} {item}s, this one has {context['actual_length']:,}"


def is_duplicate_id_rejection(record: AvroRecord) -> bool:
    """An answer to a second `PlaceOrder` for a used order id: it says nothing of the order holding the id."""
    return isinstance(record, OrderRejected) and RejectionCode.DUPLICATE_ORDER_ID.value in record.codes
