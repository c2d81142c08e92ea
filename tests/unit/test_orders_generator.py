from __future__ import annotations

import copy
import datetime
from collections import Counter
from io import BytesIO

import fastavro
import pytest

from ops.orders import (
    DECLINED_VARIANTS,
    INVALID_VARIANTS,
    GeneratedOrder,
    OrderMix,
    demand_by_sku,
    generate_orders,
    stock_shortfalls,
    summary,
)
from processors.adapters.catalog import DEMO_STOCK, OUT_OF_STOCK_SKU, plentiful_skus, scarce_skus
from processors.intake import validate
from schemas.catalog import record
from schemas.models import PaymentMethod, PlaceOrder, ShippingPriority

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)

# The payment simulator's conventions: method -> token prefixes it approves / declines.
APPROVED_PREFIXES = {
    PaymentMethod.CARD: ("tok_ok", "tok_flaky"),
    PaymentMethod.GIFT_CARD: ("gc_ok",),
    PaymentMethod.STORE_CREDIT: ("sc_",),
}
DECLINED_PREFIXES = {
    PaymentMethod.CARD: ("tok_declined", "tok_nofunds"),
    PaymentMethod.GIFT_CARD: ("gc_empty",),
    PaymentMethod.STORE_CREDIT: (),
}


@pytest.fixture(scope="module")
def orders() -> list[GeneratedOrder]:
    return generate_orders(2_000, seed=42, occurred_at=NOW)


def declines(order: PlaceOrder) -> bool:
    return any(tender.token.startswith(DECLINED_PREFIXES[tender.method]) for tender in order.tenders)


def skus_of(order: PlaceOrder) -> set[str]:
    return {line.sku for line in order.lines}


def test_the_same_seed_gives_the_same_orders() -> None:
    assert generate_orders(300, seed=7, occurred_at=NOW) == generate_orders(300, seed=7, occurred_at=NOW)


def test_another_seed_gives_other_orders() -> None:
    first, second = (generate_orders(50, seed=seed, prefix="run", occurred_at=NOW) for seed in (1, 2))

    assert [o.record.lines for o in first] != [o.record.lines for o in second]
    assert {o.record.event_id for o in first}.isdisjoint(o.record.event_id for o in second)


def test_another_prefix_gives_new_ids_to_the_same_orders() -> None:
    first, second = (generate_orders(50, seed=3, prefix=prefix, occurred_at=NOW) for prefix in ("a", "b"))

    assert [o.record.lines for o in first] == [o.record.lines for o in second]
    assert {o.order_id for o in first}.isdisjoint(o.order_id for o in second)
    assert {o.record.event_id for o in first}.isdisjoint(o.record.event_id for o in second)


def test_order_ids_carry_the_prefix_and_ids_are_unique(orders: list[GeneratedOrder]) -> None:
    assert orders[0].order_id == "s42-000001"
    assert len({o.order_id for o in orders}) == len(orders)
    assert len({o.record.event_id for o in orders}) == len(orders)


def test_rejected_orders_fail_intake_and_every_other_order_passes(orders: list[GeneratedOrder]) -> None:
    wrongly_valid = [o.variant for o in orders if o.expected == "rejected" and not validate(o.record)]
    wrongly_rejected = {
        o.order_id: validate(o.record) for o in orders if o.expected != "rejected" and validate(o.record)
    }

    assert not wrongly_valid
    assert not wrongly_rejected


def test_every_way_of_being_invalid_is_generated_and_rejected() -> None:
    invalid = generate_orders(1_000, seed=5, mix=OrderMix.parse("invalid=1"), occurred_at=NOW)

    assert {o.variant for o in invalid} == set(INVALID_VARIANTS)
    assert all(o.expected == "rejected" and validate(o.record) for o in invalid)


def test_payment_failures_are_exactly_the_orders_with_a_declining_tender(orders: list[GeneratedOrder]) -> None:
    accepted = [o for o in orders if o.expected != "rejected"]

    assert all(declines(o.record) == (o.expected == "payment-failed") for o in accepted)
    assert {o.variant for o in accepted if o.expected == "payment-failed"} == set(DECLINED_VARIANTS)


def test_every_tender_uses_a_token_the_payment_simulator_knows(orders: list[GeneratedOrder]) -> None:
    for order in orders:
        for tender in order.record.tenders:
            known = APPROVED_PREFIXES[tender.method] + DECLINED_PREFIXES[tender.method]
            assert tender.token.startswith(known), (order.order_id, tender)


def test_flaky_gateway_orders_still_end_paid(orders: list[GeneratedOrder]) -> None:
    flaky = [o for o in orders if any(t.token.startswith("tok_flaky") for t in o.record.tenders)]

    assert flaky
    assert all(o.scenario == "flaky" and o.expected == "created-paid-reserved" for o in flaky)


