"""`oms chaos`: orders with cancellations while processors are killed with SIGKILL every few seconds, and
between the kills the broker and the registry are killed and restarted, a processor is frozen past its session
timeout and the ledgers' disk runs full (`ChaosPlan`); then every order is reconciled exactly
(ops/reconciliation.py) and the time from the last fault to quiet is measured.

The pieces are reusable by the failure tests: an `Observer` that reads what the workflows publish from now on
(surviving a broker or registry outage), a `Fleet` of processor processes to kill and revive, the platform's
servers killed, stopped and restarted with the code `oms up` uses, and `platform_lock`, which every run that
stops the shared broker or registry holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Generic, TypeVar

from confluent_kafka import Consumer, Message
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.fulldisk import LedgerDisk
from ops.kafka import kafka_server
from ops.localserver import LocalServer, port_is_open
from ops.orders import GeneratedOrder, OrderMix, demand_by_sku, generate_orders
from ops.produce import CancellationPlan, produce_orders
from ops.reconciliation import Ledgers, Reconciliation, Seen, Stock, reconcile, terminal_outcomes
from ops.registry import registry_server
from ops.stock import read_stock, set_stock
from ops.supervisor import Child
from ops.tables import assign_from_now, end_offsets, open_transactions
from processors.adapters.catalog import OUT_OF_STOCK_SKU
from processors.adapters.fulfillment_simulators import FulfillmentLedger, default_fulfillment_ledger
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.runtime.cloudevents import header
from processors.stock import PROCESSOR as STOCK
from processors.stock import level_report_id
from schemas.models import OrderCancellationRejected, OrderCancelled, StockLevel
from schemas.registry import registry_client
from schemas.serde import RecordCodec, UndecodableRecord
from topology.settings import Settings
from topology.topics import (
    INVENTORY_EVENTS,
    INVENTORY_STOCK,
    NOTIFICATIONS_EVENTS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
    WORKFLOW_TOPICS,
)

# Held by whatever stops the shared broker or registry (this run, the failure tests), so that no other test
# run finds them gone; `flock /tmp/oms-broker.lock pytest ...` holds the same lock from outside.
PLATFORM_LOCK = Path("/tmp/oms-broker.lock")
# What the reconciliation reads: every order-keyed topic that tells an order's story, and the stock levels.
WATCHED = tuple(
    topic.name
    for topic in (
        ORDERS_EVENTS,
        PAYMENTS_EVENTS,
        INVENTORY_EVENTS,
        ROUTING_SLIPS_EVENTS,
        NOTIFICATIONS_EVENTS,
        INVENTORY_STOCK,
    )
)
DEAD_LETTER_TOPICS = tuple(topic.dead_letter_topic.name for topic in WORKFLOW_TOPICS)
CHAOS_MIX = OrderMix(scarce=0.0)  # scarce SKUs make outcomes depend on arrival order; the labels stay exact
SPARE_UNITS = 3
POLL_S = 0.2
T = TypeVar("T")
REVIVE_BACKOFF_S = 0.5
MAX_REVIVE_BACKOFF_S = 10.0
CRASH_LOOP_S = 30.0
"""A process that dies by itself this soon after its start is crash-looping: it is revived later each time."""
PLATFORM_QUIET_AFTER_S = 20.0
"""After the books are closed: how long no topic may grow for the platform to count as quiet (stale timers,
late retries and commits included)."""
PROGRESS_EVERY_S = 15.0
QUIET_S = 8.0
"""After every order ended: how long nothing new must arrive before the books are closed."""
PLATFORM_QUIET_S = 15.0
"""Before a run: how long no topic may grow for the orders of an earlier run to count as come to rest. Longer
than a processor's restart (a session timeout, then its start): a platform whose processor is restarting
looks quiet while the orders it has still to take on wait for it."""


# --- the lock --------------------------------------------------------------------------------------


@contextlib.contextmanager
def platform_lock(path: Path = PLATFORM_LOCK) -> Iterator[None]:
    """Exclusive use of the shared broker and registry; at once when an ancestor of this process holds the
    lock already (`flock /tmp/oms-broker.lock pytest ...`), else waiting for whoever has it."""
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not _held_by_an_ancestor(path):
                fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _held_by_an_ancestor(path: Path) -> bool:
    inode = os.stat(path).st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            holders.add(int(fields[4]))
    pid = os.getpid()
    while pid > 1:
        if pid in holders:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


# --- the platform's servers ------------------------------------------------------------------------


def kill_server(server: LocalServer) -> int:
    """SIGKILL, as a crash or an OOM kill would: no clean shutdown. Returns the pid killed."""
    pid = server.running_pid()
    if pid is None:
        raise RuntimeError(f"{server.name} is not running (no live pid in {server.pid_file})")
    os.kill(pid, signal.SIGKILL)
    _wait(
        lambda: server.running_pid() is None and not port_is_open(server.host, server.port), 30, f"{server.name} gone"
    )
    return pid


def restart_platform(settings: Settings) -> list[str]:
    """Start whatever of the broker and the registry is not running, as `oms up` does, and wait until both
    answer (a registry that outlived its broker reconnects by itself)."""
    messages = [server.start() for server in (kafka_server(settings), registry_server(settings))]
    registry = registry_server(settings)
    _wait(lambda: registry.is_ready(), registry.start_timeout_s, "the registry answering")
    return messages


# --- the processors --------------------------------------------------------------------------------


@dataclass
class Fleet:
    """Processor processes, one per name: killed with SIGKILL, and the dead ones revived, as a supervisor
    would (whatever killed them: us, or an error of their own)."""

    start: Callable[[str], subprocess.Popen[bytes]]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    killed: Counter[str] = field(default_factory=Counter)
    exited: list[tuple[str, int]] = field(default_factory=list)
    """Processes that died without our SIGKILL, with their exit codes."""
    _due: dict[str, float] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _crashes: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of_children(cls, settings: Settings, names: Sequence[str], instance: str = "chaos") -> Fleet:
        """Processes started here as `oms run NAME`, logs under `.run/logs/`."""
        log_dir = settings.run_dir / "logs"

        def start(name: str) -> subprocess.Popen[bytes]:
            child = Child(name, instance, log_dir / f"{name}-{instance}.log")
            child.start()
            assert child.process is not None
            return child.process

        fleet = cls(start)
        for name in names:
            fleet.processes[name] = start(name)
        return fleet

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        self.killed[name] += 1

    def revive(self) -> list[str]:
        """Start again every process that has died, at once after our SIGKILL; one that died by itself soon
        after it started waits longer each time (as `oms run all` backs off), so that a crash loop does not
        eat the machine. Their names."""
        revived = []
        now = time.monotonic()
        for name, process in list(self.processes.items()):
            code = process.poll()
            if code is None:
                continue
            if name not in self._due:
                self._due[name] = now
                if code != -signal.SIGKILL:
                    self.exited.append((name, code))
                    quick = now - self._started.get(name, 0.0) < CRASH_LOOP_S
                    self._crashes[name] = self._crashes[name] + 1 if quick else 0
                    self._due[name] += min(REVIVE_BACKOFF_S * 2 ** self._crashes[name], MAX_REVIVE_BACKOFF_S)
            if now >= self._due[name]:
                del self._due[name]
                self.processes[name] = self.start(name)
                self._started[name] = now
                revived.append(name)
        return revived

    def alive(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is None]

    def stop(self, timeout_s: float = 30.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


# --- what the workflows publish --------------------------------------------------------------------


@dataclass(frozen=True)
class Letter:
    """A dead letter: where it came from and why, in its `dlq.*` headers."""

    topic: str
    key: str | None
    headers: dict[str, bytes]
    value_size: int

    def says(self, name: str) -> str:
        return self.headers.get(name, b"").decode(errors="replace")


class Observer:
    """Reads the watched topics and every dead-letter topic from the moment it is made on (committed records
    only). It rides out outages: transport errors are skipped (the client reconnects and goes on from its
    position), and records it cannot decode while the registry is away are decoded once it is back."""

    def __init__(
        self,
        settings: Settings,
        registry: SchemaRegistryClient,
        topics: Collection[str] = WATCHED,
        dead_letter_topics: Collection[str] = DEAD_LETTER_TOPICS,
    ) -> None:
        self._consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": f"oms-chaos-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        self._codecs = {topic: RecordCodec(registry, topic) for topic in topics}
        self._dead_letter_topics = set(dead_letter_topics)
        assign_from_now(self._consumer, [*topics, *dead_letter_topics])
        self._undecoded: list[Message] = []
        self.seen: list[Seen] = []
        self.sources: list[str] = []
        """Each seen record's `ce_source`, in the order of `seen`."""
        self.letters: list[Letter] = []
        self.undecodable: list[str] = []
        """Records of the watched topics that are not records of the contract: why, one line each."""

    def poll(self, seconds: float = POLL_S) -> int:
        """Read what has come; the number of records read."""
        messages = [message for message in self._consumer.consume(2000, seconds) if message.error() is None]
        for message in messages:
            if message.topic() in self._dead_letter_topics:
                key = message.key()
                headers = {name: value or b"" for name, value in message.headers() or []}
                self.letters.append(
                    Letter(
                        message.topic(),
                        key.decode(errors="replace") if key else None,
                        headers,
                        len(message.value() or b""),
                    )
                )
            elif message.value() is not None:
                self._undecoded.append(message)
        self._decode()
        return len(messages)

    def _decode(self) -> None:
        waiting: list[Message] = []
        for message in self._undecoded:
            if waiting:  # the registry is away: keep the order of what is decoded
                waiting.append(message)
                continue
            try:
                record = self._codecs[message.topic()].decode(message.value())
            except UndecodableRecord as error:
                self.undecodable.append(f"{message.topic()}[{message.partition()}]@{message.offset()}: {error}")
                continue
            except Exception:
                waiting.append(message)
                continue
            self.seen.append(Seen(message.topic(), (message.key() or b"").decode(errors="replace"), record))
            self.sources.append(header(message.headers(), "ce_source") or "")
        self._undecoded = waiting

    @property
    def pending(self) -> int:
        """Records read and not decoded yet (the registry did not answer)."""
        return len(self._undecoded)

    def dead_letters(self, counted: Callable[[Letter], bool] = lambda letter: True) -> dict[str, int]:
        """New dead letters (those `counted`) per dead-letter topic, every topic named (0 for none)."""
        counts = Counter(letter.topic for letter in self.letters if counted(letter))
        return {topic: counts[topic] for topic in sorted(self._dead_letter_topics)}

    def wait_until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {timeout_s:.0f}s: {what}")
            self.poll()

    def close(self) -> None:
        self._consumer.close()


