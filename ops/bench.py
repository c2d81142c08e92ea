"""`oms bench`: measure the local platform and save the figures as JSON under `.bench/`.

The raw confluent-kafka passthrough (consume, produce, commit in one transaction) is the ceiling that any
stream processor on this broker is compared with.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ops.platform import servers
from topology.settings import PROJECT_ROOT, Settings
from topology.topics import ORDER_PARTITIONS

BENCH_DIR = PROJECT_ROOT / ".bench"


@dataclass(frozen=True)
class Rate:
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def produce(settings: Settings, topic: str, count: int, size: int) -> Rate:
    """Idempotent producer, acks=all, as the processors produce."""
    producer = Producer({**settings.kafka_config(), "enable.idempotence": True, "linger.ms": 5})
    payload = os.urandom(size)
    started = time.perf_counter()
    for index in range(count):
        while True:
            try:
                producer.produce(topic, key=f"order-{index}".encode(), value=payload)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    return Rate(count, time.perf_counter() - started)


def transactional_passthrough(settings: Settings, source: str, sink: str, count: int, commit_every_s: float) -> Rate:
    """Consume `count` messages and produce each to `sink` exactly once, committing every `commit_every_s`."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    producer = Producer({**settings.kafka_config(), "transactional.id": f"bench-{uuid.uuid4().hex}", "linger.ms": 5})
    producer.init_transactions(30)
    consumer.subscribe([source])
    seen = 0
    started: float | None = None
    producer.begin_transaction()
    last_commit = time.perf_counter()
    while seen < count:
        for message in consumer.consume(1000, 0.5):
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(message.error())
            started = started or time.perf_counter()
            producer.produce(sink, key=message.key(), value=message.value())
            seen += 1
        if time.perf_counter() - last_commit >= commit_every_s or seen >= count:
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata()
            )
            producer.commit_transaction(30)
            producer.begin_transaction()
            last_commit = time.perf_counter()
    producer.abort_transaction(30)
    consumer.close()
    return Rate(seen, time.perf_counter() - (started or time.perf_counter()))


def resident_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def run(settings: Settings, count: int = 50_000, size: int = 512) -> dict[str, Any]:
    admin = AdminClient(settings.kafka_config())
    source, sink = (f"bench.{name}.{uuid.uuid4().hex[:8]}" for name in ("source", "sink"))
    for future in admin.create_topics(
        [NewTopic(name, ORDER_PARTITIONS, settings.replication_factor) for name in (source, sink)]
    ).values():
        future.result(30)
    try:
        produced = produce(settings, source, count, size)
        passthrough = transactional_passthrough(settings, source, sink, count, commit_every_s=0.1)
    finally:
        for future in admin.delete_topics([source, sink]).values():
            future.result(30)
    return {
        "benchmark": "platform",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "messages": count,
        "message_bytes": size,
        "partitions": ORDER_PARTITIONS,
        "produce_per_s": round(produced.per_second),
        "transactional_passthrough_per_s": round(passthrough.per_second),
        "passthrough": asdict(passthrough),
        "resident_mb": {server.name: resident_mb(server.running_pid()) for server in servers(settings)},
    }


def save(result: dict[str, Any]) -> Path:
    BENCH_DIR.mkdir(exist_ok=True)
    path = BENCH_DIR / f"{result['benchmark']}-{result['at'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
