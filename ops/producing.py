"""The intake rules table of docs/producing.md, made by running intake's own decision on the example order of
`docs/examples/place_order.py`, changed as each row says: the table shows what intake answers, not what we
remember it answering."""

from __future__ import annotations

import datetime
import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops.generated import replace_between
from processors.intake import decide
from processors.intake_rules import MAX_LINES, MAX_ORDER_ID_CHARS, MAX_ORDER_TOTAL_MINOR, MAX_TENDERS
from schemas.models import OrderRejected, PlaceOrder
from topology.settings import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "docs" / "examples" / "place_order.py"
DOC = PROJECT_ROOT / "docs" / "producing.md"
BEGIN = "<!-- intake-rules:begin (oms intake rules --write) -->"
END = "<!-- intake-rules:end -->"
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Change:
    def change(fields: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = fields
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value

    return change


def _both(*changes: Change) -> Change:
    def change(fields: dict[str, Any]) -> None:
        for each in changes:
            each(fields)

    return change


def _line(sku: str, quantity: int, price: int, currency: str = "EUR") -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "unit_price": {"amount_minor": price, "currency": currency}}


def _card(amount: int, currency: str = "EUR") -> dict[str, Any]:
    return {"method": "CARD", "token": "tok_ok_visa", "amount": {"amount_minor": amount, "currency": currency}}


# The example order totals 30.00 EUR: two mugs at 12.50 and a tea at 5.00, paid by one card.
CASES: tuple[tuple[str, Change], ...] = (
    ("a blank order id", _set("order_id", " ")),
    ("an order id with a space, a slash or an escape character", _set("order_id", "ord 1/\x1b[31m")),
    (f"an order id over {MAX_ORDER_ID_CHARS} characters", _set("order_id", "o" * (MAX_ORDER_ID_CHARS + 1))),
    ("a blank customer id", _set("customer_id", "")),
    ("an email address without a domain", _set("customer_email", "ada@")),
    ("no lines", _set("lines", [])),
    (
        f"more than {MAX_LINES} lines",
        _both(
            _set("lines", [_line("SKU-TEA-01", 1, 100)] * (MAX_LINES + 1)),
            _set("tenders", [_card(MAX_LINES * 100 + 100)]),
        ),
    ),
    ("a blank SKU", _set("lines.0.sku", "")),
    ("a quantity of 0", _both(_set("lines.1.quantity", 0), _set("tenders.0.amount.amount_minor", 2500))),
    ("a price of 0", _both(_set("lines.1.unit_price.amount_minor", 0), _set("tenders.0.amount.amount_minor", 2500))),
    ("a currency not in ISO 4217 form", _set("lines.1.unit_price.currency", "eur")),
    ("a blank city", _set("shipping_address.city", "")),
    ("a country not in ISO 3166 form", _set("shipping_address.country", "Germany")),
    ("no payment", _set("tenders", [])),
    (f"more than {MAX_TENDERS} payments", _set("tenders", [_card(500)] * (MAX_TENDERS + 1))),
    ("a blank payment token", _set("tenders.0.token", "")),
    ("a SKU the catalog does not list", _set("lines.1.sku", "SKU-UNKNOWN-1")),
    (
        "200 lines of SKUs the catalog does not list",
        _both(_set("lines", [_line(f"SKU-X-{n}", 1, 100) for n in range(200)]), _set("tenders", [_card(20_000)])),
    ),
    ("lines in euro, paid in dollars", _set("tenders.0.amount.currency", "USD")),
    ("payments that do not add up to the total", _set("tenders.0.amount.amount_minor", 2999)),
    (
        f"a total over {MAX_ORDER_TOTAL_MINOR / 100:,.2f}",
        _both(
            _set("lines", [_line("SKU-MUG-01", 1000, MAX_ORDER_TOTAL_MINOR // 1000 + 1)]),
            _set("tenders", [_card(1000 * (MAX_ORDER_TOTAL_MINOR // 1000 + 1))]),
        ),
    ),
)


def example_fields(order_id: str) -> dict[str, Any]:
    """The example producer's order, loaded from its file: the docs and the example cannot drift apart."""
    spec = importlib.util.spec_from_file_location("place_order_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fields: dict[str, Any] = module.place_order_fields(order_id)
    return fields


def answer(fields: dict[str, Any], known: Any = None) -> tuple[list[str], list[str]]:
    """Intake's codes and reasons for the order `fields`; empty when it creates the order."""
    _, emits = decide(known, PlaceOrder.model_validate(fields), NOW)
    rejection = next((emit.record for emit in emits if isinstance(emit.record, OrderRejected)), None)
    return (list(rejection.codes), list(rejection.reasons)) if rejection else ([], [])


def rules_rows() -> list[tuple[str, str, str]]:
    """(what the command has, codes, intake's reasons) for every case, and for an order id used twice."""
    rows = []
    for description, change in CASES:
        fields = example_fields("ord-1")
        change(fields)
        codes, reasons = answer(fields)
        rows.append((description, ", ".join(dict.fromkeys(codes)) or "(accepted)", "; ".join(reasons)))
    first = example_fields("ord-1")
    known, _ = decide(None, PlaceOrder.model_validate(first), NOW)
    other = _both(_set("event_id", str(uuid.uuid4())), _set("lines.1.quantity", 2))
    second = example_fields("ord-1")
    other(second)
    codes, reasons = answer(second, known)
    rows.append(("an order id already used by another order", ", ".join(codes), "; ".join(reasons)))
    return rows


def rules_table() -> str:
    lines = [BEGIN, "| the PlaceOrder has | `OrderRejected.codes` | `OrderRejected.reasons` |", "|---|---|---|"]
    lines += [f"| {what} | `{codes}` | {reasons} |" for what, codes, reasons in rules_rows()]
    return "\n".join([*lines, END])


def write_rules_table(doc: Path = DOC) -> bool:
    return replace_between(doc, BEGIN, END, rules_table())
