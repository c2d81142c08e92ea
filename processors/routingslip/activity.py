"""What an activity is: arguments in, a log out, and a compensation that needs only the log.

An activity is one module with an `execute` and a `compensate`; the host around it reads and rewrites the
routing slip, retries transient failures, and publishes the slip's events. A step fails for the order only
by returning `Faulted`. Arguments and logs are flat
string maps (they travel in the slip); an activity parses them into its own pydantic models.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Protocol

from processors.runtime.records import Emit
from schemas.models import FulfillmentRequest, ItineraryStep

StringMap = dict[str, str]


@dataclass(frozen=True)
class ExecuteContext:
    request: FulfillmentRequest
    arguments: StringMap
    """The slip's variables, overridden by the step's own arguments."""
    idempotency_key: str
    """The same on every re-run of this step of this slip: side effects carry it."""
    now: datetime.datetime
    remaining: tuple[ItineraryStep, ...] = ()
    """The steps after this one, for an activity that revises the itinerary."""


@dataclass(frozen=True)
class CompensateContext:
    request: FulfillmentRequest
    log: StringMap
    """What `execute` logged: exactly what undoing it needs."""
    idempotency_key: str
    now: datetime.datetime


@dataclass(frozen=True)
class Completed:
    """The step ran. `log` is kept for compensation (empty: nothing to undo); `variables` join the slip's."""

    log: StringMap = field(default_factory=dict)
    variables: StringMap = field(default_factory=dict)
    emits: tuple[Emit, ...] = ()
    """Records the step publishes besides the slip's events (e.g. OrderShipped)."""


@dataclass(frozen=True)
class Revised(Completed):
    """The step ran and replaced the rest of the itinerary (e.g. another carrier)."""

    itinerary: tuple[ItineraryStep, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Terminated(Completed):
    """The step ran and ended the slip early, successfully; no step after it runs."""

    reason: str = ""


@dataclass(frozen=True)
class Faulted:
    """The business failure an activity reports: the step cannot be done for this order (no carrier takes the
    parcel). The one outcome that faults the slip, which then compensates what it did so far."""

    reason: str


ExecutionResult = Completed | Faulted


class CompensationFailed(Exception):
    """Undoing a step is impossible; the slip is parked for an operator."""


class Activity(Protocol):
    name: str

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        """Run the step. Return `Faulted` when the order cannot have it done; raise
        `processors.runtime.retries.TransientError` for a failure worth retrying (one that outlasts the retries
        pauses the slip as an outage). Anything else raised is a bug or a bad record, never a slip fault: the
        record is dead-lettered."""
        ...

    def compensate(self, context: CompensateContext) -> None:
        """Undo the step from its log. Raise `CompensationFailed` when it cannot be undone."""
        ...
