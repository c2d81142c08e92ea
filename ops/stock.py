"""Set and read stock levels on the compacted `oms.inventory.stock` topic (key: SKU, latest record wins).

The inventory processor takes a record from any source but its own (`oms.inventory`) as an operator
setting how many units of a SKU are available, and reports the levels it then holds back to the topic.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from ops.produce import produce_records
from processors.runtime.records import utc_now
from schemas.models import StockLevel
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK

METADATA_TIMEOUT_S = 10.0


def set_stock(settings: Settings, levels: Mapping[str, int]) -> list[StockLevel]:
    """Declare the units available per SKU; returns the records produced."""
    negative = {sku: available for sku, available in levels.items() if available < 0}
    if negative:
        raise ValueError(f"stock cannot be negative: {negative}")
    now = utc_now()
    records = [
        StockLevel(event_id=uuid.uuid4(), sku=sku, available=available, occurred_at=now)
        for sku, available in levels.items()
    ]
    produce_records(settings, INVENTORY_STOCK, [(record.sku, record) for record in records], progress=False)
    return records


def read_stock(settings: Settings, timeout_s: float = 30.0) -> dict[str, int]:
    """The latest committed level of every SKU: the topic read from its beginning to its current end."""
    codec = RecordCodec(registry_client(settings), INVENTORY_STOCK.name)
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"oms-stock-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            # Transaction markers take offsets but never arrive, so the end is known from EOF events.
            "enable.partition.eof": True,
        }
    )
    try:
        ends = _committed_ends(consumer, INVENTORY_STOCK.name)
        consumer.assign([TopicPartition(INVENTORY_STOCK.name, partition, OFFSET_BEGINNING) for partition in ends])
        levels: dict[str, int] = {}
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{INVENTORY_STOCK.name}: partitions {sorted(ends)} not read to the end")
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                partition, offset = message.partition(), message.offset()
                if error is None:
                    sku = (message.key() or b"").decode()
                    value = message.value()
                    if value is None:
                        levels.pop(sku, None)
                    else:
                        levels[sku] = _available(codec, value)
                    offset += 1
                if partition in ends and offset is not None and offset >= ends[partition]:
                    del ends[partition]
        return dict(sorted(levels.items()))
    finally:
        consumer.close()


def _committed_ends(consumer: Consumer, topic: str) -> dict[int, int]:
    """The end offset of every non-empty partition, up to the last committed transaction (read_committed)."""
    metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics[topic]
    if metadata.error is not None:
        raise KafkaException(metadata.error)
    ends = {}
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S)
        if high > low:
            ends[partition] = high
    return ends


def _available(codec: RecordCodec, value: bytes) -> int:
    record = codec.decode(value)
    if not isinstance(record, StockLevel):
        raise TypeError(f"{INVENTORY_STOCK.name} carries {record.AVRO_NAME}, expected StockLevel")
    return record.available