def test_shortage_is_exactly_the_orders_for_the_sku_without_stock(orders: list[GeneratedOrder]) -> None:
    paid = [o for o in orders if o.expected not in ("rejected", "payment-failed")]

    assert all((OUT_OF_STOCK_SKU in skus_of(o.record)) == (o.expected == "shortage") for o in paid)


def test_orders_expected_to_be_reserved_use_only_plentiful_skus() -> None:
    mixed = generate_orders(1_000, seed=11, mix=OrderMix(scarce=0.1), occurred_at=NOW)
    scarce = set(scarce_skus())

    for order in mixed:
        if order.expected == "created-paid-reserved":
            assert skus_of(order.record) <= set(plentiful_skus()), order.order_id
        if order.expected != "may-shortage":
            assert not skus_of(order.record) & scarce or order.expected == "rejected", order.order_id
    assert any(o.expected == "may-shortage" and skus_of(o.record) & scarce for o in mixed)


def test_the_default_mix_is_shared_out_exactly() -> None:
    assert OrderMix().counts(1_000) == {
        "valid": 700,
        "invalid": 100,
        "declined": 100,
        "shortage": 50,
        "flaky": 50,
        "scarce": 0,
    }
    assert sum(OrderMix().counts(7).values()) == 7


def test_proportions_follow_the_mix(orders: list[GeneratedOrder]) -> None:
    expected = Counter(o.expected for o in orders)

    assert expected == {"created-paid-reserved": 1500, "rejected": 200, "payment-failed": 200, "shortage": 100}


def test_a_mix_names_its_scenarios_and_leaves_the_rest_out() -> None:
    assert OrderMix.parse("valid=3, declined=1").counts(8) == {
        "valid": 6,
        "invalid": 0,
        "declined": 2,
        "shortage": 0,
        "flaky": 0,
        "scarce": 0,
    }
    with pytest.raises(ValueError, match="unknown scenario"):
        OrderMix.parse("valid=1,bogus=2")
    with pytest.raises(ValueError, match="non-negative"):
        OrderMix(valid=-1)


def test_orders_are_as_varied_as_a_shop_s(orders: list[GeneratedOrder]) -> None:
    accepted = [o.record for o in orders if o.expected != "rejected"]

    assert {len(o.lines) for o in accepted} == {1, 2, 3, 4, 5, 6}
    assert any(len(skus_of(o)) < len(o.lines) for o in accepted), "the same SKU on two lines"
    assert any({t.method for t in o.tenders} == set(PaymentMethod) for o in accepted), "card, gift card, credit"
    assert any(o.is_gift for o in accepted)
    assert any(o.priority is ShippingPriority.EXPRESS for o in accepted)
    assert {o.shipping_address.country for o in accepted} >= {"DE", "FR", "NL", "US", "GB", "JP"}
    assert len({o.customer_id for o in accepted}) > 100


def test_generated_orders_encode_with_the_avro_schema(orders: list[GeneratedOrder]) -> None:
    parsed = fastavro.parse_schema(copy.deepcopy(record(PlaceOrder.AVRO_NAME).definition))
    for order in orders[:300]:
        buffer = BytesIO()
        fastavro.schemaless_writer(buffer, parsed, order.record.model_dump())
        buffer.seek(0)
        assert PlaceOrder.model_validate(fastavro.schemaless_reader(buffer, parsed)) == order.record


def test_demand_counts_the_units_of_orders_that_reach_inventory(orders: list[GeneratedOrder]) -> None:
    demand = demand_by_sku(orders)
    reaching = [o for o in orders if o.expected in ("created-paid-reserved", "shortage")]

    assert sum(demand.values()) == sum(line.quantity for o in reaching for line in o.record.lines)


def test_the_demo_stock_covers_a_run_of_a_thousand_default_orders() -> None:
    assert stock_shortfalls(generate_orders(1_000, seed=1, occurred_at=NOW), DEMO_STOCK) == {}


def test_shortfalls_name_plentiful_skus_only() -> None:
    shortfalls = stock_shortfalls(generate_orders(200, seed=1, mix=OrderMix(scarce=0.2), occurred_at=NOW), {})

    assert shortfalls
    assert set(shortfalls) <= set(plentiful_skus())


def test_summary_lists_outcomes_and_variants() -> None:
    lines = summary(generate_orders(100, seed=1, occurred_at=NOW))

    assert lines[1].split() == ["created-paid-reserved", "75", "75.0%"]
    assert any(line.startswith("invalid") for line in lines)
