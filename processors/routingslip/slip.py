"""The routing slip as a value: build it, read where it goes next, and record what happened, purely."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable

from processors.routingslip.activity import StringMap
from schemas.models import ActivityFault, ActivityLogEntry, CompensationLogEntry, ItineraryStep, RoutingSlip

SLIP_NAMESPACE = uuid.UUID("0d6b8a56-2c61-4f0e-9a8e-6a1b2f3c4d5e")


def build(
    order_id: str, itinerary: Iterable[ItineraryStep], now: datetime.datetime, variables: StringMap | None = None
) -> RoutingSlip:
    """A new slip; its tracking number derives from the order, so re-planning after a crash yields the same."""
    return RoutingSlip(
        tracking_number=uuid.uuid5(SLIP_NAMESPACE, order_id),
        order_id=order_id,
        created_at=now,
        itinerary=list(itinerary),
        variables=dict(variables or {}),
    )


def step(name: str, address: str, **arguments: str) -> ItineraryStep:
    return ItineraryStep(name=name, address=address, arguments=arguments)


def next_step(slip: RoutingSlip) -> ItineraryStep | None:
    return slip.itinerary[0] if slip.itinerary else None


def arguments_for(slip: RoutingSlip, itinerary_step: ItineraryStep) -> StringMap:
    """Variables first, then the step's explicit arguments, which win."""
    return {**slip.variables, **itinerary_step.arguments}


def execution_id(slip: RoutingSlip, name: str) -> uuid.UUID:
    """The id of the next execution of `name`: the same on every re-run of the same slip."""
    return uuid.uuid5(slip.tracking_number, f"{len(slip.activity_log)}/{len(slip.faults)}/{name}")


def completed(
    slip: RoutingSlip,
    *,
    execution: uuid.UUID,
    host: str,
    started_at: datetime.datetime,
    duration_ms: int,
    compensate_address: str,
    log: StringMap,
    variables: StringMap,
    itinerary: Iterable[ItineraryStep] | None = None,
) -> RoutingSlip:
    """The next step done: logged, its compensation log kept (if any), variables merged, itinerary advanced
    (or replaced by `itinerary` when the step revised it)."""
    done = slip.itinerary[0]
    entry = ActivityLogEntry(
        execution_id=execution, name=done.name, host=host, started_at=started_at, duration_ms=duration_ms
    )
    compensation = list(slip.compensation_log)
    if log:
        compensation.append(
            CompensationLogEntry(execution_id=execution, name=done.name, address=compensate_address, data=log)
        )
    return slip.model_copy(
        update={
            "itinerary": list(itinerary) if itinerary is not None else slip.itinerary[1:],
            "activity_log": [*slip.activity_log, entry],
            "compensation_log": compensation,
            "variables": {**slip.variables, **variables},
        }
    )


def faulted(slip: RoutingSlip, *, execution: uuid.UUID, name: str, at: datetime.datetime, reason: str) -> RoutingSlip:
    """A step failed (or the slip was stopped): recorded; nothing more executes."""
    fault = ActivityFault(execution_id=execution, name=name, at=at, reason=reason)
    return slip.model_copy(update={"faults": [*slip.faults, fault], "itinerary": []})


def to_compensate(slip: RoutingSlip) -> CompensationLogEntry | None:
    """The step to undo next: the last one done (compensation runs last-in-first-out)."""
    return slip.compensation_log[-1] if slip.compensation_log else None


def compensated(slip: RoutingSlip) -> RoutingSlip:
    return slip.model_copy(update={"compensation_log": slip.compensation_log[:-1]})


def fault_reason(slip: RoutingSlip) -> str:
    return slip.faults[0].reason if slip.faults else "unknown"
