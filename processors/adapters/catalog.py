"""The demo shop's product catalog: what it sells, the facts fulfillment needs, and the stock `oms stock seed` sets.

Plain data, so that the order generator, the fulfillment planner and the tests read the same facts.
Prices are in euro cents; weights in grams; dimensions in centimetres (length x width x height of the item
as packed by the supplier).

Special products exist to drive fulfillment's failure paths on purpose (see
`processors.adapters.fulfillment_simulators`); they are stocked but left out of `plentiful_skus` and
`scarce_skus`, so the order generator never mixes them into demo orders:

- `SKU-SKI-01`, 118 cm long: fits parcelpost's 120 cm unpacked, not packed, so shipping revises the carrier;
- `SKU-ANVIL-01`, 1.2 t: no carrier takes it, so shipping faults and the slip compensates;
- `SKU-CRATE-01`, sealed: a box holding it cannot be unpacked, so compensating pack fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CURRENCY = "EUR"

# The only SKU whose orders certainly end in a shortage: it is listed but never stocked.
OUT_OF_STOCK_SKU = "SKU-RARE-01"

# Stock below this (and above zero) is scarce: concurrent orders may or may not get it.
PLENTIFUL_STOCK = 1_000


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price_minor: int
    weight_g: int
    length_cm: int
    width_cm: int
    height_cm: int
    fragile: bool = False
    cold_chain: bool = False
    special: bool = False
    """Only for orders that test a failure path on purpose; never in generated demo orders."""


PRODUCTS: tuple[Product, ...] = (
    Product("SKU-MUG-01", "Stoneware mug", 1290, 350, 12, 9, 10, fragile=True),
    Product("SKU-TEE-01", "Organic cotton T-shirt", 1990, 180, 30, 25, 2),
    Product("SKU-HOOD-01", "Zip hoodie", 4990, 600, 35, 30, 6),
    Product("SKU-SOCK-01", "Merino socks, 3 pairs", 1290, 150, 20, 10, 3),
    Product("SKU-BOOK-01", "Paperback novel", 1499, 320, 20, 13, 3),
    Product("SKU-TEA-01", "Loose-leaf green tea", 1150, 100, 12, 8, 8),
    Product("SKU-CABLE-01", "USB-C cable, 2 m", 990, 60, 15, 10, 2),
    Product("SKU-KBD-01", "Mechanical keyboard", 12900, 1100, 45, 15, 5),
    Product("SKU-HDPH-01", "Over-ear headphones", 8900, 400, 22, 20, 10),
    Product("SKU-LAMP-01", "Desk lamp", 3990, 1400, 40, 20, 20, fragile=True),
    Product("SKU-VASE-01", "Glass vase", 2450, 900, 30, 15, 15, fragile=True),
    Product("SKU-WINE-01", "Rioja, 0.75 l", 1890, 1300, 33, 9, 9, fragile=True),
    Product("SKU-PLANT-01", "Potted olive tree", 2990, 2000, 25, 25, 45, fragile=True),
    Product("SKU-CHOC-01", "Dark chocolate pralines", 890, 250, 20, 15, 4, cold_chain=True),
    Product("SKU-CHEESE-01", "Aged Gouda, 500 g", 1650, 550, 15, 15, 8, cold_chain=True),
    Product("SKU-ICE-01", "Vanilla ice cream tub", 690, 600, 15, 15, 12, cold_chain=True),
    Product("SKU-DESK-01", "Standing desk", 49900, 32000, 160, 80, 15),
    Product("SKU-BIKE-01", "Road bicycle", 89900, 9500, 170, 25, 95),
    Product("SKU-WATCH-01", "Limited-edition watch", 34900, 150, 12, 10, 8, fragile=True),
    Product("SKU-LEGO-01", "Collector's brick set", 19900, 2400, 48, 38, 12),
    Product(OUT_OF_STOCK_SKU, "Rare vinyl, first pressing", 29900, 300, 32, 32, 1, fragile=True),
    Product("SKU-SKI-01", "Junior touring skis, 118 cm", 14900, 2500, 118, 12, 8, special=True),
    Product("SKU-ANVIL-01", "Forged blacksmith's anvil, 1.2 t", 890000, 1_200_000, 110, 45, 80, special=True),
    Product("SKU-CRATE-01", "Sealed collector's crate", 7990, 8000, 50, 40, 30, special=True),
)

PRODUCTS_BY_SKU: Mapping[str, Product] = {product.sku: product for product in PRODUCTS}
SPECIAL_SKUS: frozenset[str] = frozenset(product.sku for product in PRODUCTS if product.special)

DEMO_STOCK: Mapping[str, int] = {
    "SKU-MUG-01": 2_500,
    "SKU-TEE-01": 5_000,
    "SKU-HOOD-01": 2_000,
    "SKU-SOCK-01": 6_000,
    "SKU-BOOK-01": 3_000,
    "SKU-TEA-01": 3_000,
    "SKU-CABLE-01": 8_000,
    "SKU-KBD-01": 1_000,
    "SKU-HDPH-01": 1_000,
    "SKU-LAMP-01": 1_200,
    "SKU-VASE-01": 1_000,
    "SKU-WINE-01": 1_800,
    "SKU-PLANT-01": 1_000,
    "SKU-CHOC-01": 4_000,
    "SKU-CHEESE-01": 1_500,
    "SKU-ICE-01": 1_000,
    "SKU-DESK-01": 1_000,
    "SKU-BIKE-01": 1_000,
    "SKU-WATCH-01": 5,
    "SKU-LEGO-01": 3,
    OUT_OF_STOCK_SKU: 0,
    "SKU-SKI-01": 1_000,
    "SKU-ANVIL-01": 1_000,
    "SKU-CRATE-01": 1_000,
}


def plentiful_skus(stock: Mapping[str, int] = DEMO_STOCK) -> tuple[str, ...]:
    """SKUs with enough stock that a run's orders are not expected to exhaust them; special ones left out."""
    return tuple(sku for sku, available in stock.items() if available >= PLENTIFUL_STOCK and sku not in SPECIAL_SKUS)


def scarce_skus(stock: Mapping[str, int] = DEMO_STOCK) -> tuple[str, ...]:
    """SKUs with a little stock: whether an order gets them depends on who came first; special ones left out."""
    return tuple(sku for sku, available in stock.items() if 0 < available < PLENTIFUL_STOCK and sku not in SPECIAL_SKUS)
