"""Produce commands the way users do: Avro through the registry, CloudEvents headers, keyed for the workflow.

Each record's produce time is kept (epoch milliseconds, also set as the Kafka timestamp of the message), so
that a benchmark can measure how long the system takes from a command to its outcome.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from ops.progress import Bars, bars_for
from processors.runtime.encoder import Encoder
from processors.runtime.records import Emit, utc_now
from schemas.models import AvroRecord, CancelOrder, PlaceOrder, RetrySaga
from schemas.registry import registry_client
from topology.settings import Settings
from topology.topics import ORDERS_COMMANDS, TopicSpec

CLI_SOURCE = "oms.cli"
PRODUCER_CONFIG: dict[str, Any] = {"enable.idempotence": True, "linger.ms": 5}
FLUSH_TIMEOUT_S = 60.0
KEPT_ERRORS = 10


@dataclass(frozen=True)
class ProduceReport:
    topic: str
    requested: int
    delivered: int
    failed: int
    elapsed_s: float
    produced_at_ms: dict[str, int]
    """Key (order id, SKU) -> epoch ms when its first record was handed to the producer (its Kafka timestamp)."""
    errors: tuple[str, ...] = ()
    """The first few delivery errors, as librdkafka states them."""
    last_produced_at_ms: dict[str, int] = field(default_factory=dict)
    """Key -> epoch ms when its last record was handed to the producer (a cancellation after its order)."""
    ends: dict[int, int] = field(default_factory=dict)
    """Partition -> the offset after the last record delivered there: a group that committed it read them all."""

    @property
    def rate_per_s(self) -> float:
        return self.delivered / self.elapsed_s if self.elapsed_s else 0.0


class DeliveryFailed(Exception):
    """Some records were not acknowledged by the broker; the report says how many and why."""

    def __init__(self, report: ProduceReport) -> None:
        super().__init__(
            f"{report.failed} of {report.requested} records to {report.topic} were not delivered: "
            + "; ".join(report.errors)
        )
        self.report = report


def produce_orders(
    settings: Settings,
    orders: Sequence[PlaceOrder],
    rate_per_s: float | None = None,
    progress: Bars | bool | None = None,
    cancellations: CancellationPlan | None = None,
) -> ProduceReport:
    """Each order to `oms.orders.commands`, keyed by order id; at most `rate_per_s` a second when given.

    With `cancellations`, a share of the orders is followed by a `CancelOrder` at a random moment of its life.
    `progress` draws a progress bar on stderr (ops/progress.py); by default only when stderr is a terminal.
    Raises `DeliveryFailed` (carrying the report) when the broker did not take every order.
    """
    timeline: list[tuple[float, str, AvroRecord]] = [
        (index / rate_per_s if rate_per_s else 0.0, order.order_id, order) for index, order in enumerate(orders)
    ]
    if cancellations is not None:
        timeline.extend(cancellations.commands(timeline))
        timeline.sort(key=lambda entry: entry[0])
    keyed = [(key, record) for _, key, record in timeline]
    at_s = [at for at, _, _ in timeline] if rate_per_s or cancellations else None
    return produce_records(settings, ORDERS_COMMANDS, keyed, at_s=at_s, progress=progress)


@dataclass(frozen=True)
class CancellationPlan:
    """Cancel `share` of the orders (0..1), each after a uniformly random delay of up to `within_s`."""

    share: float
    seed: int
    within_s: float = 3.0

    def cancelled(self, order_ids: Sequence[str]) -> set[str]:
        """Which of the orders `commands` cancels."""
        return {order_id for _, order_id, _ in self.commands([(0.0, order_id, None) for order_id in order_ids])}

    def commands(self, placed: Sequence[tuple[float, str, Any]]) -> list[tuple[float, str, AvroRecord]]:
        chance = random.Random(self.seed)
        return [
            (at + chance.uniform(0, self.within_s), order_id, cancel_order(order_id, "changed my mind"))
            for at, order_id, _ in placed
            if chance.random() < self.share
        ]


def cancel_order(order_id: str, reason: str, requested_by: str = "customer") -> CancelOrder:
    return CancelOrder(
        event_id=uuid.uuid4(), order_id=order_id, occurred_at=utc_now(), reason=reason, requested_by=requested_by
    )


def produce_cancel(settings: Settings, order_id: str, reason: str, requested_by: str = "customer") -> CancelOrder:
    """Ask for an order's cancellation; returns the command as produced."""
    command = cancel_order(order_id, reason, requested_by)
    produce_records(settings, ORDERS_COMMANDS, [(order_id, command)], progress=False)
    return command


