"""A seeded generator of realistic `PlaceOrder` commands, each labelled with the outcome it should reach.

The same seed gives the same orders. Order ids are `<prefix>-<n>`, and event ids come from a generator
seeded by prefix and seed, so two runs with different prefixes never share an id, while their contents
(lines, customers, tenders) stay the same for the same seed.

What each label promises, and the conditions under which it is certain:

- `rejected`: the command breaks at least one rule of `processors.intake_rules.validate`; every other label's
  command passes it.
- `payment-failed`: valid, and one tender is refused by the payment simulator (`tok_declined...`,
  `tok_nofunds...`, `gc_empty...`); earlier tenders of the order are voided.
- `created-paid-reserved`: valid, every tender approved (`tok_ok...`, `tok_flaky...` after retries,
  `gc_ok...`, `sc_...`), and only plentiful SKUs (see `processors.adapters.catalog`).
- `shortage`: valid and paid, and one line is for `SKU-RARE-01`, which has no stock.
- `may-shortage`: valid and paid, and one line is for a scarce SKU (a little stock): whether it is reserved
  depends on which orders came first. Only orders with this label use scarce SKUs.

Stock is the condition every label depends on: the labels hold when, at the start of the run,
`SKU-RARE-01` has none and every other SKU has at least `demand_by_sku(orders)` units (`oms stock seed`
leaves enough for a few thousand orders of the default mix).
"""

from __future__ import annotations

import datetime
import random
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from processors.adapters.catalog import CURRENCY, OUT_OF_STOCK_SKU, PRODUCTS_BY_SKU, plentiful_skus, scarce_skus
from processors.intake_rules import MAX_LINES, MAX_ORDER_TOTAL_MINOR, MAX_QUANTITY_PER_LINE, MAX_TENDERS
from processors.runtime.records import utc_now
from schemas.models import Address, Money, OrderLine, PaymentMethod, PlaceOrder, ShippingPriority, Tender

Expected = Literal["created-paid-reserved", "rejected", "payment-failed", "shortage", "may-shortage"]
Scenario = Literal["valid", "invalid", "declined", "shortage", "flaky", "scarce"]

EXPECTED_BY_SCENARIO: Mapping[Scenario, Expected] = {
    "valid": "created-paid-reserved",
    "flaky": "created-paid-reserved",
    "invalid": "rejected",
    "declined": "payment-failed",
    "shortage": "shortage",
    "scarce": "may-shortage",
}

# Outcomes in which inventory is asked to reserve the order's lines.
RESERVING: frozenset[Expected] = frozenset({"created-paid-reserved", "shortage", "may-shortage"})


@dataclass(frozen=True)
class GeneratedOrder:
    record: PlaceOrder
    expected: Expected
    scenario: Scenario
    variant: str = ""
    """What makes the order its scenario, e.g. `bad-email` or `gift-card-empty`; empty for plain ones."""

    @property
    def order_id(self) -> str:
        return self.record.order_id


@dataclass(frozen=True)
class OrderMix:
    """Relative weights of the scenarios in a run; they need not sum to one."""

    valid: float = 0.70
    invalid: float = 0.10
    declined: float = 0.10
    shortage: float = 0.05
    flaky: float = 0.05
    scarce: float = 0.0

    def __post_init__(self) -> None:
        weights = self.weights()
        if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"mix weights must be non-negative and not all zero: {weights}")

    @classmethod
    def parse(cls, text: str) -> OrderMix:
        """`valid=0.8,invalid=0.2`; scenarios not named get weight 0."""
        weights: dict[str, float] = dict.fromkeys(get_args(Scenario), 0.0)
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            if name.strip() not in weights:
                raise ValueError(f"unknown scenario {name.strip()!r}; known: {', '.join(weights)}")
            weights[name.strip()] = float(value)
        return cls(**weights)

    def weights(self) -> dict[Scenario, float]:
        return {
            "valid": self.valid,
            "invalid": self.invalid,
            "declined": self.declined,
            "shortage": self.shortage,
            "flaky": self.flaky,
            "scarce": self.scarce,
        }

    def counts(self, total: int) -> dict[Scenario, int]:
        """`total` shared out in proportion to the weights (largest remainder), so small runs match too."""
        weights = self.weights()
        scale = total / sum(weights.values())
        exact = {name: weight * scale for name, weight in weights.items()}
        counts = {name: int(share) for name, share in exact.items()}
        by_remainder = sorted(exact, key=lambda name: exact[name] - counts[name], reverse=True)
        for name in by_remainder[: total - sum(counts.values())]:
            counts[name] += 1
        return counts


