from __future__ import annotations

import datetime

from processors.inventory import LineRequest, LineResult, SkuStock, apply_request, decide_order, requests_for
from schemas.models import InventoryReleased, InventoryReserved, InventoryShortage, ReleaseInventory, StockLine
from topology.topics import INVENTORY_COMMANDS, INVENTORY_EVENTS

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)


def request(kind: str = "reserve", quantity: int = 2, sku: str = "MUG", line_count: int = 1) -> LineRequest:
    return LineRequest.model_validate(
        {
            "request_id": "r-1",
            "kind": kind,
            "order_id": "o-1",
            "sku": sku,
            "quantity": quantity,
            "line_count": line_count,
        }
    )


def result(sku: str, requested: int, granted: int, available: int = 0, kind: str = "reserve") -> LineResult:
    return LineResult.model_validate(
        {
            "request_id": "r-1",
            "kind": kind,
            "order_id": "o-1",
            "sku": sku,
            "requested": requested,
            "granted": granted,
            "available": available,
            "line_count": 2,
        }
    )


def test_requests_sum_repeated_skus_and_count_distinct_lines() -> None:
    lines = [StockLine(sku="MUG", quantity=1), StockLine(sku="CUP", quantity=2), StockLine(sku="MUG", quantity=3)]

    requests = requests_for("r-1", "reserve", "o-1", lines)

    assert [(r.sku, r.quantity, r.line_count) for r in requests] == [("CUP", 2, 2), ("MUG", 4, 2)]


def test_reserve_takes_from_available_when_enough() -> None:
    after, outcome = apply_request(SkuStock(available=5, held_by_order=0), request(quantity=2))

    assert after == SkuStock(available=3, held_by_order=2)
    assert (outcome.granted, outcome.available) == (2, 3)


def test_reserve_is_all_or_nothing_and_never_goes_negative() -> None:
    before = SkuStock(available=1, held_by_order=0)

    after, outcome = apply_request(before, request(quantity=2))

    assert after == before
    assert (outcome.granted, outcome.requested, outcome.available) == (0, 2, 1)


def test_a_repeated_reservation_for_the_same_order_takes_nothing_more() -> None:
    before = SkuStock(available=3, held_by_order=2)

    after, outcome = apply_request(before, request(quantity=2))

    assert after == before
    assert outcome.granted == 2


def test_release_gives_back_at_most_what_the_order_holds() -> None:
    after, outcome = apply_request(SkuStock(available=3, held_by_order=2), request(kind="release", quantity=5))

    assert after == SkuStock(available=5, held_by_order=0)
    assert outcome.granted == 2


def test_release_of_nothing_held_changes_nothing() -> None:
    before = SkuStock(available=3, held_by_order=0)

    after, outcome = apply_request(before, request(kind="release", quantity=1))

    assert after == before and outcome.granted == 0


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

    assert [e.record.model_dump()["event_id"] for e in first] == [e.record.model_dump()["event_id"] for e in second]


def test_released_lines_are_reported_once_every_line_is_back() -> None:
    [emit] = decide_order([result("CUP", 1, 1, kind="release"), result("MUG", 2, 0, kind="release")], NOW)

    assert isinstance(emit.record, InventoryReleased)
    assert [(line.sku, line.quantity) for line in emit.record.lines] == [("CUP", 1)]
