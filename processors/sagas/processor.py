"""The saga processor: the cancellation saga as a keyed Quix Streams processor with changelog-backed state.

It merges everything an order's saga listens to into one per-order stream: the commands users and operators
send (`oms.orders.commands`), the order's events from intake, payments, inventory and its routing slip, and
its durable timers as they fire (`oms.sagas.timers`). Per order, the state holds the facts those events
established and the saga instance; `cancellation.advance` decides, this module only translates records to
triggers. Events the saga has no use for are passed over by their CloudEvents type before anything is decoded.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import State

from processors.runtime.cloudevents import event_type, type_of
from processors.runtime.metrics import SAGA_TRANSITIONS
from processors.runtime.records import Emit, utc_now
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import Handler, with_message
from processors.runtime.state import StateSlot
from processors.sagas.cancellation import (
    ACTIVE,
    POLICIES,
    CancellationSaga,
    Cause,
    Phase,
    StepPolicy,
    Trigger,
    advance,
    policies,
    requested,
)
from processors.sagas.facts import OrderFacts, observe
from schemas.models import (
    RECORD_TYPES,
    AvroRecord,
    CancelOrder,
    OrderEvent,
    PaymentRefundFailed,
    RetrySaga,
    SagaTransitioned,
    TimerFired,
)
from topology.settings import Settings
from topology.topics import (
    FULFILLMENT_CONTROL,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_COMMANDS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
    SAGA_TIMERS,
    SAGAS_EVENTS,
    TIMERS,
)

PROCESSOR = "oms.sagas"
INPUTS = (ORDERS_COMMANDS, ORDERS_EVENTS, PAYMENTS_EVENTS, INVENTORY_EVENTS, ROUTING_SLIPS_EVENTS, SAGA_TIMERS)
OUTPUTS = (SAGAS_EVENTS, FULFILLMENT_CONTROL, PAYMENTS_COMMANDS, INVENTORY_COMMANDS, ORDERS_EVENTS, TIMERS)

# What is not read: the slip's step-by-step progress, the saga's own answers, and the end of an order that
# failed (its facts come from the PaymentFailed or InventoryShortage that decided it).
SKIPPED_TYPES = frozenset(
    {
        "oms.OrderCancelled",
        "oms.OrderCancellationRejected",
        "oms.OrderFailed",
        "oms.RoutingSlipCreated",
        "oms.RoutingSlipActivityCompleted",
        "oms.RoutingSlipActivityFaulted",
        "oms.RoutingSlipActivityCompensated",
        "oms.RoutingSlipActivityCompensationFailed",
        "oms.RoutingSlipRevised",
    }
)

# Everything else its inputs carry: the saga's facts, its commands and its timers.
HANDLED = [
    kind
    for kind in RECORD_TYPES.values()
    if any(kind.AVRO_NAME in spec.records for spec in INPUTS) and type_of(kind.AVRO_NAME) not in SKIPPED_TYPES
]

FACTS = StateSlot("facts", OrderFacts)
CANCELLATION = StateSlot("cancellation", CancellationSaga)


def handle(record: AvroRecord, state: State, step_policies: Mapping[Phase, StepPolicy] = POLICIES) -> list[Emit]:
    facts = FACTS.load(state) or OrderFacts()
    saga = known = CANCELLATION.load(state) or CancellationSaga()
    trigger: Trigger
    match record:
        case CancelOrder() | RetrySaga() if str(record.event_id) in saga.commands_seen:
            return []  # a redelivered or duplicated command
        case CancelOrder():
            saga = requested(saga, record)
            saga = saga.model_copy(update={"commands_seen": [*saga.commands_seen, str(record.event_id)]})
            trigger = Trigger.CANCEL
        case RetrySaga():
            saga = saga.model_copy(update={"commands_seen": [*saga.commands_seen, str(record.event_id)]})
            trigger = Trigger.RETRY
        case TimerFired(attempt=generation):
            if generation != saga.timer_generation or saga.phase not in ACTIVE:
                return []  # replaced by a later timer, or the step it bounded is over
            trigger = Trigger.TIMEOUT
        case PaymentRefundFailed(request_id=request_id) if request_id and request_id == saga.refund_request_id:
            trigger = Trigger.REFUND_UNAVAILABLE if record.retryable else Trigger.REFUND_FAILED
        case _:
            learned = observe(facts, record)
            if learned is facts:
                return []  # nothing new
            FACTS.save(state, facts := learned)
            trigger = Trigger.PROGRESS
    if not isinstance(record, OrderEvent):
        return []  # every record the saga reads is about an order; anything else changes nothing
    cause = Cause(str(record.event_id), record.order_id, event_type(record), str(getattr(record, "reason", "")))
    advanced = advance(facts, saga, trigger, cause, utc_now(), step_policies)
    if advanced.saga != known:
        CANCELLATION.save(state, advanced.saga)
    for emit in advanced.emits:
        if isinstance(emit.record, SagaTransitioned):
            SAGA_TRANSITIONS.labels(emit.record.saga, emit.record.from_state, emit.record.to_state).inc()
    return advanced.emits


def _handler(settings: Settings, registry: SchemaRegistryClient) -> Handler:
    return with_message(functools.partial(handle, step_policies=policies(settings.cancel_waits_for_order_s)))


SPEC = ProcessorSpec(
    name="sagas",
    group=PROCESSOR,
    # Merged: all of an order's topics share its key and partition count, so one per-order state sees them
    # all, in timestamp order.
    streams=(Stream(INPUTS, _handler, handles=tuple(HANDLED)),),
    outputs=OUTPUTS,
    state="order id: the facts its events established, and the cancellation saga",
)
