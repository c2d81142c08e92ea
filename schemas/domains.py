"""The domain of every number the records carry, declared once, beside the schemas.

Avro has no unsigned or positive integers: a `StockRequest` for -5 units or a refund of -10 EUR is a valid
record to the schema. Each bound here is declared on the named type that has the field (an `OrderLine`'s
quantity, wherever an order line travels); `violations` finds, for any record, every value outside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from schemas.catalog import record
from schemas.models import AvroRecord

AT_LEAST: dict[str, dict[str, int]] = {
    "oms.common.Money": {"amount_minor": 0},
    "oms.common.OrderLine": {"quantity": 1},
    "oms.common.StockLine": {"quantity": 1},
    "oms.fulfillment.FulfillmentLine": {"quantity": 1, "weight_g": 0, "length_cm": 0, "width_cm": 0, "height_cm": 0},
    "oms.fulfillment.ActivityLogEntry": {"duration_ms": 0},
    "oms.fulfillment.RoutingSlipActivityCompleted": {"duration_ms": 0},
    "oms.fulfillment.RoutingSlipCompleted": {"duration_ms": 0},
    "oms.inventory.ShortLine": {"requested": 1, "available": 0},
    "oms.inventory.StockLevel": {"available": 0},
    "oms.inventory.StockRequest": {"quantity": 1, "line_count": 1},
    "oms.inventory.StockResult": {"requested": 1, "granted": 0, "available": 0, "line_count": 1},
    "oms.orders.OrderShipped": {"parcels": 1},
    "oms.sagas.SagaTransitioned": {"attempt": 1},
    "oms.sagas.TimerFired": {"attempt": 0},
    "oms.sagas.TimerScheduled": {"attempt": 0},
}
"""The least value of a number field, by the full name of the record type that declares the field."""

USER_INPUT = frozenset({"oms.orders.PlaceOrder"})
"""Records whose values a user typed: intake answers what is out of bounds in plain words
(`processors/intake_rules.py`), so their domain is intake's to enforce, not the wire's."""


@dataclass(frozen=True)
class Bound:
    """A number at `path` from the record (lists along the way are walked) must be at least `minimum`."""

    path: tuple[str, ...]
    minimum: int

    def holds(self, value: Any) -> bool:
        reached = [value]
        for name in self.path:
            stepped = []
            for node in reached:
                step = getattr(node, name)
                if isinstance(step, list):
                    stepped.extend(step)
                elif step is not None:
                    stepped.append(step)
            reached = stepped
        return not reached or min(reached) >= self.minimum

    def violations(self, value: Any) -> Iterator[str]:
        for where, number in _located(value, self.path, ""):
            if number < self.minimum:
                yield f"{where} is {number}, must be at least {self.minimum}"


def violations(value: AvroRecord) -> list[str]:
    """Every value of `value` outside its declared domain, e.g. `lines[0].quantity is 0, must be at least 1`."""
    return [
        problem for bound in bounds(value.AVRO_NAME) if not bound.holds(value) for problem in bound.violations(value)
    ]


@cache
def bounds(fullname: str) -> tuple[Bound, ...]:
    """The bounds that apply within a record type, found once by walking its schema."""
    if fullname in USER_INPUT:
        return ()
    return tuple(_bounds(record(fullname).definition, None, (), {}))


def _bounds(node: Any, namespace: str | None, path: tuple[str, ...], named: dict[str, Any]) -> Iterator[Bound]:
    if isinstance(node, str):
        fullname = node if "." in node or namespace is None else f"{namespace}.{node}"
        if fullname in named:
            yield from _bounds(named[fullname], namespace, path, named)
        return
    if isinstance(node, list):
        for branch in node:
            yield from _bounds(branch, namespace, path, named)
        return
    kind = node["type"]
    if kind == "array":
        yield from _bounds(node["items"], namespace, path, named)
    elif kind == "record":
        namespace = node.get("namespace", namespace)
        fullname = f"{namespace}.{node['name']}" if namespace else node["name"]
        named[fullname] = node
        least = AT_LEAST.get(fullname, {})
        for field in node["fields"]:
            field_path = (*path, field["name"])
            if field["name"] in least:
                yield Bound(field_path, least[field["name"]])
            yield from _bounds(field["type"], namespace, field_path, named)
    elif isinstance(kind, (dict, list)):
        yield from _bounds(kind, namespace, path, named)


def _located(value: Any, path: tuple[str, ...], where: str) -> Iterator[tuple[str, Any]]:
    """`_numbers`, each with where it is in the record (`lines[0].quantity`): for the message, once one is out."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _located(item, path, f"{where}[{index}]")
    elif not path:
        yield where, value
    elif (step := getattr(value, path[0])) is not None:
        yield from _located(step, path[1:], f"{where}.{path[0]}" if where else path[0])
