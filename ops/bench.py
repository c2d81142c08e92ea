"""`make bench`: how fast the choreography runs on this machine, printed and saved as JSON under `.bench/`.

In one run, on one broker:
1. the ceiling: a raw confluent-kafka consume-and-produce passthrough, exactly once, of messages the size of
   a `PlaceOrder`;
2. one hop: order intake draining a backlog of orders alone, as a ratio to that ceiling;
3. the whole workflow at full speed: orders a second from `PlaceOrder` to each order's last event
   (`OrderRejected`, `PaymentFailed`, `InventoryShortage`, or the end of its fulfillment routing slip),
   with latencies;
4. the same at half that rate, for latency under a sustainable load;
with a share of the orders cancelled at random moments of their lives (both runs), timed from the
`CancelOrder` to the saga's answer (`OrderCancelled` or `OrderCancellationRejected`); and
with CPU seconds and peak resident memory of every process. Outcomes are matched by CloudEvents headers
(`ce_type`, `ce_subject`), so the measuring consumer decodes no body.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ops.orders import GeneratedOrder, OrderMix, demand_by_sku, generate_orders
from ops.platform import servers
from ops.produce import CancellationPlan, produce_orders
from ops.stock import set_stock
from ops.supervisor import Child
from ops.tables import assign_from_now
from processors.adapters.catalog import OUT_OF_STOCK_SKU
from processors.runtime.cloudevents import header
from processors.services import SERVICES
from processors.tracking.lag import consumer_lag
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.admin import wait_for_group
from topology.settings import PROJECT_ROOT, Settings
from topology.topics import (
    INVENTORY_EVENTS,
    ORDER_PARTITIONS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
)

BENCH_DIR = PROJECT_ROOT / ".bench"
# An order's last event: rejected, not paid, short of stock, or its routing slip ended.
OUTCOME_TYPES = {
    "oms.OrderRejected",
    "oms.PaymentFailed",
    "oms.InventoryShortage",
    "oms.RoutingSlipCompleted",
    "oms.RoutingSlipFaulted",
    "oms.RoutingSlipCompensationFailed",
}
INTAKE_TYPES = {"oms.OrderCreated", "oms.OrderRejected"}
CANCELLATION_TYPES = {"oms.OrderCancelled", "oms.OrderCancellationRejected"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Rate:
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


# --- the ceiling -----------------------------------------------------------------------------------


def transactional_passthrough(settings: Settings, count: int, size: int, commit_every_s: float) -> Rate:
    """Consume `count` messages of `size` bytes and produce each again, exactly once, committing every
    `commit_every_s` as the processors do."""
    admin = AdminClient(settings.kafka_config())
    source, sink = (f"bench.{name}.{uuid.uuid4().hex[:8]}" for name in ("source", "sink"))
    for future in admin.create_topics(
        [NewTopic(name, ORDER_PARTITIONS, settings.replication_factor) for name in (source, sink)]
    ).values():
        future.result(30)
    try:
        producer = Producer({**settings.kafka_config(), "enable.idempotence": True, "linger.ms": 5})
        payload = os.urandom(size)
        for index in range(count):
            while True:
                try:
                    producer.produce(source, key=f"order-{index}".encode(), value=payload)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        producer.flush(60)
        return _pass_through(settings, source, sink, count, commit_every_s)
    finally:
        for future in admin.delete_topics([source, sink]).values():
            future.result(30)


def _pass_through(settings: Settings, source: str, sink: str, count: int, commit_every_s: float) -> Rate:
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
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


# --- the choreography ------------------------------------------------------------------------------


@dataclass
class OutcomeClock:
    """When each order's outcome was first seen, from a consumer on a thread of its own."""

    settings: Settings
    types: set[str]
    topics: list[str]
    seen_at_ms: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._consumer = Consumer({**self.settings.kafka_config(), "group.id": f"bench-{uuid.uuid4().hex}"})
        assign_from_now(self._consumer, self.topics)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(2000, 0.05):
                if message.error():
                    continue
                headers = message.headers()
                kind = header(headers, "ce_type")
                if kind in self.types:
                    order_id = header(headers, "ce_subject") or ""
                    if order_id not in self.seen_at_ms:
                        self.seen_at_ms[order_id] = time.time_ns() // 1_000_000
                        self.kinds[order_id] = kind

    def wait_for(self, order_ids: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not order_ids <= self.seen_at_ms.keys():
            time.sleep(0.05)
        missing = order_ids - self.seen_at_ms.keys()
        if missing:
            raise TimeoutError(f"{len(missing)} orders had no outcome within {timeout_s:.0f}s, e.g. {min(missing)}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


@dataclass
class LagSampler:
    """Every second, each `oms.` group's lag summed over its partitions; keeps the largest seen."""

    settings: Settings
    largest: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._admin = AdminClient(self.settings.kafka_config())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            totals: dict[str, int] = {}
            for entry in consumer_lag(self._admin):
                totals[entry.group] = totals.get(entry.group, 0) + entry.lag
            for group, lag in totals.items():
                self.largest[group] = max(lag, self.largest.get(group, 0))

    def close(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return dict(sorted(self.largest.items()))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_orders(
    settings: Settings,
    orders: list[GeneratedOrder],
    rate_per_s: float | None,
    types: set[str],
    topics: list[str],
    cancellations: CancellationPlan | None = None,
) -> dict[str, Any]:
    """Produce the orders (at most `rate_per_s`) and the planned cancellations; time each to its outcome."""
    clock = OutcomeClock(settings, types, topics)
    answers = OutcomeClock(settings, CANCELLATION_TYPES, [ORDERS_EVENTS.name])
    lag = LagSampler(settings)
    order_ids = [order.order_id for order in orders]
    cancelled = cancellations.cancelled(order_ids) if cancellations else set()
    try:
        report = produce_orders(
            settings, [order.record for order in orders], rate_per_s, progress=False, cancellations=cancellations
        )
        clock.wait_for(set(order_ids), timeout_s=300)
        answers.wait_for(cancelled, timeout_s=300)
    finally:
        clock.close()
        answers.close()
        largest_lag = lag.close()
    produced = report.produced_at_ms
    latencies = [(clock.seen_at_ms[key] - produced[key]) / 1000 for key in order_ids]
    first, last = min(produced.values()), max(clock.seen_at_ms[key] for key in order_ids)
    result: dict[str, Any] = {
        "orders": len(orders),
        "offered_per_s": round(rate_per_s) if rate_per_s else "max",
        "orders_per_s": round(len(orders) / ((last - first) / 1000), 1),
        "latency_s": summarize(latencies),
        "max_consumer_lag": largest_lag,
    }
    if cancelled:
        asked = report.last_produced_at_ms
        result["cancellations"] = {
            "asked": len(cancelled),
            "cancelled": sum(1 for key in cancelled if answers.kinds[key] == "oms.OrderCancelled"),
            "rejected": sum(1 for key in cancelled if answers.kinds[key] == "oms.OrderCancellationRejected"),
            "latency_s": summarize([(answers.seen_at_ms[key] - asked[key]) / 1000 for key in cancelled]),
        }
    return result


def summarize(latencies: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(latencies, 0.50), 3),
        "p95": round(percentile(latencies, 0.95), 3),
        "p99": round(percentile(latencies, 0.99), 3),
        "max": round(max(latencies), 3),
        "mean": round(statistics.fmean(latencies), 3),
    }


def process_usage(pid: int | None) -> dict[str, float] | None:
    """CPU seconds used so far and peak resident memory (MB) of a live process."""
    if pid is None or not Path(f"/proc/{pid}").exists():
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    peak_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )
    return {"cpu_s": round(cpu_s, 1), "peak_rss_mb": round(peak_kb / 1024, 1)}


def run(
    settings: Settings, orders: int = 4000, seed: int = 42, mix: OrderMix | None = None, cancel_rate: float = 0.1
) -> dict[str, Any]:
    """Every measurement of the module docstring, with fresh processor processes."""
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    mix = mix or OrderMix()
    backlog = generate_orders(orders // 2, seed, prefix=f"{prefix}-hop", mix=mix)
    full = generate_orders(orders, seed + 1, prefix=f"{prefix}-full", mix=mix)
    half = generate_orders(orders // 2, seed + 2, prefix=f"{prefix}-half", mix=mix)
    stock = {sku: units + 10 for sku, units in demand_by_sku([*backlog, *full, *half]).items()}
    set_stock(settings, {**stock, OUT_OF_STOCK_SKU: 0})

    registry = registry_client(settings)
    order_size = round(
        statistics.fmean(len(RecordCodec(registry, ORDERS_COMMANDS.name).encode(o.record)) for o in full[:200])
    )
    ceiling = transactional_passthrough(
        settings, count=20_000, size=order_size, commit_every_s=settings.commit_interval_s
    )

    servers_before = {server.name: process_usage(server.running_pid()) for server in servers(settings)}
    admin = AdminClient(settings.kafka_config())
    children = {name: Child(name, "bench", settings.run_dir / "logs" / f"{name}-bench.log") for name in SERVICES}
    outcome_topics = [ORDERS_EVENTS.name, PAYMENTS_EVENTS.name, INVENTORY_EVENTS.name, ROUTING_SLIPS_EVENTS.name]
    backlog_ids = {order.order_id for order in backlog}
    try:
        # One hop: intake alone drains a backlog, timed from its first output to its last.
        backlog_outcomes = OutcomeClock(settings, OUTCOME_TYPES, outcome_topics)
        intake_outputs = OutcomeClock(settings, INTAKE_TYPES, [ORDERS_EVENTS.name])
        produce_orders(settings, [order.record for order in backlog], progress=False)
        children["intake"].start()
        intake_outputs.wait_for(backlog_ids, timeout_s=300)
        intake_outputs.close()
        times = intake_outputs.seen_at_ms.values()
        hop = Rate(len(backlog) - 1, (max(times) - min(times)) / 1000)

        # The rest of the choreography drains the backlog before the whole is measured.
        for name, child in children.items():
            if name != "intake":
                child.start()
        for service in SERVICES.values():
            wait_for_group(admin, service.group, members=1)
        backlog_outcomes.wait_for(backlog_ids, timeout_s=300)
        backlog_outcomes.close()

        plan = CancellationPlan(cancel_rate, seed) if cancel_rate else None
        at_full_speed = run_orders(settings, full, None, OUTCOME_TYPES, outcome_topics, plan)
        half_rate = at_full_speed["orders_per_s"] / 2
        at_half_speed = run_orders(settings, half, half_rate, OUTCOME_TYPES, outcome_topics, plan)
        processes = {
            name: process_usage(child.process.pid if child.process else None) for name, child in children.items()
        }
    finally:
        for child in children.values():
            if child.process is not None:
                child.process.terminate()
                child.process.wait(60)
    for server in servers(settings):
        usage, before = process_usage(server.running_pid()), servers_before[server.name]
        if usage and before:
            usage["cpu_s"] = round(usage["cpu_s"] - before["cpu_s"], 1)  # during the run, not since start
        processes[server.name] = usage
    return {
        "benchmark": "order-workflow",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count()},
        "commit_interval_s": settings.commit_interval_s,
        "mix": mix.weights(),
        "cancel_rate": cancel_rate,
        "order_message_bytes": order_size,
        "passthrough_per_s": round(ceiling.per_second),
        "intake_hop_per_s": round(hop.per_second),
        "intake_hop_vs_passthrough": round(hop.per_second / ceiling.per_second, 3),
        "full_speed": at_full_speed,
        "half_speed": at_half_speed,
        "processes": processes,
    }


def save(result: dict[str, Any]) -> Path:
    BENCH_DIR.mkdir(exist_ok=True)
    path = BENCH_DIR / f"{result['benchmark']}-{result['at'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def report_lines(result: dict[str, Any]) -> list[str]:
    full, half = result["full_speed"], result["half_speed"]
    lines = [
        f"raw passthrough (exactly once, {result['order_message_bytes']} B)  {result['passthrough_per_s']:>8,} msg/s",
        f"intake hop (Quix Streams, exactly once)      {result['intake_hop_per_s']:>8,} msg/s"
        f"  = {result['intake_hop_vs_passthrough']:.1%} of passthrough",
        f"orders to their last event at full speed     {full['orders_per_s']:>8,} orders/s"
        f"  latency p50 {full['latency_s']['p50']}s p95 {full['latency_s']['p95']}s p99 {full['latency_s']['p99']}s",
        f"orders at {half['offered_per_s']}/s (half speed)                    "
        f"latency p50 {half['latency_s']['p50']}s p95 {half['latency_s']['p95']}s p99 {half['latency_s']['p99']}s",
    ]
    for label, run in (("full speed", full), ("half speed", half)):
        if "cancellations" in run:
            asked, latency = run["cancellations"], run["cancellations"]["latency_s"]
            lines.append(
                f"cancellations at {label}: {asked['asked']} asked, {asked['cancelled']} cancelled, "
                f"{asked['rejected']} rejected; answered p50 {latency['p50']}s p99 {latency['p99']}s"
            )
    for label, run in (("full speed", full), ("half speed", half)):
        lags = run.get("max_consumer_lag", {})
        if lags:
            lines.append(
                f"largest consumer lag at {label} (messages): "
                + ", ".join(f"{group.removeprefix('oms.')} {lag:,}" for group, lag in lags.items())
            )
    for name, usage in result["processes"].items():
        if usage:
            lines.append(f"  {name:<14} cpu {usage['cpu_s']:>7.1f}s   peak rss {usage['peak_rss_mb']:>7.1f} MB")
    return lines
