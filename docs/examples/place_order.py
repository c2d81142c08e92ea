"""Place one order from outside the OMS, with nothing but confluent-kafka and the schema registry.

    python docs/examples/place_order.py [ORDER_ID] [--bootstrap 127.0.0.1:9092] [--registry URL]

What a third-party producer needs (docs/producing.md): the key is the order id as UTF-8; the value is Avro in
the Confluent wire format under the subject `<topic>-<record full name>` (TopicRecordNameStrategy), written
with the schema the registry already has (producers never register schemas); `event_id` is a fresh UUID per
message; the CloudEvents headers let consumers route a message without reading its body.
"""

from __future__ import annotations

import argparse
import datetime
import uuid
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

TOPIC = "oms.orders.commands"
RECORD = "oms.orders.PlaceOrder"


def place_order_fields(order_id: str) -> dict[str, Any]:
    """A PlaceOrder intake accepts: two mugs and a tea, paid by card, shipped to Berlin."""
    return {
        "event_id": str(uuid.uuid4()),
        "order_id": order_id,
        "occurred_at": datetime.datetime.now(datetime.UTC),
        "customer_id": "c-7",
        "customer_email": "ada@example.com",
        "lines": [
            {"sku": "SKU-MUG-01", "quantity": 2, "unit_price": {"amount_minor": 1250, "currency": "EUR"}},
            {"sku": "SKU-TEA-01", "quantity": 1, "unit_price": {"amount_minor": 500, "currency": "EUR"}},
        ],
        "shipping_address": {
            "recipient": "Ada Lovelace",
            "line1": "1 Loop Road",
            "line2": None,
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "tenders": [{"method": "CARD", "token": "tok_ok_visa", "amount": {"amount_minor": 3000, "currency": "EUR"}}],
        "priority": "STANDARD",
        "is_gift": False,
    }


def cloudevent_headers(fields: dict[str, Any], source: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", fields["event_id"].encode()),
        ("ce_type", b"oms.PlaceOrder"),
        ("ce_source", source.encode()),
        ("ce_time", fields["occurred_at"].isoformat().encode()),
        ("ce_subject", fields["order_id"].encode()),
        ("content-type", b"application/avro"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("order_id", nargs="?", default=f"ext-{uuid.uuid4().hex[:10]}")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--registry", default="http://127.0.0.1:8081/apis/ccompat/v7")
    args = parser.parse_args()

    registry = SchemaRegistryClient({"url": args.registry})
    # The writer schema is the one registered for this topic and record: the registry is the contract.
    registered = registry.get_latest_version(f"{TOPIC}-{RECORD}").schema
    serializer = AvroSerializer(
        registry,
        registered,
        conf={"auto.register.schemas": False, "subject.name.strategy": topic_record_subject_name_strategy},
    )
    # Java's partitioner (murmur2), as every OMS producer and Java client uses: an order's records must meet
    # its other records in the same partition.
    producer = Producer(
        {"bootstrap.servers": args.bootstrap, "partitioner": "murmur2_random", "enable.idempotence": True}
    )

    fields = place_order_fields(args.order_id)
    value = serializer(fields, SerializationContext(TOPIC, MessageField.VALUE))
    producer.produce(
        TOPIC,
        key=args.order_id.encode(),
        value=value,
        headers=cloudevent_headers(fields, "example.shop"),
    )
    if producer.flush(10) != 0:
        raise SystemExit("the order was not delivered to Kafka within 10 s")
    print(args.order_id)


if __name__ == "__main__":
    main()
