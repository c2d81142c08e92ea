"""Set and read stock levels on the compacted `oms.inventory.stock` topic (key: SKU, latest record wins).

The stock processor takes a record from any source but its own (`oms.stock`) as an operator setting how
many units of a SKU are available, and reports the levels it then holds back to the topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from ops.produce import produce_records
from ops.tables import read_table
from processors.runtime.records import utc_now
from schemas.models import StockLevel
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK


def level_records(levels: Mapping[str, int]) -> list[StockLevel]:
    """An operator's declaration of the units available per SKU, a record per SKU."""
    negative = {sku: available for sku, available in levels.items() if available < 0}
    if negative:
        raise ValueError(f"stock cannot be negative: {negative}")
    now = utc_now()
    return [
        StockLevel(event_id=uuid.uuid4(), sku=sku, available=available, occurred_at=now)
        for sku, available in levels.items()
    ]


def set_stock(settings: Settings, levels: Mapping[str, int]) -> list[StockLevel]:
    """Declare the units available per SKU; returns the records produced."""
    records = level_records(levels)
    produce_records(settings, INVENTORY_STOCK, [(record.sku, record) for record in records], progress=False)
    return records


def read_stock(settings: Settings, timeout_s: float = 30.0) -> dict[str, int]:
    """The latest committed level of every SKU: the topic read from its beginning to its current end."""
    codec = RecordCodec(registry_client(settings), INVENTORY_STOCK.name)
    rows = read_table(settings, INVENTORY_STOCK.name, timeout_s)
    return {sku: _available(codec, row.value) for sku, row in sorted(rows.items())}


def _available(codec: RecordCodec, value: bytes) -> int:
    record = codec.decode(value)
    if not isinstance(record, StockLevel):
        raise TypeError(f"{INVENTORY_STOCK.name} carries {record.AVRO_NAME}, expected StockLevel")
    return record.available
