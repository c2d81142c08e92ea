"""The process that hosts every fulfillment activity: one consumer group over all their addresses.

Each activity's topic, its `.compensate` topic and the control topic are merged into a per-order state of
that activity (was the slip stopped, did it finish here), and `processors.routingslip.host` runs over each
merge. One merge of all thirteen topics would be simpler, but Quix Streams names a merge's changelog after
all its topics, and that name would pass Kafka's 255-character limit.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import Application

from processors.adapters.fulfillment_simulators import FulfillmentSimulators, default_fulfillment_ledger
from processors.fulfillment.activities import activities
from processors.routingslip.host import ActivityHost, SlipCodec
from processors.runtime.app import app_topic, instance_id
from processors.runtime.stage import MessageStage, RetryPolicy, publish
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


def build(app: Application, settings: Settings, registry: SchemaRegistryClient) -> None:
    control = app.dataframe(app_topic(app, FULFILLMENT_CONTROL, settings))
    outputs = [
        app_topic(app, spec, settings)
        for spec in (
            *(fulfillment_activity(name) for name in FULFILLMENT_ACTIVITIES),
            *(fulfillment_compensation(name) for name in FULFILLMENT_ACTIVITIES),
            ROUTING_SLIPS_EVENTS,
            ROUTING_SLIPS_PARKED,
            ORDERS_EVENTS,
            FULFILLMENT_CONTROL.dead_letter_topic,
            *(fulfillment_activity(name).dead_letter_topic for name in FULFILLMENT_ACTIVITIES),
            *(fulfillment_compensation(name).dead_letter_topic for name in FULFILLMENT_ACTIVITIES),
        )
    ]
    simulators = FulfillmentSimulators.open(default_fulfillment_ledger(settings))
    host = ActivityHost(
        activities(simulators),
        SlipCodec(HeaderCodec(registry, ROUTING_SLIP_HEADER)),
        host=f"{PROCESSOR}-{instance_id()}",
        retry=ACTIVITY_RETRY,
    )
    for name in FULFILLMENT_ACTIVITIES:
        execute = app_topic(app, fulfillment_activity(name), settings)
        compensate = app_topic(app, fulfillment_compensation(name), settings)
        # Every activity's state hears every stop signal: a branch of the control topic per activity.
        merged = app.dataframe(execute).concat(app.dataframe(compensate)).concat(control.filter(lambda _: True))
        stage = MessageStage(
            PROCESSOR, [execute.name, compensate.name, FULFILLMENT_CONTROL.name], registry, host.handle
        )
        publish(merged.apply(stage, stateful=True, expand=True, metadata=True), outputs)
