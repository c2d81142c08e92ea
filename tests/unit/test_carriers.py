from __future__ import annotations

from pathlib import Path

import pytest

from processors.adapters.carriers import (
    CARRIERS,
    CARRIERS_BY_NAME,
    EU_COUNTRIES,
    CarrierRefused,
    Parcel,
    eligible_carriers,
    parcel_estimate,
    parcel_of,
    zone_of,
)
from processors.adapters.fulfillment_simulators import (
    FulfillmentSimulators,
    IdempotencyKeyReused,
    UnknownEffect,
    default_fulfillment_ledger,
)
from schemas.models import ShippingPriority
from tests.factories import Order, fulfillment_request
from topology.settings import Settings

SMALL = Parcel(weight_g=1_000, longest_cm=30, middle_cm=20, shortest_cm=10)


@pytest.fixture
def simulators(tmp_path: Path) -> FulfillmentSimulators:
    return FulfillmentSimulators.open(tmp_path / "simulators" / "fulfillment.sqlite")


def test_zones_nest_home_in_the_eu_in_the_world() -> None:
    assert [zone_of(country) for country in ("DE", "FR", "CH", "GB", "US")] == [
        "domestic",
        "eu",
        "world",
        "world",
        "world",
    ]
    assert len(EU_COUNTRIES) == 27


def test_one_item_is_estimated_as_itself_longest_side_first() -> None:
    estimate = parcel_estimate(fulfillment_request(Order({"SKU-SKI-01": 1})))

    assert estimate == Parcel(weight_g=2_500, longest_cm=118, middle_cm=12, shortest_cm=8)


def test_many_items_make_a_block_as_long_as_the_longest_and_big_enough_for_all() -> None:
    estimate = parcel_estimate(fulfillment_request(Order({"SKU-KBD-01": 20})))  # 45 x 15 x 5 cm, 1.1 kg each

    assert estimate == Parcel(weight_g=22_000, longest_cm=45, middle_cm=39, shortest_cm=39)
    assert estimate.longest_cm * estimate.middle_cm * estimate.shortest_cm >= 20 * 45 * 15 * 5


@pytest.mark.parametrize(
    ("units", "packed"),
    [
        # +10 % filler, a 500 g box, 5 cm padding on each side
        ({"SKU-SKI-01": 1}, Parcel(weight_g=3_250, longest_cm=123, middle_cm=17, shortest_cm=13)),
        # fragile: an 800 g box, 8 cm of bubble wrap on each side
        ({"SKU-VASE-01": 1}, Parcel(weight_g=1_790, longest_cm=38, middle_cm=23, shortest_cm=23)),
        # cold chain: a 1,500 g insulated box, 10 cm on each side
        ({"SKU-ICE-01": 1}, Parcel(weight_g=2_160, longest_cm=25, middle_cm=25, shortest_cm=22)),
    ],
    ids=["standard", "fragile", "cold-chain"],
)
def test_packing_adds_filler_a_box_and_padding_by_kind(units: dict[str, int], packed: Parcel) -> None:
    assert parcel_of(fulfillment_request(Order(units))) == packed


@pytest.mark.parametrize(
    ("carrier", "parcel", "country", "refusal"),
    [
        ("parcelpost", SMALL, "FR", None),
        ("parcelpost", SMALL, "CH", "does not ship to CH"),
        ("citycourier", SMALL, "AT", "does not ship to AT"),
        ("swiftair", SMALL, "JP", None),
        ("parcelpost", Parcel(20_001, 30, 20, 10), "DE", "20,001 g is above its limit of 20,000 g"),
        ("parcelpost", Parcel(3_250, 123, 17, 13), "DE", "the longest side, 123 cm, is above its limit of 120 cm"),
        ("parcelpost", Parcel(5_000, 100, 60, 41), "DE", "length plus girth, 302 cm, is above its limit of 300 cm"),
        ("freightco", Parcel(1_000_001, 100, 50, 50), "DE", "1,000,001 g is above its limit of 1,000,000 g"),
    ],
)
def test_a_carrier_refuses_what_is_beyond_its_limits(
    carrier: str, parcel: Parcel, country: str, refusal: str | None
) -> None:
    assert CARRIERS_BY_NAME[carrier].refusal(parcel, country) == refusal


