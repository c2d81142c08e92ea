"""`make bench`: how fast the choreography runs on this machine, printed and saved as JSON under `.bench/`.

In one run, on one broker:
1. two ceilings, both moving messages the size of a `PlaceOrder` from one topic to another exactly once:
   a raw confluent-kafka consume-and-produce passthrough, timed from its first consumed message to its last
   transaction's commit; and a bare Quix Streams application, set up as the processors are
   (`make_application`) but copying bytes without decoding them, timed by a consumer of its output topic
   from the first arrival to the last (arrivals are committed transactions, as the next hop sees them);
2. one hop: order intake draining a backlog of orders alone, timed the same way, as a ratio to both
   ceilings;
3. the whole workflow at full speed: orders a second from `PlaceOrder` to each order's last event
   (`OrderRejected`, `PaymentFailed`, `InventoryShortage`, or the end of its fulfillment routing slip),
   with latencies, and latencies from `PlaceOrder` to `OrderShipped` for the orders that ship;
4. the same at half that rate, for latency under a sustainable load;
with a share of the orders cancelled at random moments of their lives (both runs), timed from the
`CancelOrder` to the saga's answer (`OrderCancelled` or `OrderCancellationRejected`); and
with CPU seconds and peak resident memory of every process. Outcomes are matched by CloudEvents headers
(`ce_type`, `ce_subject`), so the measuring consumer decodes no body.

What an order costs is charged over the measured part alone (runs 3 and 4, not start-up, ceilings or
backlog), from counters read before and after it, each time once the processors' committed offsets stand
still: CPU milliseconds per order of every processor, the broker and the registry; Kafka records written per
order to every topic, changelogs included (end offsets, so transaction markers count too); and records read
per order by every processor's consumer group (committed offsets, which step over markers too).

`--processors-from DIR` runs another checkout's processors under the same harness (its packages first on
their path, its root as their working directory); the result names the tree and its commit.

The bench needs the processors' consumer groups to itself: it refuses to start while any has members, and
reports a processor that exited during the run, as the figures then lack its work.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from quixstreams import Application

from ops.handover import before_run_all
from ops.orders import GeneratedOrder, OrderMix, demand_by_sku, generate_orders
from ops.platform import servers
from ops.produce import CancellationPlan, produce_orders
from ops.progress import Bar, Bars, bars_for
from ops.stock import set_stock
from ops.supervisor import Child
from ops.tables import assign_from_now, end_offsets
from processors.adapters.catalog import OUT_OF_STOCK_SKU
from processors.intake import is_duplicate_id_rejection_message
from processors.runtime.app import make_application
from processors.runtime.cloudevents import header
from processors.services import ENGINE, SERVICES, instances_run, services_run
from processors.tracking.lag import consumer_lag
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.admin import wait_for_group, wait_until_empty
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
# An order's last event: rejected, not paid, short of stock, or its routing slip ended. A rejection coded
# duplicate-order-id answers another command under the order's id, and is no order's outcome.
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
SHIPPED_TYPE = "oms.OrderShipped"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CEILING_MESSAGES = 20_000
# Orders in intake's backlog: enough that its start (assignment, first commit) is a small part of the time;
# with 2,000 the hop lasted 0.3 s and its rate moved in steps of a few per cent.
HOP_ORDERS = 10_000
TIMEOUT_S = 300.0
THIS_CHECKOUT = "this checkout"

T = TypeVar("T")


@dataclass(frozen=True)
class Rate:
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


# --- the ceilings ----------------------------------------------------------------------------------


@contextmanager
def filled_topics(settings: Settings, count: int, size: int) -> Iterator[tuple[str, str]]:
    """A new source topic holding `count` messages of `size` random bytes and an empty sink, shaped like the
    orders' topics; both deleted afterwards, so that every ceiling starts from the same backlog."""
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
        yield source, sink
    finally:
        for future in admin.delete_topics([source, sink]).values():
            future.result(30)


def transactional_passthrough(settings: Settings, count: int, size: int, commit_every_s: float) -> Rate:
    """Consume `count` messages of `size` bytes and produce each again, exactly once, committing every
    `commit_every_s` as the processors do."""
    with filled_topics(settings, count, size) as (source, sink):
        return _pass_through(settings, source, sink, count, commit_every_s)


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


