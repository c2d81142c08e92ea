from __future__ import annotations

import re

from processors.adapters.catalog import (
    DEMO_STOCK,
    OUT_OF_STOCK_SKU,
    PLENTIFUL_STOCK,
    PRODUCTS,
    PRODUCTS_BY_SKU,
    plentiful_skus,
    scarce_skus,
)


def test_every_product_has_demo_stock_and_every_stocked_sku_a_product() -> None:
    assert set(DEMO_STOCK) == set(PRODUCTS_BY_SKU)
    assert len(PRODUCTS_BY_SKU) == len(PRODUCTS), "SKUs are unique"


def test_skus_follow_one_pattern() -> None:
    assert all(re.fullmatch(r"SKU-[A-Z]+-\d{2}", product.sku) for product in PRODUCTS)


def test_the_out_of_stock_sku_is_listed_but_never_stocked() -> None:
    assert OUT_OF_STOCK_SKU == "SKU-RARE-01"
    assert DEMO_STOCK[OUT_OF_STOCK_SKU] == 0
    assert OUT_OF_STOCK_SKU not in plentiful_skus() + scarce_skus()


def test_most_skus_are_plentiful_and_a_few_scarce() -> None:
    assert len(plentiful_skus()) >= 15
    assert 1 <= len(scarce_skus()) <= 3
    assert all(DEMO_STOCK[sku] >= PLENTIFUL_STOCK for sku in plentiful_skus())


def test_products_have_positive_price_weight_and_size() -> None:
    for product in PRODUCTS:
        assert product.unit_price_minor > 0, product.sku
        assert product.weight_g > 0, product.sku
        assert min(product.length_cm, product.width_cm, product.height_cm) > 0, product.sku


def test_the_catalog_has_fragile_and_cold_chain_goods() -> None:
    assert any(product.fragile for product in PRODUCTS)
    assert any(product.cold_chain for product in PRODUCTS)
