"""Every topic of the system, declared once: name, key, partitions, cleanup policy, retention, records.

Code refers to these declarations (`ORDERS_EVENTS.name`), never to a topic name literal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from topology.settings import get_settings

CleanupPolicy = Literal["delete", "compact"]

# Every order-keyed topic has the same partition count, so that an order's messages meet in one
# partition of every topic and so in one instance's state store.
ORDER_PARTITIONS = get_settings().order_partitions
DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    records: tuple[str, ...] = ()
    partitions: int = ORDER_PARTITIONS
    cleanup_policy: CleanupPolicy = "delete"
    retention_ms: int | None = 7 * DAY_MS
    doc: str = ""
    extra_config: dict[str, str] = field(default_factory=dict)
    chainable: bool = True
    """Whether processors run together may hand its records to each other in memory (they are published all
    the same). False for a topic whose crossing is part of the workflow: its readers always read it from Kafka,
    behind what was produced before (docs/adr/0002-co-location.md)."""
    view: bool = False
    """Whether each record restates the whole current value of its key (compacted: a reader needs only the
    latest). Processors run together publish, of what one message leads to, only the last record of each key."""

    def config(self) -> dict[str, str]:
        """Topic-level broker configuration this declaration implies."""
        config = {"cleanup.policy": self.cleanup_policy, **self.extra_config}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config

    def created_config(self, min_insync_replicas: int) -> dict[str, str]:
        """`config` with the durability asked of the cluster it is created on (`Settings.min_insync_replicas`,
        which follows the replication factor rather than the topic)."""
        return {**self.config(), "min.insync.replicas": str(min_insync_replicas)}

    @property
    def dead_letter_topic(self) -> TopicSpec:
        return dead_letters_of(self)


def dead_letters_of(topic: TopicSpec) -> TopicSpec:
    """`<topic>.dlq`: original key, value and headers of what a processor could not use, kept a month."""
    return TopicSpec(
        name=f"{topic.name}.dlq",
        key=topic.key,
        partitions=1,
        retention_ms=30 * DAY_MS,
        doc=f"Dead letters of {topic.name}: original bytes and headers plus error headers.",
    )


ORDERS_COMMANDS = TopicSpec(
    name="oms.orders.commands",
    key="order_id",
    records=("oms.orders.PlaceOrder", "oms.orders.CancelOrder", "oms.sagas.RetrySaga"),
    doc="What users produce: place or cancel an order; operators resume a failed saga.",
)
ORDERS_EVENTS = TopicSpec(
    name="oms.orders.events",
    key="order_id",
    records=(
        "oms.orders.OrderCreated",
        "oms.orders.OrderRejected",
        "oms.orders.OrderShipped",
        "oms.orders.OrderDelivered",
        "oms.orders.OrderCancelled",
        "oms.orders.OrderCancellationRejected",
        "oms.orders.OrderFailed",
    ),
    doc="An order's life as facts: created, rejected, shipped, delivered, cancelled, failed (payment or stock).",
)
PAYMENTS_COMMANDS = TopicSpec(
    name="oms.payments.commands",
    key="order_id",
    records=("oms.payments.RefundPayment",),
    doc="Requests to the payment service.",
)
PAYMENTS_EVENTS = TopicSpec(
    name="oms.payments.events",
    key="order_id",
    records=(
        "oms.payments.PaymentProcessed",
        "oms.payments.PaymentFailed",
        "oms.payments.PaymentRefunded",
        "oms.payments.PaymentRefundFailed",
    ),
    doc="Outcomes of charges and refunds.",
)
INVENTORY_COMMANDS = TopicSpec(
    name="oms.inventory.commands",
    key="order_id",
    records=("oms.inventory.ReleaseInventory",),
    doc="Requests to the inventory service.",
)
INVENTORY_EVENTS = TopicSpec(
    name="oms.inventory.events",
    key="order_id",
    records=(
        "oms.inventory.InventoryReserved",
        "oms.inventory.InventoryShortage",
        "oms.inventory.InventoryReleased",
    ),
    doc="Outcomes of reservations and releases, decided once per order.",
)
INVENTORY_STOCK = TopicSpec(
    name="oms.inventory.stock",
    key="sku",
    records=("oms.inventory.StockLevel",),
    cleanup_policy="compact",
    retention_ms=None,
    doc="Stock level per SKU; the latest record per SKU is the truth.",
)
STOCK_REQUESTS = TopicSpec(
    name="oms.inventory.stock-requests",
    key="sku",
    records=("oms.inventory.StockRequest",),
    doc="Inventory's order side asks the SKU side to reserve or release one SKU's units for an order.",
)
STOCK_RESULTS = TopicSpec(
    name="oms.inventory.stock-results",
    key="order_id",
    records=("oms.inventory.StockResult",),
    doc="The SKU side's answer per SKU, back to the order side, which decides once per order.",
)
ROUTING_SLIP_EVENT_TYPES = (
    "RoutingSlipCreated",
    "RoutingSlipActivityCompleted",
    "RoutingSlipActivityFaulted",
    "RoutingSlipActivityCompensated",
    "RoutingSlipActivityCompensationFailed",
    "RoutingSlipRevised",
    "RoutingSlipTerminated",
    "RoutingSlipCompleted",
    "RoutingSlipFaulted",
    "RoutingSlipCompensationFailed",
)
ROUTING_SLIPS_EVENTS = TopicSpec(
    name="oms.routing-slips.events",
    key="order_id",
    records=tuple(f"oms.fulfillment.{name}" for name in ROUTING_SLIP_EVENT_TYPES),
    doc="Progress of every routing slip: created, each activity done or undone, completed, faulted.",
)
SAGAS_EVENTS = TopicSpec(
    name="oms.sagas.events",
    key="order_id",
    records=("oms.sagas.SagaTransitioned",),
    doc="Every saga transition, for monitoring.",
)
NOTIFICATIONS_EVENTS = TopicSpec(
    name="oms.notifications.events",
    key="order_id",
    records=("oms.notifications.NotificationSent",),
    doc="Notifications sent to customers.",
)
TIMERS = TopicSpec(
    name="oms.timers",
    key="timer_id",
    records=("oms.sagas.TimerScheduled",),
    cleanup_policy="compact",
    retention_ms=None,
    doc="Pending durable timers of the sagas; a tombstone removes a fired or cancelled timer.",
)

SAGA_TIMERS = TopicSpec(
    name="oms.sagas.timers",
    key="order_id",
    records=("oms.sagas.TimerFired",),
    doc="Durable timers of the sagas as they come due, back to the saga that set them.",
)

TRACKING_ORDERS = TopicSpec(
    name="oms.tracking.orders",
    key="order_id",
    records=("oms.tracking.OrderTimeline",),
    cleanup_policy="compact",
    retention_ms=None,
    doc="The tracker's view: each order's timeline across choreography, routing slip and saga; the latest wins.",
    view=True,
    # Rewritten at every step of an order: small segments and an eager cleaner keep what a rebuild reads
    # close to one record per order.
    extra_config={"segment.ms": str(10 * 60 * 1000), "min.cleanable.dirty.ratio": "0.1"},
)

DEAD_LETTERS_REDRIVEN = TopicSpec(
    name="oms.dead-letters.redriven",
    key="original topic/partition/offset",
    partitions=1,
    cleanup_policy="compact",
    retention_ms=None,
    doc="Originals of dead letters already redriven, so that `oms dlq redrive` sends each back once.",
)
# Topics of the operators' tools rather than of the workflows: no dead letters of their own.
OPERATIONS_TOPICS: tuple[TopicSpec, ...] = (TRACKING_ORDERS, DEAD_LETTERS_REDRIVEN)

# Routing-slip activities of fulfillment, in the order a full itinerary visits them.
FULFILLMENT_ACTIVITIES = ("pick", "pack", "gift-wrap", "customs", "ship", "confirm-delivery")
# Activities a slip always reaches across Kafka. `ship`: a stop sent while the warehouse worked is heard before
# the parcel leaves. `confirm-delivery` waits on the carrier: the order is seen shipped before it is delivered.
# The warehouse's steps before them run one after the other in one record (processors/fulfillment/host.py).
CROSSED_ACTIVITIES = frozenset({"ship", "confirm-delivery"})


FULFILLMENT_RECORDS = ("oms.fulfillment.FulfillmentRequest",)


def fulfillment_activity(activity: str) -> TopicSpec:
    return TopicSpec(
        name=f"oms.fulfillment.{activity}",
        key="order_id",
        records=FULFILLMENT_RECORDS,
        doc=f"Routing slips addressed to the {activity} activity.",
        chainable=activity not in CROSSED_ACTIVITIES,
    )


def fulfillment_compensation(activity: str) -> TopicSpec:
    return TopicSpec(
        name=f"oms.fulfillment.{activity}.compensate",
        key="order_id",
        records=FULFILLMENT_RECORDS,
        doc=f"Routing slips whose {activity} step must be undone.",
    )


FULFILLMENT_CONTROL = TopicSpec(
    name="oms.fulfillment.control",
    key="order_id",
    records=("oms.fulfillment.StopFulfillment",),
    doc="Signals to an order's routing slip from outside, e.g. stop it because the order is cancelled.",
)
ROUTING_SLIPS_PARKED = TopicSpec(
    name="oms.routing-slips.parked",
    key="order_id",
    records=FULFILLMENT_RECORDS,
    cleanup_policy="compact",
    retention_ms=None,
    doc="Slips whose compensation failed, with their header, until an operator resumes them (then a tombstone).",
)


@dataclass(frozen=True)
class HeaderSpec:
    """A record that travels in a message header rather than as the value."""

    name: str
    record: str
    max_bytes: int

    @property
    def subject(self) -> str:
        return self.record  # RecordNameStrategy: a header belongs to no one topic


ROUTING_SLIP_HEADER = HeaderSpec(name="oms-routing-slip", record="oms.fulfillment.RoutingSlip", max_bytes=16_384)
HEADERS: tuple[HeaderSpec, ...] = (ROUTING_SLIP_HEADER,)

WORKFLOW_TOPICS: tuple[TopicSpec, ...] = (
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_COMMANDS,
    PAYMENTS_EVENTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_STOCK,
    STOCK_REQUESTS,
    STOCK_RESULTS,
    *(fulfillment_activity(activity) for activity in FULFILLMENT_ACTIVITIES),
    *(fulfillment_compensation(activity) for activity in FULFILLMENT_ACTIVITIES),
    FULFILLMENT_CONTROL,
    ROUTING_SLIPS_EVENTS,
    ROUTING_SLIPS_PARKED,
    SAGAS_EVENTS,
    SAGA_TIMERS,
    NOTIFICATIONS_EVENTS,
    TIMERS,
)

# Each workflow topic and its dead-letter topic: what `oms topics apply` creates.
ALL_TOPICS: tuple[TopicSpec, ...] = (
    *WORKFLOW_TOPICS,
    *(dead_letters_of(topic) for topic in WORKFLOW_TOPICS),
    *OPERATIONS_TOPICS,
)


def topic_named(name: str) -> TopicSpec:
    for topic in ALL_TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(f"no topic named {name!r} is declared in topology/topics.py")
