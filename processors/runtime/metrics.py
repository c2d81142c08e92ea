"""Prometheus metrics: what every process counts, and the HTTP endpoint each one serves them on.

Names follow Prometheus conventions: prefix `oms_`, base units (seconds), counters end in `_total`, and no
label carries an order id. Which port a process serves on is `processors.services.metrics_port`.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram

from processors.runtime.health import serve

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

MESSAGES = Counter(
    "oms_messages_processed_total",
    "Messages a processor handled, by input topic and outcome (ok, dead_lettered, passed_over undecoded).",
    ["processor", "topic", "outcome"],
)
PROCESSING = Histogram(
    "oms_processing_seconds",
    "Time to decode, decide and encode one message, gateway and activity calls included.",
    ["processor"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DEAD_LETTERS = Counter(
    "oms_dead_letters_total", "Messages sent to a dead-letter topic, by original topic.", ["processor", "topic"]
)
SAGA_TRANSITIONS = Counter(
    "oms_saga_transitions_total", "Saga transitions, by saga and states.", ["saga", "from_state", "to_state"]
)
# The fleet's gauges count the orders of the instance's partitions of the view: their sum over instances is
# the whole; every other process that serves metrics exports `oms_orders_stuck` at 0.
SAGA_INSTANCES = Gauge(
    "oms_saga_instances",
    "Saga instances by state, as the tracker sees them, on this instance's partitions (sum over instances).",
    ["saga", "state"],
)
ORDERS = Gauge(
    "oms_orders",
    "Orders by status in the tracker's view (in-flight, compensating, faulted, completed), on this instance's "
    "partitions (sum over instances).",
    ["status"],
)
STUCK_ORDERS = Gauge(
    "oms_orders_stuck",
    "In-flight or compensating orders without progress for the stuck threshold, on this instance's partitions "
    "(sum over instances).",
)
ROUTING_SLIPS = Counter("oms_routing_slips_total", "Routing slips that ended, by outcome.", ["outcome"])
ACTIVITY_SECONDS = Histogram(
    "oms_routing_slip_activity_seconds",
    "How long routing-slip activities took to execute.",
    ["activity"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
ORDER_LATENCY = Histogram(
    "oms_order_latency_seconds",
    "From PlaceOrder to the order's outcome (delivered, cancelled, rejected, payment-failed, out-of-stock).",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "oms_consumer_lag_messages",
    "Messages not yet consumed, per group and partition, as every fleet instance measures them (take the max per "
    "group, topic and partition before summing).",
    ["group", "topic", "partition"],
)
TIMERS_PENDING = Gauge(
    "oms_timers_pending",
    "Timers scheduled and neither fired nor cancelled, on this instance's partitions (sum over instances).",
)
TIMER_LATENESS = Histogram(
    "oms_timer_lateness_seconds",
    "How late timers fired: the moment each fired minus the moment it was due.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

SUPERVISOR_RESTARTS = Counter(
    "oms_supervisor_restarts_total",
    "Processes `oms run all` started again after they ended, by processor and why (crash, outage).",
    ["processor", "reason"],
)
SUPERVISOR_CRASH_LOOPING = Gauge(
    "oms_supervisor_crash_looping",
    "Instances of a processor that crashed OMS_SUPERVISOR_MAX_CRASHES times within OMS_SUPERVISOR_CRASH_WINDOW_S "
    "(`oms run all` goes on restarting them, with backoff).",
    ["processor"],
)
SUPERVISOR_STOPPED = Gauge(
    "oms_supervisor_stopped",
    "Instances of a processor that `oms run all` left stopped: they finished (exit 0) or their configuration is "
    "wrong (exit 78 or 2).",
    ["processor"],
)


def serve_metrics(host: str, port: int | None) -> bool:
    """Serve this process's metrics, health and readiness on `host`:`port`, if any; whether it does (a port
    already taken only costs them)."""
    if port is None:
        return False
    try:
        serve(host, port)
    except OSError as error:
        logger.warning("metrics not served: port %d: %s", port, error)
        return False
    return True