def generate_orders(
    count: int,
    seed: int,
    *,
    prefix: str | None = None,
    mix: OrderMix | None = None,
    occurred_at: datetime.datetime | None = None,
) -> list[GeneratedOrder]:
    """`count` orders in a seeded random order of scenarios, in the proportions of `mix`.

    Order ids are `<prefix>-000001`...; the prefix defaults to `s<seed>`.
    """
    prefix = prefix if prefix is not None else f"s{seed}"
    occurred_at = occurred_at or utc_now()
    content = random.Random(seed)
    ids = random.Random(f"{prefix}/{seed}")
    scenarios = [name for name, n in (mix or OrderMix()).counts(count).items() for _ in range(n)]
    content.shuffle(scenarios)
    width = max(6, len(str(count)))
    orders = []
    for number, scenario in enumerate(scenarios, start=1):
        basics = _Basics(
            order_id=f"{prefix}-{number:0{width}d}",
            event_id=uuid.UUID(int=ids.getrandbits(128), version=4),
            occurred_at=occurred_at,
        )
        record, variant = _SCENARIOS[scenario](content, basics)
        orders.append(GeneratedOrder(record, EXPECTED_BY_SCENARIO[scenario], scenario, variant))
    return orders


def expected_counts(orders: Iterable[GeneratedOrder]) -> Counter[Expected]:
    return Counter(order.expected for order in orders)


def demand_by_sku(orders: Iterable[GeneratedOrder]) -> dict[str, int]:
    """Units per SKU that inventory may be asked to reserve (a shortage order holds some for a moment)."""
    demand: Counter[str] = Counter()
    for order in orders:
        if order.expected in RESERVING:
            for line in order.record.lines:
                demand[line.sku] += line.quantity
    return dict(demand)


@dataclass(frozen=True)
class _Basics:
    order_id: str
    event_id: uuid.UUID
    occurred_at: datetime.datetime


# --- customers and addresses -------------------------------------------------------------------------

_FIRST_NAMES = (
    "Anna", "Ben", "Chloé", "David", "Elif", "Finn", "Greta", "Hiro", "Inès", "Jonas",
    "Katarzyna", "Lars", "Maya", "Noah", "Olivia", "Pablo", "Quinn", "Rosa", "Sven", "Yuki",
)  # fmt: skip
_LAST_NAMES = (
    "Schmidt", "Müller", "Dubois", "de Vries", "Rossi", "Smith", "Tanaka", "Novak", "García", "Jansen",
    "Weber", "Lefèvre", "O'Brien", "Bakker", "Sato", "Fischer", "Moreau", "Kowalski", "Brown", "Huber",
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

# country -> places (city, postal code) and streets; DE is home, the rest ship abroad.
_PLACES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "DE": (("Berlin", "10115"), ("München", "80331"), ("Hamburg", "20095"), ("Köln", "50667")),
    "AT": (("Wien", "1010"), ("Graz", "8010")),
    "NL": (("Amsterdam", "1012 AB"), ("Utrecht", "3511 AA")),
    "FR": (("Paris", "75001"), ("Lyon", "69002")),
    "IT": (("Milano", "20121"),),
    "CH": (("Zürich", "8001"),),
    "GB": (("London", "SW1A 1AA"), ("Manchester", "M1 1AE")),
    "US": (("New York, NY", "10001"), ("Austin, TX", "78701")),
    "JP": (("Tokyo", "100-0001"), ("Osaka", "530-0001")),
}
_STREETS: Mapping[str, tuple[str, ...]] = {
    "DE": ("Hauptstraße", "Gartenweg", "Bahnhofstraße"),
    "AT": ("Mariahilfer Straße",),
    "NL": ("Prinsengracht", "Oudegracht"),
    "FR": ("Rue de Rivoli", "Rue Mercière"),
    "IT": ("Via Torino",),
    "CH": ("Bahnhofstrasse",),
    "GB": ("Baker Street", "Deansgate"),
    "US": ("Main Street", "Congress Avenue"),
    "JP": ("Chiyoda 1-chome", "Umeda 2-chome"),
}
_COUNTRY_WEIGHTS: Mapping[str, int] = {
    "DE": 55, "FR": 8, "NL": 8, "AT": 5, "GB": 7, "US": 6, "IT": 4, "JP": 4, "CH": 3,
}  # fmt: skip


