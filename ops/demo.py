"""`make run`'s main job: every processor running, a steady stream of demo orders, and a running tally."""

from __future__ import annotations

import functools
import time
import uuid
from collections import Counter

from confluent_kafka import Consumer

from ops.dashboard.server import serve
from ops.handover import before_run_all
from ops.orders import OrderMix, generate_orders
from ops.produce import CancellationPlan, produce_orders
from ops.stock import set_stock
from ops.supervisor import Supervisor
from ops.tables import assign_from_now
from processors.adapters.catalog import DEMO_STOCK
from processors.intake import is_duplicate_id_rejection_message
from processors.runtime.cloudevents import header
from processors.services import instances_run, services_run
from topology.settings import Settings
from topology.topics import (
    INVENTORY_EVENTS,
    NOTIFICATIONS_EVENTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
    WORKFLOW_TOPICS,
)

TALLY_EVERY_S = 3.0
# What the tally line shows, in the order the choreography reaches it.
TALLIED = (
    ("created", "oms.OrderCreated"),
    ("rejected", "oms.OrderRejected"),
    ("paid", "oms.PaymentProcessed"),
    ("payment failed", "oms.PaymentFailed"),
    ("reserved", "oms.InventoryReserved"),
    ("short", "oms.InventoryShortage"),
    ("shipped", "oms.OrderShipped"),
    ("delivered", "oms.OrderDelivered"),
    ("slips faulted", "oms.RoutingSlipFaulted"),
    ("cancelled", "oms.OrderCancelled"),
    ("cancel rejected", "oms.OrderCancellationRejected"),
    ("notified", "oms.NotificationSent"),
)
DUPLICATE_IDS = "duplicate ids answered"


class Tally:
    """Counts what the processors publish by CloudEvents type, without decoding a body."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer({**settings.kafka_config(), "group.id": f"oms-demo-{uuid.uuid4().hex}"})
        watched = [ORDERS_EVENTS, PAYMENTS_EVENTS, INVENTORY_EVENTS, NOTIFICATIONS_EVENTS, ROUTING_SLIPS_EVENTS]
        self._dead_letter_topics = {topic.dead_letter_topic.name for topic in WORKFLOW_TOPICS}
        assign_from_now(self._consumer, [*(topic.name for topic in watched), *self._dead_letter_topics])
        self.counts: Counter[str] = Counter()

    def poll(self, seconds: float) -> None:
        for message in self._consumer.consume(5000, seconds):
            if message.error():
                continue
            if message.topic() in self._dead_letter_topics:
                self.counts["dead letters"] += 1
            elif is_duplicate_id_rejection_message(message.headers()):
                self.counts[DUPLICATE_IDS] += 1  # an answer to a second PlaceOrder; its order was counted once
            else:
                self.counts[header(message.headers(), "ce_type") or "?"] += 1

    def line(self, produced: int) -> str:
        parts = [f"{label} {self.counts[event_type]}" for label, event_type in TALLIED]
        if self.counts[DUPLICATE_IDS]:
            parts.append(f"{DUPLICATE_IDS} {self.counts[DUPLICATE_IDS]}")
        return f"orders {produced} | " + " | ".join(parts) + f" | dead letters {self.counts['dead letters']}"

    def close(self) -> None:
        self._consumer.close()


# A share of the demo's orders is cancelled soon after it is placed, most before fulfillment ends.
CANCEL_RATE = 0.05
CANCEL_WITHIN_S = 0.5
DASHBOARD_PORT = 8088


def run(settings: Settings, rate_per_s: float, seed: int, mix: OrderMix | None = None) -> int:
    set_stock(settings, DEMO_STOCK)
    print(f"stock seeded for {len(DEMO_STOCK)} SKUs (`oms stock show` lists live levels)")
    for line in before_run_all(settings):
        print(line)
    count = functools.partial(instances_run, settings=settings)
    supervisor = Supervisor.for_processors(services_run(settings.colocated), 1, settings, count=count)
    supervisor.start()
    tally = Tally(settings)
    try:
        dashboard = serve(settings, DASHBOARD_PORT).url
    except OSError as error:
        dashboard = f"not served: port {DASHBOARD_PORT}: {error}"
    print(
        f"\nproducing demo orders to {ORDERS_COMMANDS.name} at {rate_per_s:g}/s; Ctrl-C stops everything.\n"
        f"  follow one order:     kcat -b {settings.kafka_bootstrap_servers} -t {ORDERS_EVENTS.name} -C -f "
        "'%k %h\\n'\n"
        f"  dead letters:         kcat -b {settings.kafka_bootstrap_servers} -t {ORDERS_COMMANDS.name}.dlq -C\n"
        f"  processor logs:       {settings.run_dir / 'logs'}\n"
        f"  dashboard:            {dashboard}\n"
        "  customers' messages:  "
        f"{settings.run_dir / 'simulators' / 'notifications.jsonl'}\n"
    )
    prefix = f"demo-{int(time.time()):x}"
    produced = 0
    batch = 0
    last_tally = time.monotonic()
    try:
        while not supervisor.stopping:
            started = time.monotonic()
            orders = generate_orders(max(1, round(rate_per_s)), seed + batch, prefix=f"{prefix}-{batch}", mix=mix)
            cancellations = CancellationPlan(CANCEL_RATE, seed + batch, CANCEL_WITHIN_S)
            records = [order.record for order in orders]
            produce_orders(settings, records, rate_per_s=rate_per_s, progress=False, cancellations=cancellations)
            produced += len(orders)
            batch += 1
            supervisor.tick()
            tally.poll(max(0.0, 1.0 - (time.monotonic() - started)))
            if time.monotonic() - last_tally >= TALLY_EVERY_S:
                print(tally.line(produced), flush=True)
                last_tally = time.monotonic()
    finally:
        tally.close()
        supervisor.stop_all()
    return 0