def ended(observer: Observer, order_ids: Collection[str], cancels: Mapping[str, int]) -> set[str]:
    """The orders that reached a terminal outcome and had every cancellation answered."""
    records: dict[str, list] = {}
    for item in observer.seen:
        records.setdefault(item.key, []).append(item.record)
    done = set()
    for order_id in order_ids:
        mine = records.get(order_id, [])
        answers = sum(1 for record in mine if isinstance(record, (OrderCancelled, OrderCancellationRejected)))
        if terminal_outcomes(mine) and answers >= cancels.get(order_id, 0):
            done.add(order_id)
    return done


def settle(observer: Observer, admin: AdminClient, quiet_s: float = QUIET_S, timeout_s: float = 120.0) -> None:
    """Read until every transaction open on the platform when it began has ended and nothing new has come for
    `quiet_s` since: the news, refunds and releases after each outcome, and what a processor killed
    mid-transaction had under way, which its successor can take on only once the broker has timed the
    transaction out."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    undecided = open_transactions(admin)
    while time.monotonic() - quiet_since < quiet_s or undecided:
        if time.monotonic() > deadline:
            return
        if observer.poll() or observer.pending:
            quiet_since = time.monotonic()
        if undecided and len(still := open_transactions(admin, undecided)) < len(undecided):
            undecided, quiet_since = still, time.monotonic()


# --- stock and ledgers -----------------------------------------------------------------------------


def stock_for(orders: Sequence[GeneratedOrder], spare: int = SPARE_UNITS) -> dict[str, int]:
    """Enough of every SKU the orders may reserve, plus `spare`; none of the out-of-stock SKU."""
    levels = {sku: units + spare for sku, units in demand_by_sku(orders).items()}
    levels[OUT_OF_STOCK_SKU] = 0
    return levels


def seed_stock(settings: Settings, observer: Observer, levels: Mapping[str, int], timeout_s: float = 60.0) -> None:
    """Once the platform is quiet (no earlier run's order still moving stock, which the reconciliation of this
    run's orders would count), set the levels, and wait until the stock processor has reported each seed."""
    wait_for_quiet(settings, timeout_s=timeout_s)
    seeds = set_stock(settings, levels)
    reports = {level_report_id(str(seed.event_id), seed.sku) for seed in seeds}

    def applied() -> bool:
        reported = {
            item.record.event_id
            for item, source in zip(observer.seen, observer.sources, strict=True)
            if isinstance(item.record, StockLevel) and source == STOCK
        }
        return reports <= reported

    observer.wait_until(applied, timeout_s, "the stock processor applying the seeded levels")


def wait_for_quiet(settings: Settings, quiet_s: float = PLATFORM_QUIET_S, timeout_s: float = 60.0) -> None:
    """Until no topic of the platform has grown for `quiet_s`: whatever ran before has finished its work."""
    if QuietWatch(settings).wait(quiet_s, timeout_s) is None:
        raise TimeoutError(f"the platform still busy after {timeout_s:.0f}s")


def read_ledgers(settings: Settings, order_ids: Collection[str]) -> Ledgers:
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    wanted = set(order_ids)
    return Ledgers(
        charged={order_id: gateway.approved_total(order_id) for order_id in wanted},
        returned={order_id: gateway.refunded_total(order_id) + gateway.credited_total(order_id) for order_id in wanted},
        fulfillment=[
            effect
            for effect in FulfillmentLedger(default_fulfillment_ledger(settings)).effects()
            if effect.order_id in wanted
        ],
    )


# --- the run ---------------------------------------------------------------------------------------


class Fault(StrEnum):
    """What a run does to the platform beside killing processors, each once at its turn."""

    BROKER = "broker"
    """kill -9 the broker, and start it again `broker_down_s` later."""
    REGISTRY = "registry"
    """kill -9 the schema registry, and start it again `registry_down_s` later."""
    FREEZE = "freeze"
    """SIGSTOP a processor for `freeze_s`, past its session timeout: the group moves on without it."""
    DISK = "disk"
    """Fill the ledgers' disk to the last byte for `disk_full_s`."""


@dataclass(frozen=True)
class ChaosPlan:
    orders: int = 2000
    kills: int = 20
    kill_every_s: float = 3.0
    cancel_share: float = 0.2
    seed: int = 7
    broker_restarts: int = 1
    broker_down_s: float = 3.0
    registry_restarts: int = 0
    registry_down_s: float = 3.0
    freeze_s: float = 0.0
    """How long one processor is frozen (0: none is)."""
    disk_full_s: float = 0.0
    """How long the ledgers' disk is full (0: it never is)."""
    outcome_timeout_s: float = 600.0
    rate_per_s: float | None = None
    """Orders a second; None: spread over the kills, so that they all land while orders are in flight."""

    @property
    def rate(self) -> float:
        return self.rate_per_s or max(5.0, self.orders / max(1.0, self.kills * self.kill_every_s))

    def faults(self) -> dict[int, list[Fault]]:
        """After which processor kill each fault comes: spread evenly over the kills, a broker restart first
        and any further ones last, so that the others meet a broker that has been restarted."""
        order = [Fault.BROKER] * min(1, self.broker_restarts)
        order += [Fault.FREEZE] * (self.freeze_s > 0) + [Fault.REGISTRY] * self.registry_restarts
        order += [Fault.DISK] * (self.disk_full_s > 0) + [Fault.BROKER] * max(0, self.broker_restarts - 1)
        schedule: dict[int, list[Fault]] = {}
        for turn, fault in enumerate(order, start=1):
            schedule.setdefault(max(1, round(turn * self.kills / (len(order) + 1))), []).append(fault)
        return schedule


@dataclass
class ChaosResult:
    reconciliation: Reconciliation
    events: list[str]
    """What was done when, for the report: `+12.3s kill -9 payments (pid 123)`."""
    fleet_exits: list[tuple[str, int]]
    undecodable: list[str]
    orders: int
    unfinished: int
    not_injected: list[str] = field(default_factory=list)
    """Faults of the plan this run could not cause, and why."""
    ended_after_fault_s: float | None = None
    """From the end of the last fault to the last order's outcome."""
    quiet_after_fault_s: float | None = None
    """From the end of the last fault to the platform's last write of any kind (None: never quiet)."""

    @property
    def ok(self) -> bool:
        return self.reconciliation.ok and not self.unfinished and not self.undecodable

    def report(self) -> str:
        lines = ["chaos run", *(f"  {event}" for event in self.events)]
        lines.extend(f"not injected: {why}" for why in self.not_injected)
        if self.fleet_exits:
            exits = Counter(f"{name} (exit {code})" for name, code in self.fleet_exits)
            lines.append("processors that exited by themselves: " + ", ".join(f"{k} x{n}" for k, n in exits.items()))
        lines.extend(f"undecodable: {line}" for line in self.undecodable[:20])
        if self.unfinished:
            lines.append(f"{self.unfinished} of {self.orders} orders had no terminal outcome in time")
        if self.ended_after_fault_s is not None:
            quiet = "never" if self.quiet_after_fault_s is None else f"{self.quiet_after_fault_s:.1f}s"
            lines.append(
                f"after the last fault: every order ended in {self.ended_after_fault_s:.1f}s, "
                f"the platform wrote its last record at {quiet} (nothing for {PLATFORM_QUIET_AFTER_S:.0f}s after)"
            )
        lines.append(self.reconciliation.report())
        return "\n".join(lines)


class _Clock:
    def __init__(self) -> None:
        self._started = time.monotonic()
        self.events: list[str] = []

    def note(self, event: str, echo: Callable[[str], None] | None) -> None:
        line = f"+{time.monotonic() - self._started:6.1f}s {event}"
        self.events.append(line)
        if echo is not None:
            echo(line)


@dataclass
class _Ongoing:
    """A fault under way, and how it ends."""

    ends_at: float
    end: Callable[[], None]
    frozen: str | None = None
    """The processor it holds stopped, which no kill may pick meanwhile."""


def run_chaos(
    settings: Settings,
    fleet: Fleet,
    plan: ChaosPlan,
    *,
    prefix: str | None = None,
    echo: Callable[[str], None] | None = None,
    disk: LedgerDisk | None = None,
) -> ChaosResult:
    """Produce `plan.orders` orders (a share cancelled) while processors of `fleet` are killed one at a time
    every `kill_every_s`, and the plan's faults come between the kills (`ChaosPlan.faults`); wait for every
    order to end and the platform to fall quiet; reconcile.

    The caller holds `platform_lock` and owns `fleet` (started, and stopped afterwards) and `disk` (the
    ledgers' own disk, entered before the fleet started)."""
    chance = random.Random(plan.seed)
    clock = _Clock()
    orders = generate_orders(plan.orders, plan.seed, prefix=prefix or f"chaos-{uuid.uuid4().hex[:6]}", mix=CHAOS_MIX)
    order_ids = [order.order_id for order in orders]
    cancellations = CancellationPlan(plan.cancel_share, plan.seed, within_s=3.0)
    cancels = dict.fromkeys(cancellations.cancelled(order_ids), 1)
    schedule = plan.faults()
    not_injected = []
    if plan.disk_full_s > 0 and (disk is None or not disk.mounted):
        not_injected.append(f"a full disk ({disk.why_not if disk is not None else 'no disk of its own given'})")
    observer = Observer(settings, registry_client(settings))
    try:
        seeded = stock_for(orders)
        seed_stock(settings, observer, seeded)
        clock.note(f"stock seeded for {len(seeded)} SKUs; producing {len(orders)} orders at {plan.rate:.0f}/s, "
                   f"{len(cancels)} cancelled", echo)  # fmt: skip
        records = [order.record for order in orders]
        producing = Background(
            lambda: produce_orders(settings, records, plan.rate, progress=False, cancellations=cancellations)
        )
        kills = 0
        next_kill = time.monotonic() + plan.kill_every_s
        ongoing: list[_Ongoing] = []
        last_fault_at = time.monotonic()
        while kills < plan.kills or producing.running or ongoing:
            observer.poll()
            for name in fleet.revive():
                clock.note(f"revived {name}", echo)
            for due in [under_way for under_way in ongoing if time.monotonic() >= under_way.ends_at]:
                due.end()
                ongoing.remove(due)
                last_fault_at = time.monotonic()
            if kills < plan.kills and time.monotonic() >= next_kill:
                frozen = {under_way.frozen for under_way in ongoing}
                name = chance.choice([name for name in fleet.alive() if name not in frozen] or list(fleet.processes))
                pid = fleet.processes[name].pid
                fleet.kill(name)
                kills += 1
                clock.note(f"kill -9 {name} (pid {pid}), {kills} of {plan.kills}", echo)
                for fault in schedule.get(kills, []):
                    ongoing.extend(_inject(fault, settings, plan, fleet, disk, chance, clock, echo))
                last_fault_at = next_kill = time.monotonic()
                next_kill += plan.kill_every_s
        report = producing.result()
        clock.note(f"produced {report.delivered} commands; the last fault ended", echo)
        quiet = QuietWatch(settings)
        unfinished = wait_for_endings(observer, order_ids, cancels, plan.outcome_timeout_s, fleet, clock, echo)
        ended_after = time.monotonic() - last_fault_at
        clock.note(f"{len(order_ids) - len(unfinished)} of {len(order_ids)} orders ended; settling", echo)
        reconciliation = close_the_books(settings, observer, orders, cancels, seeded)
        last_write = quiet.wait(PLATFORM_QUIET_AFTER_S, plan.outcome_timeout_s)
        return ChaosResult(
            reconciliation,
            clock.events,
            fleet.exited,
            observer.undecodable,
            len(orders),
            len(unfinished),
            not_injected,
            ended_after,
            None if last_write is None else max(0.0, last_write - last_fault_at),
        )
    finally:
        observer.close()


def _inject(
    fault: Fault,
    settings: Settings,
    plan: ChaosPlan,
    fleet: Fleet,
    disk: LedgerDisk | None,
    chance: random.Random,
    clock: _Clock,
    echo: Callable[[str], None] | None,
) -> list[_Ongoing]:
    """Cause `fault`: a restart is over when this returns; a freeze or a full disk is under way, and ends as
    what is returned says."""
    if fault in (Fault.BROKER, Fault.REGISTRY):
        down_s = plan.broker_down_s if fault is Fault.BROKER else plan.registry_down_s
        _kill_and_restart(fault, down_s, settings, clock, echo)
    elif fault is Fault.FREEZE:
        name = chance.choice(fleet.alive() or list(fleet.processes))
        process = fleet.processes[name]
        process.send_signal(signal.SIGSTOP)
        clock.note(f"kill -STOP {name} (pid {process.pid}) for {plan.freeze_s:.0f}s", echo)

        def thaw() -> None:
            if process.poll() is not None:
                clock.note(f"{name} (pid {process.pid}) was killed while frozen", echo)
                return
            process.send_signal(signal.SIGCONT)
            clock.note(f"kill -CONT {name} (pid {process.pid})", echo)

        return [_Ongoing(time.monotonic() + plan.freeze_s, thaw, frozen=name)]
    elif fault is Fault.DISK and disk is not None and disk.mounted:
        filled = disk.fill()
        clock.note(f"the ledgers' disk full ({filled / 2**20:.1f} MiB of filler) for {plan.disk_full_s:.0f}s", echo)

        def free() -> None:
            disk.free()
            clock.note("the ledgers' disk freed", echo)

        return [_Ongoing(time.monotonic() + plan.disk_full_s, free)]
    return []


class QuietWatch:
    """Watches every topic of the platform, from when it is made, for the last time any of them grew."""

    def __init__(self, settings: Settings, every_s: float = 0.5) -> None:
        self.last_write = time.monotonic()
        """When a topic last grew; when the watch began, until one does."""
        self._stop = threading.Event()
        admin = AdminClient({**settings.kafka_config(), "log_level": 0})

        def watch() -> None:
            seen: dict[str, int] | None = None
            while not self._stop.wait(every_s):
                try:
                    now = end_offsets(admin)
                except Exception:  # a broker still coming back: look again
                    continue
                if seen is not None and now != seen:
                    self.last_write = time.monotonic()
                seen = now

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()

    def wait(self, quiet_s: float, timeout_s: float) -> float | None:
        """Until nothing has been written for `quiet_s`; when the last write was (the watch's start when none
        was seen), or None when the platform was not quiet within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() - self.last_write < quiet_s:
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.2)
            return self.last_write
        finally:
            self._stop.set()
            self._thread.join()


def wait_for_endings(
    observer: Observer,
    order_ids: Collection[str],
    cancels: Mapping[str, int],
    timeout_s: float,
    fleet: Fleet | None = None,
    clock: _Clock | None = None,
    echo: Callable[[str], None] | None = None,
) -> set[str]:
    """Read until every order ended (reviving dead processors of `fleet` meanwhile, and noting every
    `PROGRESS_EVERY_S` how many have, so that a backlog draining shows apart from a stall); those that did
    not."""
    deadline = time.monotonic() + timeout_s
    next_progress = time.monotonic()
    while (unfinished := set(order_ids) - ended(observer, order_ids, cancels)) and time.monotonic() < deadline:
        if clock is not None and time.monotonic() >= next_progress:
            clock.note(f"{len(order_ids) - len(unfinished)} of {len(order_ids)} orders ended", echo)
            next_progress += PROGRESS_EVERY_S
        observer.poll()
        for name in fleet.revive() if fleet is not None else []:
            if clock is not None:
                clock.note(f"revived {name}", echo)
    return unfinished


def close_the_books(
    settings: Settings,
    observer: Observer,
    orders: Sequence[GeneratedOrder],
    cancels: Mapping[str, int],
    seeded: Mapping[str, int],
    counted: Callable[[Letter], bool] = lambda letter: True,
) -> Reconciliation:
    """Once the orders ended and the news after them settled: reconcile them with the stock, the simulators'
    ledgers and the dead letters (those `counted`: a test's own poison is not the orders' business)."""
    settle(observer, AdminClient(settings.kafka_config()))
    order_ids = [order.order_id for order in orders]
    return reconcile(
        order_ids,
        observer.seen,
        cancels=cancels,
        expected={order.order_id: order.expected for order in orders},
        stock=Stock(seeded, read_stock(settings)),
        ledgers=read_ledgers(settings, order_ids),
        dead_letters=observer.dead_letters(counted),
    )


def _kill_and_restart(
    fault: Fault, down_s: float, settings: Settings, clock: _Clock, echo: Callable[[str], None] | None
) -> None:
    server = kafka_server(settings) if fault is Fault.BROKER else registry_server(settings)
    try:
        pid = kill_server(server)
        clock.note(f"kill -9 {fault} (pid {pid})", echo)
        time.sleep(down_s)  # the outage itself: the processors must ride it out
    finally:
        for message in restart_platform(settings):
            clock.note(message, echo)


class Background(Generic[T]):
    """`work()` on a thread of its own, while the main one kills or stops things."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._result: list[T] = []
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._result.append(work())
            except BaseException as error:  # handed to the main thread by `result`
                self._error = error

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result[0]


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s:.0f}s: {what}")
        time.sleep(0.2)
