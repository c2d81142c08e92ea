"""Records for tests, valid unless a test says otherwise."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from schemas.models import OrderCreated, PlaceOrder

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
