from __future__ import annotations

import datetime
import uuid

from processors.inventory import decide_order, requests_for
from processors.stock import SkuStock, apply_request
from schemas.models import (
    InventoryReleased,
    InventoryReserved,
    InventoryShortage,
    PaymentProcessed,
    ReleaseInventory,
    StockLine,
    StockRequest,
    StockRequestKind,
    StockResult,
)
from tests.factories import record_of
from topology.topics import INVENTORY_COMMANDS, INVENTORY_EVENTS, STOCK_REQUESTS

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
RESERVE, RELEASE = StockRequestKind.RESERVE, StockRequestKind.RELEASE


def request(kind: StockRequestKind = RESERVE, quantity: int = 2, sku: str = "MUG") -> StockRequest:
    return StockRequest(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=NOW,
        request_id="r-1",
        kind=kind,
        sku=sku,
        quantity=quantity,
        line_count=1,
    )


def result(sku: str, requested: int, granted: int, available: int = 0, kind: StockRequestKind = RESERVE) -> StockResult:
    return StockResult(
        event_id=uuid.uuid4(),
        order_id="o-1",
        occurred_at=NOW,
        request_id="r-1",
        kind=kind,
        sku=sku,
        requested=requested,
        granted=granted,
        available=available,
        line_count=2,
    )


def test_requests_sum_repeated_skus_are_keyed_by_sku_and_count_distinct_skus() -> None:
    lines = [StockLine(sku="MUG", quantity=1), StockLine(sku="CUP", quantity=2), StockLine(sku="MUG", quantity=3)]
    paid = PaymentProcessed.model_validate(
        {
            "event_id": uuid.uuid4(),
            "order_id": "o-1",
            "occurred_at": NOW,
            "amount": {"amount_minor": 1, "currency": "EUR"},
            "charges": [],
            "lines": lines,
        }
    )

    emits = requests_for(paid, RESERVE, "o-1", lines, NOW)

    assert [emit.topic for emit in emits] == [STOCK_REQUESTS, STOCK_REQUESTS]
    requests = [emit.record for emit in emits if isinstance(emit.record, StockRequest)]
    assert [(e.key, r.sku, r.quantity, r.line_count) for e, r in zip(emits, requests, strict=True)] == [
        ("CUP", "CUP", 2, 2),
        ("MUG", "MUG", 4, 2),
    ]
    assert {r.request_id for r in requests} == {str(paid.event_id)}


def test_reserve_takes_from_available_when_enough() -> None:
    assert apply_request(SkuStock(available=5, held_by_order=0), request(quantity=2)) == (
        SkuStock(available=3, held_by_order=2),
        2,
    )


def test_reserve_is_all_or_nothing_and_never_goes_negative() -> None:
    before = SkuStock(available=1, held_by_order=0)

    assert apply_request(before, request(quantity=2)) == (before, 0)


def test_a_repeated_reservation_for_the_same_order_takes_nothing_more() -> None:
    before = SkuStock(available=3, held_by_order=2)

    assert apply_request(before, request(quantity=2)) == (before, 2)


def test_release_gives_back_at_most_what_the_order_holds() -> None:
    after, granted = apply_request(SkuStock(available=3, held_by_order=2), request(kind=RELEASE, quantity=5))

    assert after == SkuStock(available=5, held_by_order=0) and granted == 2


def test_release_of_nothing_held_changes_nothing() -> None:
    before = SkuStock(available=3, held_by_order=0)

    assert apply_request(before, request(kind=RELEASE, quantity=1)) == (before, 0)


def test_all_lines_reserved_decides_inventory_reserved() -> None:
    [emit] = decide_order([result("CUP", 1, 1), result("MUG", 2, 2)], NOW)

    assert emit.topic == INVENTORY_EVENTS and emit.key == "o-1"
    assert isinstance(emit.record, InventoryReserved)
    assert [(line.sku, line.quantity) for line in emit.record.lines] == [("CUP", 1), ("MUG", 2)]


def test_a_short_line_decides_shortage_and_releases_the_reserved_ones() -> None:
    shortage, release = decide_order([result("CUP", 1, 1), result("MUG", 2, 0, available=1)], NOW)

    assert isinstance(shortage.record, InventoryShortage)
    assert [(s.sku, s.requested, s.available) for s in shortage.record.short_lines] == [("MUG", 2, 1)]
    assert release.topic == INVENTORY_COMMANDS
    assert isinstance(release.record, ReleaseInventory)
    assert [(line.sku, line.quantity) for line in release.record.lines] == [("CUP", 1)]
    assert release.record.reason == "shortage of MUG"


def test_shortage_with_nothing_reserved_releases_nothing() -> None:
    emits = decide_order([result("CUP", 1, 0), result("MUG", 2, 0)], NOW)

    assert [type(emit.record) for emit in emits] == [InventoryShortage]


def test_decisions_derive_the_same_event_ids_on_a_rerun() -> None:
    results = [result("CUP", 1, 1), result("MUG", 2, 0)]

    first, second = decide_order(results, NOW), decide_order(results, NOW)

    assert [record_of(e).model_dump()["event_id"] for e in first] == [
        record_of(e).model_dump()["event_id"] for e in second
    ]


def test_released_lines_are_reported_once_every_sku_answered() -> None:
    [emit] = decide_order([result("CUP", 1, 1, kind=RELEASE), result("MUG", 2, 0, kind=RELEASE)], NOW)

    assert isinstance(emit.record, InventoryReleased)
    assert [(line.sku, line.quantity) for line in emit.record.lines] == [("CUP", 1)]