def produce_retry(settings: Settings, order_id: str) -> RetrySaga:
    """Ask the order's failed saga to resume; returns the command as produced."""
    [command] = produce_retries(settings, [order_id])
    return command


def produce_retries(settings: Settings, order_ids: Sequence[str]) -> list[RetrySaga]:
    """Ask each order's failed saga to resume, in one batch; returns the commands as produced."""
    commands = [RetrySaga(event_id=uuid.uuid4(), order_id=order_id, occurred_at=utc_now()) for order_id in order_ids]
    produce_records(settings, ORDERS_COMMANDS, [(command.order_id, command) for command in commands], progress=False)
    return commands


def produce_records(
    settings: Settings,
    topic: TopicSpec,
    keyed: Sequence[tuple[str, AvroRecord]],
    *,
    rate_per_s: float | None = None,
    at_s: Sequence[float] | None = None,
    progress: Bars | bool | None = None,
    source: str = CLI_SOURCE,
) -> ProduceReport:
    """Produce `(key, record)` pairs in order, idempotently, and wait until the broker has them all.

    Paced at `rate_per_s`, or each record at its offset in `at_s` (seconds from the start), or at once."""
    if rate_per_s is not None and rate_per_s <= 0:
        raise ValueError(f"rate must be positive, not {rate_per_s}")
    encode = Encoder(registry_client(settings), source)
    producer = Producer({**settings.producer_config(), **PRODUCER_CONFIG})
    deliveries = _Deliveries()
    produced_at_ms: dict[str, int] = {}
    last_produced_at_ms: dict[str, int] = {}
    with bars_for(progress) as bars:
        bar = bars.bar(f"producing to {topic.name}", total=len(keyed))
        started = time.monotonic()
        for index, (key, record) in enumerate(keyed):
            if at_s is not None:
                _wait_until(producer, started + at_s[index])
            elif rate_per_s is not None:
                _wait_until(producer, started + index / rate_per_s)
            outgoing = encode(Emit(topic, key, record))
            now_ms = time.time_ns() // 1_000_000
            produced_at_ms.setdefault(key, now_ms)
            last_produced_at_ms[key] = now_ms
            _produce(
                producer,
                topic=outgoing.topic,
                key=outgoing.key,
                value=outgoing.value,
                headers=list(outgoing.headers),
                timestamp=now_ms,
                on_delivery=deliveries.record,
            )
            producer.poll(0)
            bar.advance()
        undelivered = producer.flush(FLUSH_TIMEOUT_S)
        elapsed = time.monotonic() - started
    if undelivered:
        deliveries.errors.append(f"{undelivered} still unacknowledged after {FLUSH_TIMEOUT_S:.0f}s")
    report = ProduceReport(
        topic=topic.name,
        requested=len(keyed),
        delivered=deliveries.delivered,
        failed=len(keyed) - deliveries.delivered,
        elapsed_s=elapsed,
        produced_at_ms=produced_at_ms,
        errors=tuple(deliveries.errors[:KEPT_ERRORS]),
        last_produced_at_ms=last_produced_at_ms,
        ends=dict(deliveries.ends),
    )
    if report.failed:
        raise DeliveryFailed(report)
    return report


@dataclass
class _Deliveries:
    """Counts the broker's acknowledgements, as librdkafka's delivery callbacks report them."""

    delivered: int = 0
    errors: list[str] = field(default_factory=list)
    ends: dict[int, int] = field(default_factory=dict)

    def record(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.delivered += 1
            partition, offset = message.partition(), message.offset()
            self.ends[partition] = max(self.ends.get(partition, 0), offset + 1)
        elif len(self.errors) < KEPT_ERRORS:
            self.errors.append(f"{message.key()!r}: {error.str()}")


def _wait_until(producer: Producer, due: float) -> None:
    """Sleep until the record's slot, serving delivery callbacks meanwhile; a late record goes at once, so
    the average rate holds over the run."""
    while (remaining := due - time.monotonic()) > 0:
        producer.poll(remaining)


def _produce(producer: Producer, **message: Any) -> None:
    """Produce, waiting for room in librdkafka's queue when it is full."""
    while True:
        try:
            producer.produce(**message)
            return
        except BufferError:
            producer.poll(0.1)
