"""The carriers we ship with, what each accepts, and the parcel facts they judge by: pure data and rules.

The planner picks carriers by `parcel_estimate` (the items as they are, unpacked); a carrier judges the
parcel as packed (`parcel_of`: packaging adds weight and padding). So a carrier chosen by the estimate
may refuse the packed parcel, and the ship step moves on to the next one: that is how the itinerary gets
revised. The simulator that applies these rules is in `processors.adapters.fulfillment_simulators`.

| carrier | weight | longest side | length + girth | ships to | express | price rank |
|---|---|---|---|---|---|---|
| parcelpost | 20 kg | 120 cm | 300 cm | DE and EU | no | 1 (cheapest) |
| citycourier | 10 kg | 80 cm | - | DE only | yes | 2 |
| swiftair | 30 kg | 150 cm | - | worldwide | yes | 3 |
| freightco | 1,000 kg | 300 cm | - | DE and EU | no | 4 |
| aircargo | 500 kg | 250 cm | - | worldwide | yes | 5 |
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from schemas.models import FulfillmentLine, FulfillmentRequest, ShippingPriority

# --- where parcels go ---------------------------------------------------------------------------------

HOME_COUNTRY = "DE"  # where the warehouse is, and so where every parcel leaves from

# The EU's member states: one customs territory (Monaco and a few overseas territories aside, which
# the shop does not ship to), so a parcel to any of them needs no customs declaration.
EU_COUNTRIES: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip

Zone = Literal["domestic", "eu", "world"]
ZONES: tuple[Zone, ...] = ("domestic", "eu", "world")  # each includes the ones before it


def zone_of(country: str) -> Zone:
    if country == HOME_COUNTRY:
        return "domestic"
    return "eu" if country in EU_COUNTRIES else "world"


# --- parcels ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parcel:
    """A parcel's weight and sides, the longest first."""

    weight_g: int
    longest_cm: int
    middle_cm: int
    shortest_cm: int

    @property
    def length_plus_girth_cm(self) -> int:
        return self.longest_cm + 2 * (self.middle_cm + self.shortest_cm)

    def __str__(self) -> str:
        return f"{self.weight_g:,} g, {self.longest_cm} x {self.middle_cm} x {self.shortest_cm} cm"


PackingKind = Literal["standard", "fragile", "cold-chain"]


@dataclass(frozen=True)
class Packaging:
    box_weight_g: int
    padding_cm: int
    """Added to each side of the contents."""


# Every box also gets filler worth this share of its contents' weight.
FILLER_WEIGHT_PERCENT = 10

PACKAGING: Mapping[PackingKind, Packaging] = {
    "standard": Packaging(box_weight_g=500, padding_cm=5),
    "fragile": Packaging(box_weight_g=800, padding_cm=8),  # bubble wrap all round
    "cold-chain": Packaging(box_weight_g=1_500, padding_cm=10),  # insulated box and ice packs
}


def packing_kind(lines: Iterable[FulfillmentLine]) -> PackingKind:
    """Cold chain wins over fragile (an insulated box is padded too), fragile over standard."""
    lines = list(lines)
    if any(line.cold_chain for line in lines):
        return "cold-chain"
    if any(line.fragile for line in lines):
        return "fragile"
    return "standard"


def parcel_estimate(request: FulfillmentRequest) -> Parcel:
    """The items as one block, unpacked: as long as the longest item, with a square cross-section just big
    enough for the items' total volume, and never narrower than any one item."""
    items = [(sorted((line.length_cm, line.width_cm, line.height_cm), reverse=True), line) for line in request.lines]
    longest = max(sides[0] for sides, _ in items)
    volume = sum(sides[0] * sides[1] * sides[2] * line.quantity for sides, line in items)
    middle = max(max(sides[1] for sides, _ in items), math.ceil(math.sqrt(volume / longest)))
    shortest = max(max(sides[2] for sides, _ in items), math.ceil(volume / (longest * middle)))
    weight = sum(line.weight_g * line.quantity for line in request.lines)
    return Parcel(weight, *sorted((longest, middle, shortest), reverse=True))


