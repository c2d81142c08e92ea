"""Place one order from outside the OMS, with nothing but confluent-kafka and the schema registry, and follow it
on `oms.orders.events` alone until its outcome.

    python docs/examples/place_order.py [ORDER_ID] [--token tok_ok_visa] [--bootstrap 127.0.0.1:9092]
        [--registry URL] [--timeout-s 120]

What a third-party producer needs (docs/producing.md): the key is the order id as UTF-8; the value is Avro in
the Confluent wire format under the subject `<topic>-<record full name>` (TopicRecordNameStrategy), written
with the schema the registry already has (producers never register schemas); `event_id` is a fresh UUID per
message; the CloudEvents headers let consumers route a message without reading its body. Following reads
committed records only and dispatches on the `ce_type` header; the outcome's body is decoded with the schema
its id names.

Prints `placed ID`, a line per event of the order, then `outcome TYPE {fields}`; exits 0 once an outcome
arrives, 2 if none does in time. docs/examples/java/ is the same in Java.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

TOPIC = "oms.orders.commands"
RECORD = "oms.orders.PlaceOrder"
EVENTS = "oms.orders.events"
# The CloudEvents types with which an order's story ends on the orders topic.
OUTCOMES = {"oms.OrderDelivered", "oms.OrderRejected", "oms.OrderCancelled", "oms.OrderFailed"}


def place_order_fields(order_id: str, token: str = "tok_ok_visa") -> dict[str, Any]:
    """A PlaceOrder intake accepts: two mugs and a tea, paid with `token`, shipped to Berlin."""
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
        "tenders": [{"method": "CARD", "token": token, "amount": {"amount_minor": 3000, "currency": "EUR"}}],
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


def follower(bootstrap: str) -> Consumer:
    """A reader of the orders topic from its end: no earlier record is read, none of the order's is missed."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"example-{uuid.uuid4()}",  # offsets are never committed: the group only names the reader
            "enable.auto.commit": False,
            # The OMS writes in transactions: only what a transaction committed has happened.
            "isolation.level": "read_committed",
        }
    )
    partitions = consumer.list_topics(EVENTS, timeout=10).topics[EVENTS].partitions
    consumer.assign([TopicPartition(EVENTS, partition, end_of(consumer, partition)) for partition in partitions])
    return consumer


def end_of(consumer: Consumer, partition: int) -> int:
    _, high = consumer.get_watermark_offsets(TopicPartition(EVENTS, partition), timeout=10)
    return int(high)


def follow(consumer: Consumer, registry: SchemaRegistryClient, order_id: str, timeout_s: float) -> bool:
    """Prints the order's events as they come; True once its outcome has arrived."""
    decode = AvroDeserializer(registry)  # the writer's schema, by the id in each value
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error() or message.key() != order_id.encode():
            continue
        kind = dict(message.headers() or []).get("ce_type", b"").decode()
        print(f"event {kind}", flush=True)
        if kind in OUTCOMES:
            print(f"outcome {kind} {decode(message.value(), SerializationContext(EVENTS, MessageField.VALUE))}")
            return True
    print(f"no outcome for {order_id} within {timeout_s:.0f} s")
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("order_id", nargs="?", default=f"ext-{uuid.uuid4().hex[:10]}")
    parser.add_argument("--token", default="tok_ok_visa", help="the card's payment token (tok_declined... fails)")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--registry", default="http://127.0.0.1:8081/apis/ccompat/v7")
    parser.add_argument("--timeout-s", type=float, default=120.0)
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
    consumer = follower(args.bootstrap)

    fields = place_order_fields(args.order_id, args.token)
    value = serializer(fields, SerializationContext(TOPIC, MessageField.VALUE))
    producer.produce(
        TOPIC,
        key=args.order_id.encode(),
        value=value,
        headers=cloudevent_headers(fields, "example.shop"),
    )
    if producer.flush(10) != 0:
        raise SystemExit("the order was not delivered to Kafka within 10 s")
    print(f"placed {args.order_id}", flush=True)
    try:
        sys.exit(0 if follow(consumer, registry, args.order_id, args.timeout_s) else 2)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