def quix_passthrough(settings: Settings, count: int, size: int) -> Rate:
    """The same copy by a bare Quix Streams application configured as the processors' are: what Quix and
    exactly-once cost before any processor does its own work (throwaway group, state in a temporary folder)."""
    with filled_topics(settings, count, size) as (source, sink), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        app = make_application(f"bench-quix-{uuid.uuid4().hex[:8]}", settings, state_dir=Path(tmp))
        app.dataframe(app.topic(source, key_deserializer="bytes", value_deserializer="bytes")).to_topic(
            app.topic(sink, key_serializer="bytes", value_serializer="bytes")
        )
        consumer = Consumer({**settings.kafka_config(), "group.id": f"bench-{uuid.uuid4().hex}"})
        assign_from_now(consumer, [sink])
        give_up = threading.Event()
        try:
            with ThreadPoolExecutor(1) as pool:
                arrivals = pool.submit(time_arrivals, consumer, count, give_up)
                arrivals.add_done_callback(lambda _: app.stop())
                try:
                    run_in_foreground(app)
                finally:
                    give_up.set()  # the app ended before all arrived: no need to wait for the timeout
            return arrivals.result()
        finally:
            consumer.close()


def time_arrivals(consumer: Consumer, count: int, give_up: threading.Event, timeout_s: float = TIMEOUT_S) -> Rate:
    """From the first of `count` messages reaching `consumer` to the last: a hop's rate as its next hop sees it.

    Runs on a thread of its own while the measured application has the main one."""
    first: float | None = None
    last = 0.0
    seen = 0
    deadline = time.monotonic() + timeout_s
    while seen < count:
        if give_up.is_set() or time.monotonic() > deadline:
            raise TimeoutError(f"only {seen} of {count} messages arrived")
        arrived = sum(1 for message in consumer.consume(1000, 0.1) if not message.error())
        if arrived:
            last = time.perf_counter()
            first = first or last
            seen += arrived
    return Rate(seen - 1, last - (first or last))


def run_in_foreground(app: Application) -> None:
    """`app.run()` on this (the main) thread, as Quix needs to install its SIGINT and SIGTERM handlers; it
    leaves them installed, so ours are put back after it, for Ctrl-C to stop the rest of the bench."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        app.run()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


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
                if kind in self.types and not is_duplicate_id_rejection_message(headers):
                    order_id = header(headers, "ce_subject") or ""
                    if order_id not in self.seen_at_ms:
                        self.seen_at_ms[order_id] = time.time_ns() // 1_000_000
                        self.kinds[order_id] = kind

    def wait_for(self, order_ids: set[str], timeout_s: float, bar: Bar | None = None) -> None:
        """Until every order's outcome is seen; `bar` counts those seen."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not order_ids <= self.seen_at_ms.keys():
            if bar is not None and bar.drawn:
                # Membership tests, not a copy of the keys: the consumer's thread adds to them meanwhile.
                bar.update(sum(1 for order_id in order_ids if order_id in self.seen_at_ms))
            time.sleep(0.05)
        missing = order_ids - self.seen_at_ms.keys()
        if missing:
            raise TimeoutError(f"{len(missing)} orders had no outcome within {timeout_s:.0f}s, e.g. {min(missing)}")
        if bar is not None:
            bar.done()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