def test_express_orders_get_express_carriers_only_and_all_orders_the_cheapest_first() -> None:
    standard = eligible_carriers(SMALL, "DE", ShippingPriority.STANDARD)
    express = eligible_carriers(SMALL, "DE", ShippingPriority.EXPRESS)

    assert standard == tuple(sorted(CARRIERS, key=lambda carrier: carrier.price_rank))
    assert express == tuple(carrier for carrier in standard if carrier.express)


def test_a_label_is_created_once_per_key(simulators: FulfillmentSimulators) -> None:
    carriers, ledger = simulators.carriers, simulators.ledger

    first = carriers.create_label("key-1", "parcelpost", SMALL, "DE", order_id="o-1")
    again = carriers.create_label("key-1", "parcelpost", SMALL, "DE", order_id="o-1")
    other = carriers.create_label("key-2", "parcelpost", SMALL, "DE", order_id="o-1")

    assert first == again != other
    assert first.startswith("parcelpost-")
    assert ledger.count("label", "o-1") == 2


def test_a_key_reused_for_another_label_is_a_bug(simulators: FulfillmentSimulators) -> None:
    simulators.carriers.create_label("key-1", "parcelpost", SMALL, "DE", order_id="o-1")

    with pytest.raises(IdempotencyKeyReused):
        simulators.carriers.create_label("key-1", "swiftair", SMALL, "DE", order_id="o-1")


@pytest.mark.parametrize(
    ("carrier", "parcel", "reason"),
    [
        ("parcelpost", Parcel(3_250, 123, 17, 13), "the longest side, 123 cm, is above its limit of 120 cm"),
        ("nocarrier", SMALL, "there is no carrier named 'nocarrier'"),
    ],
)
def test_a_refused_parcel_gets_no_label(
    simulators: FulfillmentSimulators, carrier: str, parcel: Parcel, reason: str
) -> None:
    with pytest.raises(CarrierRefused) as refused:
        simulators.carriers.create_label("key-1", carrier, parcel, "DE", order_id="o-1")

    assert refused.value.reason == reason
    assert simulators.ledger.effects() == []


def test_a_label_is_voided_once_and_only_by_its_carrier(simulators: FulfillmentSimulators) -> None:
    carriers, ledger = simulators.carriers, simulators.ledger
    label_id = carriers.create_label("key-1", "parcelpost", SMALL, "DE", order_id="o-1")

    with pytest.raises(UnknownEffect):
        carriers.void_label("void-1", "swiftair", label_id)
    carriers.void_label("void-1", "parcelpost", label_id)
    carriers.void_label("void-1", "parcelpost", label_id)
    carriers.void_label("void-2", "parcelpost", label_id)  # another key: already void, nothing more

    assert ledger.count("void-label", "o-1") == 1
    assert ledger.outstanding("o-1") == []


def test_a_voided_label_is_never_delivered(simulators: FulfillmentSimulators) -> None:
    carriers = simulators.carriers
    label_id = carriers.create_label("key-1", "parcelpost", SMALL, "DE", order_id="o-1")
    carriers.void_label("void-1", "parcelpost", label_id)

    with pytest.raises(UnknownEffect, match="voided"):
        carriers.confirm_delivery("pod-1", "parcelpost", label_id, signature_required=False, recipient="Ada")


def test_the_ledger_lives_under_the_run_directory(tmp_path: Path) -> None:
    path = default_fulfillment_ledger(Settings(run_dir=tmp_path))

    assert path == tmp_path / "simulators" / "fulfillment.sqlite"
