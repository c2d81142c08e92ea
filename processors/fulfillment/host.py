"""The process that hosts every fulfillment activity: one consumer group over all their addresses.

Each activity's topic, its `.compensate` topic and the control topic are merged into a per-order state of
that activity (was the slip stopped, did it finish here), and `processors.routingslip.host` runs over each
merge. One merge of all thirteen topics would be simpler, but Quix Streams names a merge's changelog after
all its topics, and that name would pass Kafka's 255-character limit.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import SchemaRegistryClient

from processors.adapters.fulfillment_simulators import FulfillmentSimulators, default_fulfillment_ledger
from processors.fulfillment.activities import activities
from processors.routingslip.host import ActivityHost, SlipCodec
from processors.runtime.identity import instance_id
from processors.runtime.retries import RetryPolicy
from processors.runtime.spec import ProcessorSpec, Stream, shared
from processors.runtime.stage import Handler
from schemas.serde import HeaderCodec
from topology.settings import Settings
from topology.topics import (
    FULFILLMENT_ACTIVITIES,
    FULFILLMENT_CONTROL,
    ORDERS_EVENTS,
    ROUTING_SLIP_HEADER,
    ROUTING_SLIPS_EVENTS,
    ROUTING_SLIPS_PARKED,
    fulfillment_activity,
    fulfillment_compensation,
)

PROCESSOR = "oms.activities"
# Transient failures of a step are retried this way before the step faults.
ACTIVITY_RETRY = RetryPolicy(attempts=4, first_delay_s=0.02, max_delay_s=0.5)
# Once the carrier has the parcel (`OrderShipped` is out, the customer told), a stop no longer undoes the slip:
# a cancellation after shipping is refused, and the order becomes a return once delivered.
NO_STOP_AFTER = frozenset({"ship"})
# The warehouse's steps run one after the other in one record; the slip crosses a topic only to reach the
# activities whose topic says so (`CROSSED_ACTIVITIES`).
INLINE = frozenset(name for name in FULFILLMENT_ACTIVITIES if fulfillment_activity(name).chainable)


@shared
def _handler(settings: Settings, registry: SchemaRegistryClient) -> Handler:
    host = ActivityHost(
        activities(FulfillmentSimulators.open(default_fulfillment_ledger(settings), deferred=True)),
        {name: fulfillment_activity(name).name for name in FULFILLMENT_ACTIVITIES},
        SlipCodec(HeaderCodec(registry, ROUTING_SLIP_HEADER)),
        host=f"{PROCESSOR}-{instance_id()}",
        retry=ACTIVITY_RETRY,
        points_of_no_return=NO_STOP_AFTER,
        inline=INLINE,
    )
    return host.handle


SPEC = ProcessorSpec(
    name="activities",
    group=PROCESSOR,
    # Per activity: its topic, its compensation topic and (a branch of) the control topic, so that every
    # activity's state hears every stop signal.
    streams=tuple(
        Stream((fulfillment_activity(name), fulfillment_compensation(name), FULFILLMENT_CONTROL), _handler)
        for name in FULFILLMENT_ACTIVITIES
    ),
    outputs=(
        *(fulfillment_activity(name) for name in FULFILLMENT_ACTIVITIES),
        *(fulfillment_compensation(name) for name in FULFILLMENT_ACTIVITIES),
        ROUTING_SLIPS_EVENTS,
        ROUTING_SLIPS_PARKED,
        ORDERS_EVENTS,
    ),
    state="order id, per activity: whether the slip was stopped, how it finished here",
)