@dataclass(frozen=True)
class _Customer:
    customer_id: str
    name: str
    email: str


def _customer(rng: random.Random) -> _Customer:
    """One of a fixed population, so that customers come back across orders and runs."""
    number = rng.randrange(len(_FIRST_NAMES) * len(_LAST_NAMES))
    first, last = _FIRST_NAMES[number % len(_FIRST_NAMES)], _LAST_NAMES[number // len(_FIRST_NAMES)]
    domain = _EMAIL_DOMAINS[number % len(_EMAIL_DOMAINS)]
    return _Customer(f"cust-{number:04d}", f"{first} {last}", f"{_ascii_slug(first)}.{_ascii_slug(last)}@{domain}")


def _ascii_slug(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(char for char in decomposed.lower() if char.isalnum())


def _address(rng: random.Random, recipient: str) -> Address:
    country = rng.choices(list(_COUNTRY_WEIGHTS), weights=list(_COUNTRY_WEIGHTS.values()))[0]
    city, postal_code = rng.choice(_PLACES[country])
    return Address(
        recipient=recipient,
        line1=f"{rng.choice(_STREETS[country])} {rng.randint(1, 180)}",
        line2=f"Apartment {rng.randint(1, 40)}" if rng.random() < 0.2 else None,
        city=city,
        postal_code=postal_code,
        country=country,
    )


# --- lines and tenders -------------------------------------------------------------------------------

_LINE_COUNT_WEIGHTS = {1: 40, 2: 25, 3: 15, 4: 10, 5: 5, 6: 5}
_QUANTITY_WEIGHTS = {1: 60, 2: 20, 3: 10, 4: 6, 5: 4}
_VOUCHER_AMOUNTS = (500, 1000, 2500, 5000)
_PLENTIFUL = plentiful_skus()
_SCARCE = scarce_skus()


def _catalog_line(sku: str, quantity: int) -> OrderLine:
    price = Money(amount_minor=PRODUCTS_BY_SKU[sku].unit_price_minor, currency=CURRENCY)
    return OrderLine(sku=sku, quantity=quantity, unit_price=price)


def _line(rng: random.Random, sku: str, quantity: int | None = None) -> OrderLine:
    if quantity is None:
        quantity = rng.choices(list(_QUANTITY_WEIGHTS), weights=list(_QUANTITY_WEIGHTS.values()))[0]
    return _catalog_line(sku, quantity)


def _plentiful_lines(rng: random.Random, count: int | None = None) -> list[OrderLine]:
    """Distinct SKUs mostly; now and then the same SKU on two lines, as a shop's basket allows."""
    if count is None:
        count = rng.choices(list(_LINE_COUNT_WEIGHTS), weights=list(_LINE_COUNT_WEIGHTS.values()))[0]
    skus = rng.sample(_PLENTIFUL, count)
    if count >= 2 and rng.random() < 0.15:
        skus[-1] = skus[0]
    return [_line(rng, sku) for sku in skus]


def _total(lines: Iterable[OrderLine]) -> int:
    return sum(line.quantity * line.unit_price.amount_minor for line in lines)


def _token(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{rng.getrandbits(48):012x}"


Payers = list[tuple[PaymentMethod, str]]
PayersOf = Callable[[random.Random, _Customer], Payers]


def _payers(card_prefix: str) -> PayersOf:
    """A card, often alone; sometimes a gift card and store credit cover round amounts before it."""

    def payers(rng: random.Random, customer: _Customer) -> Payers:
        vouchers: Payers = []
        if rng.random() < 0.25:
            vouchers.append((PaymentMethod.GIFT_CARD, _token(rng, "gc_ok")))
        if rng.random() < 0.15:
            vouchers.append((PaymentMethod.STORE_CREDIT, f"sc_{customer.customer_id}"))
        return [*vouchers, (PaymentMethod.CARD, _token(rng, card_prefix))]

    return payers


_CARD_OK = _payers("tok_ok")


def _split(rng: random.Random, total: int, payers: Payers) -> list[Tender]:
    """Vouchers (gift cards, store credit) cover a round amount each, at most half of what is left to pay,
    and the one card pays the rest; so every tender pays something, in the order given."""
    assert [method for method, _ in payers].count(PaymentMethod.CARD) == 1, payers
    amounts: dict[int, int] = {}
    remaining = total
    for index, (method, _) in enumerate(payers):
        if method is not PaymentMethod.CARD:
            amounts[index] = min(rng.choice(_VOUCHER_AMOUNTS), remaining // 2)
            remaining -= amounts[index]
    return [
        Tender(method=method, token=token, amount=Money(amount_minor=amounts.get(index, remaining), currency=CURRENCY))
        for index, (method, token) in enumerate(payers)
    ]


def _place_order(
    rng: random.Random, basics: _Basics, lines: list[OrderLine], payers_of: PayersOf = _CARD_OK
) -> PlaceOrder:
    customer = _customer(rng)
    is_gift = rng.random() < 0.15
    recipient = _customer(rng).name if is_gift else customer.name
    return PlaceOrder(
        event_id=basics.event_id,
        order_id=basics.order_id,
        occurred_at=basics.occurred_at,
        customer_id=customer.customer_id,
        customer_email=customer.email,
        lines=lines,
        shipping_address=_address(rng, recipient),
        tenders=_split(rng, _total(lines), payers_of(rng, customer)),
        priority=ShippingPriority.EXPRESS if rng.random() < 0.2 else ShippingPriority.STANDARD,
        is_gift=is_gift,
    )


# --- scenarios ---------------------------------------------------------------------------------------

Built = tuple[PlaceOrder, str]


def _valid(rng: random.Random, basics: _Basics) -> Built:
    return _place_order(rng, basics, _plentiful_lines(rng)), ""


def _flaky(rng: random.Random, basics: _Basics) -> Built:
    return _place_order(rng, basics, _plentiful_lines(rng), _payers("tok_flaky")), "tok_flaky"


def _with_one_line_of(rng: random.Random, basics: _Basics, sku: str) -> PlaceOrder:
    lines = _plentiful_lines(rng, rng.randint(0, 3))
    lines.insert(rng.randint(0, len(lines)), _line(rng, sku, rng.randint(1, 2)))
    return _place_order(rng, basics, lines)


def _shortage(rng: random.Random, basics: _Basics) -> Built:
    return _with_one_line_of(rng, basics, OUT_OF_STOCK_SKU), OUT_OF_STOCK_SKU


def _scarce(rng: random.Random, basics: _Basics) -> Built:
    sku = rng.choice(_SCARCE)
    return _with_one_line_of(rng, basics, sku), sku


def _gift_card_then_card(gift_card_prefix: str, card_prefix: str) -> PayersOf:
    return lambda rng, customer: [
        (PaymentMethod.GIFT_CARD, _token(rng, gift_card_prefix)),
        (PaymentMethod.CARD, _token(rng, card_prefix)),
    ]


def _card_then_gift_card(gift_card_prefix: str) -> PayersOf:
    # The card is charged first, so the payment saga has to void it when the gift card is refused.
    return lambda rng, customer: [
        (PaymentMethod.CARD, _token(rng, "tok_ok")),
        (PaymentMethod.GIFT_CARD, _token(rng, gift_card_prefix)),
    ]


_DECLINES: Mapping[str, PayersOf] = {
    "card-declined": _payers("tok_declined"),
    "card-nofunds": _payers("tok_nofunds"),
    "gift-card-empty": _card_then_gift_card("gc_empty"),
    "card-declined-after-gift-card": _gift_card_then_card("gc_ok", "tok_declined"),
}


def _declined(rng: random.Random, basics: _Basics) -> Built:
    variant = rng.choice(DECLINED_VARIANTS)
    return _place_order(rng, basics, _plentiful_lines(rng), _DECLINES[variant]), variant


Corruption = Callable[[random.Random, PlaceOrder], PlaceOrder]


def _paid_in_full(order: PlaceOrder, lines: list[OrderLine], currency: str = CURRENCY) -> PlaceOrder:
    """The order with other lines and one card tender for their total, so that only the lines are wrong."""
    card = Tender(
        method=PaymentMethod.CARD,
        token=order.tenders[-1].token,
        amount=Money(amount_minor=_total(lines), currency=currency),
    )
    return order.model_copy(update={"lines": lines, "tenders": [card]})


def _first_line_changed(order: PlaceOrder, **changes: object) -> PlaceOrder:
    return _paid_in_full(order, [order.lines[0].model_copy(update=changes), *order.lines[1:]])


def _first_line_priced(order: PlaceOrder, amount_minor: int) -> PlaceOrder:
    return _first_line_changed(order, unit_price=Money(amount_minor=amount_minor, currency=CURRENCY))


def _card_amount_off_by(order: PlaceOrder, difference: int) -> PlaceOrder:
    card = order.tenders[-1]
    amount = Money(amount_minor=card.amount.amount_minor + difference, currency=card.amount.currency)
    return order.model_copy(update={"tenders": [*order.tenders[:-1], card.model_copy(update={"amount": amount})]})


def _in_currency(order: PlaceOrder, currency: str) -> PlaceOrder:
    def converted(money: Money) -> Money:
        return money.model_copy(update={"currency": currency})

    lines = [line.model_copy(update={"unit_price": converted(line.unit_price)}) for line in order.lines]
    tenders = [tender.model_copy(update={"amount": converted(tender.amount)}) for tender in order.tenders]
    return order.model_copy(update={"lines": lines, "tenders": tenders})


def _too_many_tenders(rng: random.Random, order: PlaceOrder) -> PlaceOrder:
    gift_cards: Payers = [(PaymentMethod.GIFT_CARD, _token(rng, "gc_ok")) for _ in range(MAX_TENDERS)]
    payers = [*gift_cards, (PaymentMethod.CARD, order.tenders[-1].token)]
    return order.model_copy(update={"tenders": _split(rng, _total(order.lines), payers)})


def _with_address(order: PlaceOrder, **changes: object) -> PlaceOrder:
    return order.model_copy(update={"shipping_address": order.shipping_address.model_copy(update=changes)})


_BIKE = PRODUCTS_BY_SKU["SKU-BIKE-01"]

# Each breaks one rule of intake, where the rule allows (an order without lines cannot be paid in full).
_CORRUPTIONS: Mapping[str, Corruption] = {
    "no-lines": lambda rng, order: order.model_copy(update={"lines": []}),
    "too-many-lines": lambda rng, order: _paid_in_full(order, [_catalog_line("SKU-CABLE-01", 1)] * (MAX_LINES + 1)),
    "negative-quantity": lambda rng, order: _first_line_changed(order, quantity=-rng.randint(1, 3)),
    "zero-quantity": lambda rng, order: _first_line_changed(order, quantity=0),
    "quantity-over-limit": lambda rng, order: _paid_in_full(
        order, [_catalog_line("SKU-CABLE-01", MAX_QUANTITY_PER_LINE + 1)]
    ),
    "zero-price": lambda rng, order: _first_line_priced(order, 0),
    "negative-price": lambda rng, order: _first_line_priced(order, -order.lines[0].unit_price.amount_minor),
    "total-over-limit": lambda rng, order: _paid_in_full(
        order, [_catalog_line(_BIKE.sku, MAX_ORDER_TOTAL_MINOR // _BIKE.unit_price_minor + 1)]
    ),
    "no-tenders": lambda rng, order: order.model_copy(update={"tenders": []}),
    "too-many-tenders": _too_many_tenders,
    "tenders-short": lambda rng, order: _card_amount_off_by(order, -1),
    "tenders-over": lambda rng, order: _card_amount_off_by(order, rng.randint(1, 500)),
    "mixed-currency": lambda rng, order: _paid_in_full(order, order.lines, currency="USD"),
    "lowercase-currency": lambda rng, order: _in_currency(order, "eur"),
    "bad-email": lambda rng, order: order.model_copy(
        update={"customer_email": rng.choice((order.customer_email.replace("@", "."), "x y@example.com"))}
    ),
    "blank-customer": lambda rng, order: order.model_copy(update={"customer_id": "  "}),
    "bad-country": lambda rng, order: _with_address(order, country=rng.choice(("Germany", "de", "DEU", ""))),
    "blank-recipient": lambda rng, order: _with_address(order, recipient=" "),
    "unknown-sku": lambda rng, order: _first_line_changed(order, sku=f"SKU-NOSUCH-{rng.randint(10, 99)}"),
}


def _invalid(rng: random.Random, basics: _Basics) -> Built:
    variant = rng.choice(INVALID_VARIANTS)
    return _CORRUPTIONS[variant](rng, _place_order(rng, basics, _plentiful_lines(rng))), variant


INVALID_VARIANTS: tuple[str, ...] = tuple(sorted(_CORRUPTIONS))
DECLINED_VARIANTS: tuple[str, ...] = tuple(sorted(_DECLINES))

_SCENARIOS: Mapping[Scenario, Callable[[random.Random, _Basics], Built]] = {
    "valid": _valid,
    "invalid": _invalid,
    "declined": _declined,
    "shortage": _shortage,
    "flaky": _flaky,
    "scarce": _scarce,
}


def summary(orders: Sequence[GeneratedOrder]) -> list[str]:
    """Lines that tell what a run should come to: outcomes with their shares, then scenarios and variants."""
    lines = [f"{'expected outcome':<24} {'orders':>7} {'share':>6}"]
    for expected, n in expected_counts(orders).most_common():
        lines.append(f"{expected:<24} {n:>7} {n / len(orders):>6.1%}")
    lines.append(f"{'scenario':<24} {'orders':>7}  variants")
    for scenario, n in Counter(order.scenario for order in orders).most_common():
        variants = Counter(order.variant for order in orders if order.scenario == scenario and order.variant)
        described = ", ".join(f"{variant} {count}" for variant, count in sorted(variants.items()))
        lines.append(f"{scenario:<24} {n:>7}  {described}".rstrip())
    return lines


def stock_shortfalls(orders: Iterable[GeneratedOrder], stock: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """SKU -> (demand, stock) where the run may reserve more than `stock` holds, so that orders labelled
    `created-paid-reserved` could end short. SKUs that are meant to run out are left out."""
    meant_to_run_out = {OUT_OF_STOCK_SKU, *_SCARCE}
    return {
        sku: (demand, stock.get(sku, 0))
        for sku, demand in sorted(demand_by_sku(orders).items())
        if sku not in meant_to_run_out and demand > stock.get(sku, 0)
    }