@dataclass
class LagSampler:
    """Every second, each `oms.` group's lag summed over its partitions (of `groups` only, when given: those of
    the processes measured); keeps the largest seen."""

    settings: Settings
    groups: Collection[str] | None = None
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
                if self.groups is None or group in self.groups:
                    self.largest[group] = max(lag, self.largest.get(group, 0))

    def close(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return dict(sorted(self.largest.items()))


def settled(read: Callable[[], T], quiet_s: float = 2.0, timeout_s: float = 60.0) -> T:
    """`read()` once two readings `quiet_s` apart agree: for what has no known end (which orders ship, when
    the processors have caught up). After `timeout_s`, the last reading."""
    last = read()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = read()
        if now == last:
            break
        last = now
    return last


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
    progress: Bars | bool | None = False,
    groups: Collection[str] | None = None,
) -> dict[str, Any]:
    """Produce the orders (at most `rate_per_s`) and the planned cancellations; time each to its outcome, and
    those that ship to their `OrderShipped` (read once every outcome is in: most orders never ship, so it is
    not waited for order by order)."""
    clock = OutcomeClock(settings, types, topics)
    answers = OutcomeClock(settings, CANCELLATION_TYPES, [ORDERS_EVENTS.name])
    shipments = OutcomeClock(settings, {SHIPPED_TYPE}, [ORDERS_EVENTS.name])
    lag = LagSampler(settings, groups)
    order_ids = [order.order_id for order in orders]
    cancelled = cancellations.cancelled(order_ids) if cancellations else set()
    pace = f"{rate_per_s:,.0f}/s" if rate_per_s else "full speed"
    try:
        with bars_for(progress) as bars:
            report = produce_orders(
                settings, [order.record for order in orders], rate_per_s, progress=bars, cancellations=cancellations
            )
            clock.wait_for(set(order_ids), TIMEOUT_S, bars.bar(f"{pace}: waiting for outcomes", len(order_ids)))
            answers.wait_for(cancelled, TIMEOUT_S, bars.bar(f"{pace}: waiting for cancellations", len(cancelled)))
            shipping = bars.bar(f"{pace}: waiting for shipments to settle")
            settled(lambda: len(shipments.seen_at_ms))
            shipping.done()
    finally:
        clock.close()
        answers.close()
        shipments.close()
        largest_lag = lag.close()
    produced = report.produced_at_ms
    latencies = [(clock.seen_at_ms[key] - produced[key]) / 1000 for key in order_ids]
    shipped = [(shipments.seen_at_ms[key] - produced[key]) / 1000 for key in order_ids if key in shipments.seen_at_ms]
    first, last = min(produced.values()), max(clock.seen_at_ms[key] for key in order_ids)
    result: dict[str, Any] = {
        "orders": len(orders),
        "offered_per_s": round(rate_per_s) if rate_per_s else "max",
        "orders_per_s": round(len(orders) / ((last - first) / 1000), 1),
        "latency_s": summarize(latencies),
        "shipped": {"orders": len(shipped), **({"latency_s": summarize(shipped)} if shipped else {})},
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


# --- what an order costs ---------------------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds (user and system) a live process has used so far, unrounded: small runs take differences."""
    if pid is None or not Path(f"/proc/{pid}").exists():
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_usage(pid: int | None) -> dict[str, float] | None:
    """CPU seconds used so far and peak resident memory (MB) of a live process; None once it has exited (a
    child not yet waited for lingers in /proc without its memory figures)."""
    cpu_s = cpu_seconds(pid)
    if pid is None or cpu_s is None:
        return None
    peak_kb = next(
        (
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmHWM")
        ),
        None,
    )
    return {"cpu_s": round(cpu_s, 1), "peak_rss_mb": round(peak_kb / 1024, 1)} if peak_kb is not None else None


def committed_offsets(admin: AdminClient, groups: list[str]) -> dict[str, int]:
    """Per consumer group, its committed offsets summed over partitions: how far it has read, markers
    included. A partition it never committed counts 0 (it reads from the beginning when it first does)."""
    totals = {}
    for group in groups:  # the API takes one group per request
        future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
        totals[group] = sum(tp.offset for tp in future.result().topic_partitions if tp.offset >= 0)
    return totals


@dataclass(frozen=True)
class Counters:
    """What the measured part is charged for, read before and after it."""

    cpu_s: dict[str, float]
    """Process name -> CPU seconds used since it started."""
    written: dict[str, int]
    """Topic -> offsets written (`end_offsets`)."""
    transaction_log: dict[str, int]
    """The transaction log's offsets written."""
    read: dict[str, int]
    """Consumer group -> offsets committed (`committed_offsets`)."""


def read_counters(admin: AdminClient, pids: dict[str, int | None], groups: list[str]) -> Counters:
    """Every counter, once the groups' committed offsets stand still: the processors have caught up, so the
    work of the orders before is in and none of it leaks into what comes after."""
    read = settled(lambda: committed_offsets(admin, groups))
    written = end_offsets(admin)
    transaction_log = end_offsets(admin, internal=True)
    cpu = {name: seconds for name, pid in pids.items() if (seconds := cpu_seconds(pid)) is not None}
    return Counters(cpu, written, transaction_log, read)


def per_order(
    before: Mapping[str, float], after: Mapping[str, float], orders: int, scale: float = 1.0
) -> dict[str, Any]:
    """Each key's growth from `before` to `after` (a key new in `after` grew from 0; one gone is left out), per
    order and times `scale`: those that grew (`each`) and all together (`total`)."""
    grown = {key: (value - before.get(key, 0)) * scale / orders for key, value in after.items()}
    return {
        "each": {key: round(value, 3) for key, value in sorted(grown.items()) if value},
        "total": round(sum(grown.values()), 3),
    }


def cost_per_order(before: Counters, after: Counters, orders: int) -> dict[str, Any]:
    """CPU milliseconds, records written and records read, per order of the measured part."""
    return {
        "cpu_ms_per_order": per_order(before.cpu_s, after.cpu_s, orders, scale=1000),
        "records_written_per_order": per_order(before.written, after.written, orders),
        "transaction_log_records_per_order": per_order(before.transaction_log, after.transaction_log, orders),
        "records_read_per_order": per_order(before.read, after.read, orders),
    }


# --- the run ---------------------------------------------------------------------------------------


def processors_tree(directory: Path | None) -> dict[str, Any]:
    """Which processors were measured: another checkout (`--processors-from`) or this one, at which commit,
    and whether its working tree differed from that commit (then the commit alone does not say what ran)."""
    path = directory or PROJECT_ROOT
    status = _git(path, "--no-optional-locks", "status", "--porcelain")
    return {
        "tree": str(directory) if directory else THIS_CHECKOUT,
        "commit": _git(path, "rev-parse", "--short", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def _git(path: Path, *args: str) -> str | None:
    """Git's answer about the tree at `path`, or None when it is no repository (or git is missing)."""
    try:
        done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


class GroupsBusy(Exception):
    """Processors are already running in the groups the bench needs to itself."""


def ensure_groups_free(admin: AdminClient, groups: list[str], settings: Settings) -> None:
    """Raise `GroupsBusy` when any of `groups` still has members once a stopped processor would have left it:
    someone else's processors (`oms run all`, integration tests, another bench) would share the partitions
    and the stock with the bench's own and spoil both. Checked before the bench sets stock, and again just
    before its processors start, as the ceilings leave a few seconds for someone else to start theirs."""
    if busy := wait_until_empty(admin, groups, settings):
        raise GroupsBusy(f"processors are running in {', '.join(busy)}; the bench needs these groups to itself")


def exited(children: dict[str, Child]) -> dict[str, int]:
    """The processors that have exited, with their exit codes: the figures then lack their work."""
    codes = {name: child.process.poll() if child.process else None for name, child in children.items()}
    return {name: code for name, code in codes.items() if code is not None}


def bench_children(settings: Settings, processors_from: Path | None, simulators: Path) -> dict[str, Child]:
    """A process per service `oms run all` runs (`settings.colocated`: the order-keyed processors as one
    engine, in as many instances as it runs), instance `bench` (`bench-<n>`), its simulators' ledgers in
    `simulators`. With
    `processors_from`, each runs that tree's code (its packages first on the path, its root as working
    directory), keeping this checkout's run folder: the state folders must match this broker's changelogs,
    not whatever that tree's own broker left."""
    env = {
        "OMS_METRICS_PORT": "0",  # measured from outside: no clash with an `oms run all` serving metrics
        "OMS_SIMULATORS_DIR": str(simulators),
    }
    if processors_from is not None:
        env |= {"PYTHONPATH": str(processors_from), "OMS_RUN_DIR": str(settings.run_dir)}
    children = {}
    for name in services_run(settings.colocated):
        count = instances_run(name, 1, settings)
        for index in range(count):
            label, instance = (name, "bench") if count == 1 else (f"{name}-{index}", f"bench-{index}")
            log = settings.run_dir / "logs" / f"{name}-{instance}.log"
            children[label] = Child(name, instance, log, env=env, cwd=processors_from)
    return children


def hop_service(children: Mapping[str, Child]) -> str:
    """What drains the backlog alone: intake, or the engine it runs in (every instance of it)."""
    return "intake" if any(child.name == "intake" for child in children.values()) else ENGINE


def run(
    settings: Settings,
    orders: int = 4000,
    seed: int = 42,
    mix: OrderMix | None = None,
    cancel_rate: float = 0.1,
    processors_from: Path | None = None,
    steady_rate: float | None = None,
    progress: bool | None = False,
) -> dict[str, Any]:
    """Every measurement of the module docstring, with fresh processor processes (`processors_from`: run
    another checkout's processors; `steady_rate`: offer the second run this many orders a second instead of
    half the measured rate, to compare latencies of two versions at one load). `progress`: a bar per phase
    on stderr (None: when it is a terminal)."""
    with Bars(progress) as bars:
        return _run(settings, orders, seed, mix, cancel_rate, processors_from, steady_rate, bars)


def _run(
    settings: Settings,
    orders: int,
    seed: int,
    mix: OrderMix | None,
    cancel_rate: float,
    processors_from: Path | None,
    steady_rate: float | None,
    bars: Bars,
) -> dict[str, Any]:
    admin = AdminClient(settings.kafka_config())
    ensure_groups_free(admin, [service.group for service in SERVICES.values()], settings)
    tree = processors_tree(processors_from)  # before the run, in case that tree changes during it
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    mix = mix or OrderMix()
    backlog = generate_orders(HOP_ORDERS, seed, prefix=f"{prefix}-hop", mix=mix)
    full = generate_orders(orders, seed + 1, prefix=f"{prefix}-full", mix=mix)
    half = generate_orders(orders // 2, seed + 2, prefix=f"{prefix}-half", mix=mix)
    stock = {sku: units + 10 for sku, units in demand_by_sku([*backlog, *full, *half]).items()}
    set_stock(settings, {**stock, OUT_OF_STOCK_SKU: 0})

    registry = registry_client(settings)
    order_size = round(
        statistics.fmean(len(RecordCodec(registry, ORDERS_COMMANDS.name).encode(o.record)) for o in full[:200])
    )
    measuring = bars.bar("ceiling: transactional pass-through")
    ceiling = transactional_passthrough(
        settings, count=CEILING_MESSAGES, size=order_size, commit_every_s=settings.commit_interval_s
    )
    measuring.done()
    measuring = bars.bar("ceiling: Quix pass-through")
    quix_hop = quix_passthrough(settings, count=CEILING_MESSAGES, size=order_size)
    measuring.done()

    servers_before = {server.name: process_usage(server.running_pid()) for server in servers(settings)}
    # The simulators stand for the outside world, and their ledgers grow with every run on a machine, their
    # lookups slower with them (a used machine's 360 MB fulfillment ledger cost the activity host about 0.4 ms
    # an order): each run gets fresh ones, so that runs compare the processors, not the history they follow.
    simulators = Path(tempfile.mkdtemp(prefix="bench-simulators-", dir=settings.run_dir))
    before_run_all(settings)
    children = bench_children(settings, processors_from, simulators)
    groups = sorted({SERVICES[child.name].group for child in children.values()})
    hopper = hop_service(children)
    outcome_topics = [ORDERS_EVENTS.name, PAYMENTS_EVENTS.name, INVENTORY_EVENTS.name, ROUTING_SLIPS_EVENTS.name]
    backlog_ids = {order.order_id for order in backlog}
    ensure_groups_free(admin, groups, settings)
    try:
        # One hop: intake (or the engine it runs in) alone drains a backlog, timed from its first output to its
        # last.
        backlog_outcomes = OutcomeClock(settings, OUTCOME_TYPES, outcome_topics)
        intake_outputs = OutcomeClock(settings, INTAKE_TYPES, [ORDERS_EVENTS.name])
        produce_orders(settings, [order.record for order in backlog], progress=bars)
        for child in children.values():
            if child.name == hopper:
                child.start()
        intake_outputs.wait_for(backlog_ids, TIMEOUT_S, bars.bar("backlog: intake draining", len(backlog_ids)))
        intake_outputs.close()
        times = intake_outputs.seen_at_ms.values()
        hop = Rate(len(backlog) - 1, (max(times) - min(times)) / 1000)

        # The rest of the choreography drains the backlog before the whole is measured.
        for child in children.values():
            if child.name != hopper:
                child.start()
        members = Counter(SERVICES[child.name].group for child in children.values())
        for group, count in members.items():
            wait_for_group(admin, group, members=count)
        backlog_outcomes.wait_for(backlog_ids, TIMEOUT_S, bars.bar("backlog: processors draining", len(backlog_ids)))
        backlog_outcomes.close()

        pids = {
            **{name: child.process.pid if child.process else None for name, child in children.items()},
            **{server.name: server.running_pid() for server in servers(settings)},
        }
        before = read_counters(admin, pids, groups)
        plan = CancellationPlan(cancel_rate, seed) if cancel_rate else None
        at_full_speed = run_orders(settings, full, None, OUTCOME_TYPES, outcome_topics, plan, bars, groups)
        # What the full-speed run alone cost: commits follow the load, so its transactions per order differ.
        at_full_speed["costs"] = cost_per_order(before, read_counters(admin, pids, groups), len(full))
        half_rate = steady_rate or at_full_speed["orders_per_s"] / 2
        at_half_speed = run_orders(settings, half, half_rate, OUTCOME_TYPES, outcome_topics, plan, bars, groups)
        after = read_counters(admin, pids, groups)
        died = exited(children)
        processes = {
            name: process_usage(child.process.pid if child.process else None) for name, child in children.items()
        }
    finally:
        for child in children.values():
            if child.process is not None:
                child.process.terminate()
                child.process.wait(60)
        shutil.rmtree(simulators, ignore_errors=True)
    for server in servers(settings):
        usage, since = process_usage(server.running_pid()), servers_before[server.name]
        if usage and since:
            usage["cpu_s"] = round(usage["cpu_s"] - since["cpu_s"], 1)  # during the run, not since start
        processes[server.name] = usage
    measured_orders = len(full) + len(half)
    return {
        "benchmark": "order-workflow",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count()},
        "processors_tree": tree,
        "commit_interval_s": settings.commit_interval_s,
        "mix": mix.weights(),
        "cancel_rate": cancel_rate,
        "steady_rate": steady_rate,
        "order_message_bytes": order_size,
        "ceiling_messages": CEILING_MESSAGES,
        "passthrough_per_s": round(ceiling.per_second),
        "quix_hop_per_s": round(quix_hop.per_second),
        "hop_processor": hopper,
        "intake_hop_per_s": round(hop.per_second),
        "intake_hop_vs_passthrough": round(hop.per_second / ceiling.per_second, 3),
        "intake_hop_vs_quix_hop": round(hop.per_second / quix_hop.per_second, 3),
        "full_speed": at_full_speed,
        "half_speed": at_half_speed,
        "measured_orders": measured_orders,
        **cost_per_order(before, after, measured_orders),
        "processes": processes,
        "exited_during_run": died,
    }


def save(result: dict[str, Any]) -> Path:
    BENCH_DIR.mkdir(exist_ok=True)
    path = BENCH_DIR / f"{result['benchmark']}-{result['at'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def report_lines(result: dict[str, Any]) -> list[str]:
    full, half = result["full_speed"], result["half_speed"]
    second = "half speed" if result.get("steady_rate") is None else f"{result['steady_rate']:g}/s"
    tree = result["processors_tree"]
    size = result["order_message_bytes"]
    died = result.get("exited_during_run", {})
    lines = [
        *(
            [f"WARNING: exited during the run, so the figures lack their work: {died} (exit codes; see .run/logs)"]
            if died
            else []
        ),
        f"processors measured: {tree['tree']} at {tree['commit'] or '?'}"
        + (" with uncommitted changes" if tree["dirty"] else ""),
        f"raw passthrough (exactly once, {size} B)  {result['passthrough_per_s']:>8,} msg/s",
        f"bare Quix Streams hop (exactly once, {size} B)  {result['quix_hop_per_s']:>8,} msg/s",
        f"{result.get('hop_processor', 'intake') + ' hop':<15}(Quix Streams, exactly once)"
        f" {result['intake_hop_per_s']:>8,} msg/s"
        f"  = {result['intake_hop_vs_passthrough']:.1%} of passthrough,"
        f" {result['intake_hop_vs_quix_hop']:.1%} of the bare Quix hop",
        f"orders to their last event at full speed     {full['orders_per_s']:>8,} orders/s"
        f"  latency {_percentiles(full['latency_s'])}",
        f"orders at {half['offered_per_s']}/s{' (half speed)' if result.get('steady_rate') is None else ''}"
        f"                    latency {_percentiles(half['latency_s'])}",
    ]
    for label, run in (("full speed", full), (second, half)):
        shipped = run["shipped"]
        latency = f": latency {_percentiles(shipped['latency_s'])}" if shipped["orders"] else ""
        lines.append(f"PlaceOrder to OrderShipped at {label}, {shipped['orders']} of {run['orders']} shipped{latency}")
    for label, run in (("full speed", full), (second, half)):
        if "cancellations" in run:
            asked, latency = run["cancellations"], run["cancellations"]["latency_s"]
            lines.append(
                f"cancellations at {label}: {asked['asked']} asked, {asked['cancelled']} cancelled, "
                f"{asked['rejected']} rejected; answered p50 {latency['p50']}s p99 {latency['p99']}s"
            )
    for label, run in (("full speed", full), (second, half)):
        lags = run.get("max_consumer_lag", {})
        if lags:
            lines.append(
                f"largest consumer lag at {label} (messages): "
                + ", ".join(f"{group.removeprefix('oms.')} {lag:,}" for group, lag in lags.items())
            )
    orders = result["measured_orders"]
    cpu = result["cpu_ms_per_order"]
    lines.append(f"processes (cpu over the whole run; per order over the {orders:,} orders at full and half speed)")
    for name, usage in result["processes"].items():
        if usage:
            lines.append(
                f"  {name:<14} cpu {usage['cpu_s']:>7.1f}s  {cpu['each'].get(name, 0.0):>8.2f} ms/order"
                f"   peak rss {usage['peak_rss_mb']:>7.1f} MB"
            )
    lines.append(f"  {'total':<14} {'':>12}  {cpu['total']:>8.2f} ms/order")
    lines += _per_order_lines(
        "Kafka records written per order by topic (offsets, incl. transaction markers)",
        result["records_written_per_order"],
    )
    if "transaction_log_records_per_order" in result:
        lines.append(
            f"transaction log records per order (about 3 a transaction): "
            f"{result['transaction_log_records_per_order']['total']:,.2f}"
        )
    if "costs" in full:
        costs = full["costs"]
        lines.append(
            f"at full speed alone: transaction log records per order "
            f"{costs['transaction_log_records_per_order']['total']:,.2f}, records written "
            f"{costs['records_written_per_order']['total']:,.2f}, "
            f"read {costs['records_read_per_order']['total']:,.2f}, "
            f"CPU {costs['cpu_ms_per_order']['total']:,.2f} ms per order"
        )
    lines += _per_order_lines(
        "records read per order by consumer group (committed offsets, incl. transaction markers)",
        result["records_read_per_order"],
    )
    return lines


def _percentiles(latency: dict[str, float]) -> str:
    return f"p50 {latency['p50']}s p95 {latency['p95']}s p99 {latency['p99']}s"


def _per_order_lines(title: str, figures: dict[str, Any]) -> list[str]:
    """A title with the total, then one line per part, largest first."""
    parts = sorted(figures["each"].items(), key=lambda part: -part[1])
    return [f"{title}: {figures['total']:,.2f} in all", *(f"  {name:<40} {value:>8,.2f}" for name, value in parts)]
