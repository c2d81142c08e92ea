from __future__ import annotations

import pytest

from processors.fulfillment.planner import plan
from schemas.models import (
    ItineraryStep,
    Money,
    ShippingPriority,
)
from tests.factories import Order, fulfillment_request
from topology.topics import fulfillment_activity

STANDARD, EXPRESS = ShippingPriority.STANDARD, ShippingPriority.EXPRESS


def described(itinerary_step: ItineraryStep) -> str:
    """`name key=value ...`: a step as the table below writes it."""
    assert itinerary_step.address == fulfillment_activity(itinerary_step.name).name
    return " ".join([itinerary_step.name, *(f"{key}={value}" for key, value in itinerary_step.arguments.items())])


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


# Carriers in price order: parcelpost (DE+EU, 20 kg, 120 cm), citycourier (DE, express, 10 kg, 80 cm),
# swiftair (world, express, 30 kg, 150 cm), freightco (DE+EU, 1 t, 300 cm), aircargo (world, express, 500 kg).
EVERY_CARRIER = "ship carrier=parcelpost alternates=citycourier,swiftair,freightco,aircargo"
BY_AIR = "ship carrier=swiftair alternates=aircargo"
UNSIGNED = "confirm-delivery signature=none"
SIGNED = "confirm-delivery signature=required"

PLANS = {
    "a light standard parcel at home: every carrier, cheapest first": Order(
        {"SKU-TEE-01": 1}, expected=["pick", "pack kind=standard", EVERY_CARRIER, UNSIGNED]
    ),
    "a fragile item is packed as fragile": Order(
        {"SKU-MUG-01": 1, "SKU-TEA-01": 2}, expected=["pick", "pack kind=fragile", EVERY_CARRIER, UNSIGNED]
    ),
    "cold chain wins over fragile": Order(
        {"SKU-MUG-01": 1, "SKU-CHOC-01": 1}, expected=["pick", "pack kind=cold-chain", EVERY_CARRIER, UNSIGNED]
    ),
    "a gift is wrapped after packing": Order(
        {"SKU-TEE-01": 1},
        is_gift=True,
        expected=["pick", "pack kind=standard", "gift-wrap", EVERY_CARRIER, UNSIGNED],
    ),
    "within the EU: no customs, no domestic courier": Order(
        {"SKU-TEE-01": 1},
        country="FR",
        expected=[
            "pick",
            "pack kind=standard",
            "ship carrier=parcelpost alternates=swiftair,freightco,aircargo",
            UNSIGNED,
        ],
    ),
    "outside the EU: customs, worldwide carriers only": Order(
        {"SKU-TEE-01": 1}, country="US", expected=["pick", "pack kind=standard", "customs origin=DE", BY_AIR, UNSIGNED]
    ),
    "Switzerland is outside the customs union": Order(
        {"SKU-TEE-01": 1}, country="CH", expected=["pick", "pack kind=standard", "customs origin=DE", BY_AIR, UNSIGNED]
    ),
    "express at home: express carriers only, cheapest first": Order(
        {"SKU-TEE-01": 1},
        priority=EXPRESS,
        expected=["pick", "pack kind=standard", "ship carrier=citycourier alternates=swiftair,aircargo", UNSIGNED],
    ),
    "express within the EU": Order(
        {"SKU-TEE-01": 1}, country="NL", priority=EXPRESS, expected=["pick", "pack kind=standard", BY_AIR, UNSIGNED]
    ),
    "heavy (22 kg): too heavy for parcelpost and the courier": Order(
        {"SKU-KBD-01": 20},
        expected=["pick", "pack kind=standard", "ship carrier=swiftair alternates=freightco,aircargo", SIGNED],
    ),
    "oversize (a 160 cm desk): freight": Order(
        {"SKU-DESK-01": 1},
        expected=["pick", "pack kind=standard", "ship carrier=freightco alternates=aircargo", SIGNED],
    ),
    "oversize and express: the express freight carrier only": Order(
        {"SKU-DESK-01": 1},
        priority=EXPRESS,
        expected=["pick", "pack kind=standard", "ship carrier=aircargo alternates=", SIGNED],
    ),
    "oversize abroad: customs and the worldwide freight carrier": Order(
        {"SKU-DESK-01": 1},
        country="JP",
        expected=["pick", "pack kind=standard", "customs origin=DE", "ship carrier=aircargo alternates=", SIGNED],
    ),
    "skis fit parcelpost by the estimate, whatever packing makes of them": Order(
        {"SKU-SKI-01": 1},
        expected=[
            "pick",
            "pack kind=standard",
            "ship carrier=parcelpost alternates=swiftair,freightco,aircargo",
            UNSIGNED,
        ],
    ),
    "no carrier takes an anvil: ship is planned without one, to fault": Order(
        {"SKU-ANVIL-01": 1}, expected=["pick", "pack kind=standard", "ship carrier= alternates=", SIGNED]
    ),
    "no carrier, abroad and express: still every step before ship": Order(
        {"SKU-ANVIL-01": 1},
        country="GB",
        priority=EXPRESS,
        is_gift=True,
        expected=["pick", "pack kind=standard", "gift-wrap", "customs origin=DE", "ship carrier= alternates=", SIGNED],
    ),
    "a total of exactly 250.00 EUR is not signed for": Order(
        {"SKU-TEE-01": 1}, total=eur(25_000), expected=["pick", "pack kind=standard", EVERY_CARRIER, UNSIGNED]
    ),
    "a total above 250.00 EUR is signed for": Order(
        {"SKU-TEE-01": 1}, total=eur(25_001), expected=["pick", "pack kind=standard", EVERY_CARRIER, SIGNED]
    ),
    "a total in another currency is signed for": Order(
        {"SKU-TEE-01": 1},
        total=Money(amount_minor=100, currency="USD"),
        expected=["pick", "pack kind=standard", EVERY_CARRIER, SIGNED],
    ),
    "everything at once: a valuable cold-chain gift to Switzerland, express": Order(
        {"SKU-CHEESE-01": 2, "SKU-WATCH-01": 1},
        country="CH",
        priority=EXPRESS,
        is_gift=True,
        expected=["pick", "pack kind=cold-chain", "gift-wrap", "customs origin=DE", BY_AIR, SIGNED],
    ),
}


@pytest.mark.parametrize("order", PLANS.values(), ids=PLANS.keys())
def test_the_plan_follows_from_the_order(order: Order) -> None:
    assert [described(s) for s in plan(fulfillment_request(order))] == order.expected


def test_the_plan_is_the_same_every_time() -> None:
    request = fulfillment_request(Order({"SKU-MUG-01": 2, "SKU-DESK-01": 1}, country="AT", is_gift=True))

    assert plan(request) == plan(request)
