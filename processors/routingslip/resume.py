"""Resuming a parked slip, decided without I/O: what an operator's resume emits.

A slip is parked when a compensation fails, with the failed step on top of its compensation log. Resuming
sends it to that step's compensation address again; when the step was undone by hand (`skip_failed_step`),
it is taken off the log first and the step below it is undone next; with nothing left to undo, the slip
ends faulted.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from processors.routingslip import slip as slips
from processors.routingslip.host import SlipCodec, forward, slip_event_fields
from processors.runtime.records import Emit, derive_event_id
from schemas.models import FulfillmentRequest, RoutingSlip, RoutingSlipActivityCompensated, RoutingSlipFaulted
from topology.topics import ROUTING_SLIPS_EVENTS, topic_named


@dataclass(frozen=True)
class Resumption:
    done: str
    """What was done, in words for the operator."""
    emits: list[Emit]


def resume(
    codec: SlipCodec, request: FulfillmentRequest, slip: RoutingSlip, now: datetime.datetime, skip_failed_step: bool
) -> Resumption:
    failed = slips.to_compensate(slip)
    assert failed is not None, "a parked slip has the failed step on top of its compensation log"
    emits: list[Emit] = []
    done = f"retrying the compensation of {failed.name}"
    if skip_failed_step:
        undone = RoutingSlipActivityCompensated(
            event_id=derive_event_id(failed.execution_id, "compensated-by-hand"),
            activity=failed.name,
            **slip_event_fields(slip, now),
        )
        emits.append(Emit(ROUTING_SLIPS_EVENTS, slip.order_id, undone))
        slip = slips.compensated(slip)
        done = f"{failed.name} marked undone by hand"
    following = slips.to_compensate(slip)
    if following is not None:
        event_id = derive_event_id(slip.tracking_number, f"resumed/{now}")
        emits.append(forward(codec, request, slip, following.address, event_id, now))
        return Resumption(f"{done}; sent to {topic_named(following.address).name}", emits)
    faulted = RoutingSlipFaulted(
        event_id=derive_event_id(slip.tracking_number, "faulted"),
        reason=slips.fault_reason(slip),
        **slip_event_fields(slip, now),
    )
    emits.append(Emit(ROUTING_SLIPS_EVENTS, slip.order_id, faulted))
    return Resumption(f"{done}; nothing left to undo, the slip ends faulted", emits)