def parcel_of(request: FulfillmentRequest) -> Parcel:
    """The parcel as the carrier gets it: the items in the box their packing kind calls for."""
    contents = parcel_estimate(request)
    packaging = PACKAGING[packing_kind(request.lines)]
    weight = math.ceil(contents.weight_g * (100 + FILLER_WEIGHT_PERCENT) / 100) + packaging.box_weight_g
    padding = packaging.padding_cm
    return Parcel(weight, contents.longest_cm + padding, contents.middle_cm + padding, contents.shortest_cm + padding)


# --- carriers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarrierSpec:
    name: str
    max_weight_g: int
    max_longest_cm: int
    max_length_plus_girth_cm: int | None
    serves: Zone
    """The widest zone it ships to."""
    express: bool
    price_rank: int
    """1 is the cheapest."""

    def refusal(self, parcel: Parcel, country: str) -> str | None:
        """Why this carrier will not take the parcel to the country; None when it will."""
        if ZONES.index(zone_of(country)) > ZONES.index(self.serves):
            return f"does not ship to {country}"
        if parcel.weight_g > self.max_weight_g:
            return f"{parcel.weight_g:,} g is above its limit of {self.max_weight_g:,} g"
        if parcel.longest_cm > self.max_longest_cm:
            return f"the longest side, {parcel.longest_cm} cm, is above its limit of {self.max_longest_cm} cm"
        limit = self.max_length_plus_girth_cm
        if limit is not None and parcel.length_plus_girth_cm > limit:
            return f"length plus girth, {parcel.length_plus_girth_cm} cm, is above its limit of {limit} cm"
        return None


CARRIERS: tuple[CarrierSpec, ...] = (
    CarrierSpec("parcelpost", 20_000, 120, 300, serves="eu", express=False, price_rank=1),
    CarrierSpec("citycourier", 10_000, 80, None, serves="domestic", express=True, price_rank=2),
    CarrierSpec("swiftair", 30_000, 150, None, serves="world", express=True, price_rank=3),
    CarrierSpec("freightco", 1_000_000, 300, None, serves="eu", express=False, price_rank=4),
    CarrierSpec("aircargo", 500_000, 250, None, serves="world", express=True, price_rank=5),
)
CARRIERS_BY_NAME: Mapping[str, CarrierSpec] = {carrier.name: carrier for carrier in CARRIERS}


def eligible_carriers(parcel: Parcel, country: str, priority: ShippingPriority) -> tuple[CarrierSpec, ...]:
    """Carriers that take the parcel to the country, cheapest first; only express ones for an express order."""
    return tuple(
        sorted(
            (
                carrier
                for carrier in CARRIERS
                if carrier.refusal(parcel, country) is None
                and (carrier.express or priority is not ShippingPriority.EXPRESS)
            ),
            key=lambda carrier: carrier.price_rank,
        )
    )


# --- the interface shipping uses ----------------------------------------------------------------------


class CarrierRefused(Exception):
    """The carrier will not take this parcel (too heavy, too long, or not to that country)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Carriers(Protocol):
    """The carriers' booking and tracking systems; each call is idempotent under its key.

    Raise `TransientError` when a carrier cannot answer now and the same call may succeed later.
    """

    def create_label(self, idempotency_key: str, carrier: str, parcel: Parcel, country: str, *, order_id: str) -> str:
        """Book the parcel with the carrier: its label id. Raises `CarrierRefused` when it will not take it."""
        ...

    def void_label(self, idempotency_key: str, carrier: str, label_id: str) -> None:
        """Cancel a label the parcel has not been handed over on."""
        ...

    def confirm_delivery(
        self, idempotency_key: str, carrier: str, label_id: str, *, signature_required: bool, recipient: str
    ) -> str | None:
        """Wait for the carrier's proof of delivery: who signed for the parcel, None when no one had to."""
        ...
