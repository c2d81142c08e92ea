"""The activity host: runs the step a routing slip points at, rewrites the slip, and sends the record on.

Semantics follow MassTransit Courier. A message on `<address>` executes the slip's next step; on
`<address>.compensate` it undoes the step on top of the compensation log. Execution ends in one of:

- completed: the step is logged (with its compensation log, if it has anything to undo) and the record
  goes to the next step's address, or the slip is `RoutingSlipCompleted` when none is left;
- revised: completed, and the rest of the itinerary replaced (`RoutingSlipRevised`);
- terminated: completed, and the slip ends here (`RoutingSlipTerminated`);
- faulted, when the activity reports a business failure (`Faulted`): `RoutingSlipActivityFaulted`, then
  compensation runs last-in-first-out over the compensation log, ending `RoutingSlipFaulted`.

Nothing else faults a slip. A transient failure that outlasts its retries, or an outage (`is_outage`), is
raised as one, so that the same record is tried again later; any other exception is the record's or the
code's fault, raised for the stage to dead-letter, rather than undoing a good order. A slip that routes
anywhere but to the hosted activities' own topics is refused (dead-lettered) before any step runs.

A compensation that fails ends `RoutingSlipCompensationFailed`: the record, slip and all, is parked on
`oms.routing-slips.parked` (keyed by order) for an operator to see and resume; it is never dropped.

A `StopFulfillment` for the order makes the next step compensate instead of execute, until the slip passes a
point of no return (a step after which the host refuses stops, e.g. shipping: a parcel the carrier has is
not called back); a stop that comes later, or after the slip ended, changes nothing. Whoever asked learns
from the slip's and the order's events, which it reads anyway: each is published once.

Steps named `inline`, and every compensation, run as soon as the slip reaches them, in the record and
transaction of the step before, instead of the record crossing their topic: every step still publishes its
events, in the same order, and the slip crosses a topic only to reach a step that is not inline (or leaves
this host). A step is left out of `inline` where the time between two steps matters: before a point of no
return, so that a stop sent while the steps before it ran is heard before it; before a step that hands the
order to someone else, so that the order is seen in between. A crash anywhere in such a run repeats the
record, and the steps already done repeat under the same idempotency keys, exactly as one step repeats.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from quixstreams import State

from processors.routingslip import slip as slips
from processors.routingslip.activity import (
    Activity,
    CompensateContext,
    Completed,
    ExecuteContext,
    ExecutionResult,
    Faulted,
    Revised,
    Terminated,
)
from processors.runtime.deadletters import Received
from processors.runtime.errors import Outage, is_outage
from processors.runtime.records import Emit, derive_event_id, utc_now
from processors.runtime.retries import RetryPolicy, TransientError, retrying
from processors.runtime.state import ValueSlot
from schemas.models import (
    AvroRecord,
    FulfillmentRequest,
    ItineraryStep,
    OrderEvent,
    RoutingSlip,
    RoutingSlipActivityCompensated,
    RoutingSlipActivityCompensationFailed,
    RoutingSlipActivityCompleted,
    RoutingSlipActivityFaulted,
    RoutingSlipCompensationFailed,
    RoutingSlipCompleted,
    RoutingSlipFaulted,
    RoutingSlipRevised,
    RoutingSlipTerminated,
    StopFulfillment,
)
from schemas.serde import HeaderCodec, UndecodableRecord
from topology.topics import ROUTING_SLIPS_EVENTS, ROUTING_SLIPS_PARKED, topic_named

COMPENSATE_SUFFIX = ".compensate"

# Per order, in each activity's state: why the slip was stopped.
STOPPED = ValueSlot("stopped", "")


@dataclass(frozen=True)
class SlipCodec:
    """The slip in and out of its header, with the header's size bound."""

    codec: HeaderCodec

    def read(self, headers: Iterable[tuple[str, bytes]] | None) -> RoutingSlip:
        raw = None
        for name, value in headers or ():
            if name == self.codec.header.name:
                raw = value
        slip = self.codec.decode(raw)
        assert isinstance(slip, RoutingSlip)
        return slip

    def header(self, slip: RoutingSlip) -> tuple[tuple[str, bytes], ...]:
        return ((self.codec.header.name, self.codec.encode(slip)),)


def compensate_address(address: str) -> str:
    return f"{address}{COMPENSATE_SUFFIX}"


@dataclass(frozen=True)
class Hop:
    """Where the slip goes next: a step's (or a compensation's, or the parked) topic, and the id its record
    there is derived from (`purpose`)."""

    address: str
    slip: RoutingSlip
    purpose: str


# What a step publishes, and where the slip goes after it (None: it ended here).
Outcome = tuple[list[Emit], Hop | None]


class MisroutedSlip(UndecodableRecord):
    """The slip names a step this host does not know, or sends one elsewhere than its activity's topics."""


class ActivityError(Exception):
    """A step raised something other than an outage: a bug or a record it cannot use, not a business failure."""


def misrouting(slip: RoutingSlip, addresses: Mapping[str, str]) -> str | None:
    """Why the slip cannot be followed, or None: every step still to run must be addressed to its activity's
    topic, and every step to undo to its activity's compensation topic (`addresses`: activity -> topic)."""
    for position, planned in enumerate(slip.itinerary, start=1):
        expected = addresses.get(planned.name)
        if expected is None:
            return f"step {position} names {_quoted(planned.name)}, which is no activity of this host"
        if planned.address != expected:
            return f"step {position} ({planned.name}) is addressed to {_quoted(planned.address)}, not {expected}"
    for entry in slip.compensation_log:
        expected = addresses.get(entry.name)
        if expected is None:
            return f"the compensation log names {_quoted(entry.name)}, which is no activity of this host"
        if entry.address != compensate_address(expected):
            return (
                f"the compensation of {entry.name} is addressed to {_quoted(entry.address)},"
                f" not {compensate_address(expected)}"
            )
    return None


def _quoted(text: str, limit: int = 80) -> str:
    """A name from a record, quoted and cut short, for a reason an operator reads."""
    return repr(text if len(text) <= limit else f"{text[:limit]}...")


class ActivityHost:
    def __init__(
        self,
        activities: Mapping[str, Activity],
        addresses: Mapping[str, str],
        slips_codec: SlipCodec,
        host: str,
        retry: RetryPolicy,
        points_of_no_return: frozenset[str] = frozenset(),
        inline: frozenset[str] = frozenset(),
    ) -> None:
        self._activities = activities
        self._addresses = {name: addresses[name] for name in activities}
        # Where a slip goes next that this record runs at once: inline steps' topics, every compensation's.
        self._run_at_once = frozenset(
            {address for name, address in self._addresses.items() if name in inline}
            | {compensate_address(address) for address in self._addresses.values()}
        )
        self._slips = slips_codec
        self._host = host
        self._retry = retry
        self._points_of_no_return = points_of_no_return

    def handle(self, record: AvroRecord, state: State, received: Received) -> list[Emit]:
        if isinstance(record, StopFulfillment):
            return self._stop(record, state)
        if not isinstance(record, FulfillmentRequest):
            return []
        slip = self._slips.read(received.headers)
        if slip.order_id != record.order_id:
            # Its steps would act for one order and publish under the other, whose slip knows nothing of them.
            raise MisroutedSlip(
                f"routing slip {slip.tracking_number} belongs to order {slip.order_id!r}, not to order "
                f"{record.order_id!r} whose request carries it"
            )
        self._check_route(slip)
        emits: list[Emit] = []
        hop: Hop | None = Hop(received.topic, slip, "")
        while hop is not None:
            if hop.address.endswith(COMPENSATE_SUFFIX):
                done, hop = self._compensate(record, hop.slip, hop.address)
            else:
                done, hop = self._execute(record, hop.slip, hop.address, state)
            emits.extend(done)
            if hop is not None and hop.address not in self._run_at_once:
                emits.append(self._forward(record, hop))
                hop = None
        return emits

    # --- execute ---------------------------------------------------------------------------------

    def _execute(self, request: FulfillmentRequest, slip: RoutingSlip, topic: str, state: State) -> Outcome:
        step = slips.next_step(slip)
        if step is None or step.address != topic:
            raise UndecodableRecord(f"the slip's next step is {step.address if step else 'none'}, not {topic}")
        execution = slips.execution_id(slip, step.name)
        now = utc_now()
        stopped = STOPPED.load(state)
        if stopped and not self._past_return(slip):
            stopped_slip = slips.faulted(
                slip, execution=execution, name=step.name, at=now, reason=f"stopped: {stopped}"
            )
            return self._compensate_next(stopped_slip, now)
        activity = self._activities[step.name]
        context = ExecuteContext(
            request=request,
            arguments=slips.arguments_for(slip, step),
            idempotency_key=f"{slip.tracking_number}/{execution}",
            now=now,
            remaining=tuple(slip.itinerary[1:]),
        )
        started = time.monotonic()
        result: ExecutionResult = self._run(step.name, lambda: activity.execute(context))
        duration_ms = round((time.monotonic() - started) * 1000)
        # The step's events happen when it ends (a reader takes a completion's start as `duration_ms` before);
        # inline steps follow one another within milliseconds, so their start would not do.
        ended = utc_now()
        if isinstance(result, Faulted):
            faulted_event = RoutingSlipActivityFaulted(
                event_id=derive_event_id(execution, "faulted"),
                activity=step.name,
                reason=result.reason,
                **slip_event_fields(slip, ended),
            )
            faulted_slip = slips.faulted(slip, execution=execution, name=step.name, at=ended, reason=result.reason)
            events, hop = self._compensate_next(faulted_slip, ended)
            return [self._event(faulted_event), *events], hop
        return self._after_completion(slip, step.name, execution, result, now, ended, duration_ms)

    def _after_completion(
        self,
        slip: RoutingSlip,
        name: str,
        execution: uuid.UUID,
        result: Completed,
        started_at: datetime.datetime,
        ended_at: datetime.datetime,
        duration_ms: int,
    ) -> Outcome:
        base = slip_event_fields(slip, ended_at)
        itinerary: tuple[ItineraryStep, ...] | None = None
        if isinstance(result, Revised):
            itinerary = result.itinerary
            self._check_route(slip.model_copy(update={"itinerary": list(itinerary)}))
        elif isinstance(result, Terminated):
            itinerary = ()
        address = slip.itinerary[0].address
        done = slips.completed(
            slip,
            execution=execution,
            host=self._host,
            started_at=started_at,
            duration_ms=duration_ms,
            compensate_address=compensate_address(address),
            log=result.log,
            variables=result.variables,
            itinerary=itinerary,
        )
        emits = [
            self._event(
                RoutingSlipActivityCompleted(
                    event_id=derive_event_id(execution, "completed"),
                    activity=name,
                    duration_ms=duration_ms,
                    variables=result.variables,
                    **base,
                )
            ),
            *result.emits,
        ]
        if isinstance(result, Revised):
            emits.append(
                self._event(
                    RoutingSlipRevised(
                        event_id=derive_event_id(execution, "revised"),
                        activity=name,
                        itinerary=[s.name for s in done.itinerary],
                        reason=result.reason,
                        **base,
                    )
                )
            )
        if isinstance(result, Terminated):
            terminated = RoutingSlipTerminated(
                event_id=derive_event_id(execution, "terminated"),
                activity=name,
                reason=result.reason,
                **base,
            )
            return [*emits, self._event(terminated)], None
        following = slips.next_step(done)
        if following is not None:
            return emits, Hop(following.address, done, f"{execution}/forward")
        total_ms = round((ended_at - slip.created_at).total_seconds() * 1000)
        completed = RoutingSlipCompleted(
            event_id=derive_event_id(slip.tracking_number, "completed"),
            duration_ms=total_ms,
            variables=done.variables,
            **base,
        )
        return [*emits, self._event(completed)], None

    # --- compensate ------------------------------------------------------------------------------

    def _compensate_next(self, slip: RoutingSlip, now: datetime.datetime) -> Outcome:
        """On to undo the slip's last done step, or the slip's end, faulted, when nothing is left to undo."""
        entry = slips.to_compensate(slip)
        if entry is not None:
            return [], Hop(entry.address, slip, f"{entry.execution_id}/compensate")
        faulted = RoutingSlipFaulted(
            event_id=derive_event_id(slip.tracking_number, "faulted"),
            reason=slips.fault_reason(slip),
            **slip_event_fields(slip, now),
        )
        return [self._event(faulted)], None

    def _compensate(self, request: FulfillmentRequest, slip: RoutingSlip, topic: str) -> Outcome:
        entry = slips.to_compensate(slip)
        if entry is None or entry.address != topic:
            raise UndecodableRecord(
                f"the slip's next compensation is {entry.address if entry else 'none'}, not {topic}"
            )
        now = utc_now()
        base = slip_event_fields(slip, now)
        context = CompensateContext(
            request=request,
            log=dict(entry.data),
            idempotency_key=f"{slip.tracking_number}/{entry.execution_id}/compensate",
            now=now,
        )
        try:
            self._run(f"compensating {entry.name}", lambda: self._activities[entry.name].compensate(context))
        except ActivityError as error:  # a step that cannot be undone parks the slip for an operator
            cause = error.__cause__ or error
            reason = f"{type(cause).__name__}: {cause}"
            events = [
                self._event(
                    RoutingSlipActivityCompensationFailed(
                        event_id=derive_event_id(entry.execution_id, "compensation-failed"),
                        activity=entry.name,
                        reason=reason,
                        **base,
                    )
                ),
                self._event(
                    RoutingSlipCompensationFailed(
                        event_id=derive_event_id(entry.execution_id, "slip-compensation-failed"),
                        activity=entry.name,
                        reason=reason,
                        **base,
                    )
                ),
            ]
            return events, Hop(ROUTING_SLIPS_PARKED.name, slip, f"{entry.execution_id}/parked")
        compensated = RoutingSlipActivityCompensated(
            event_id=derive_event_id(entry.execution_id, "compensated"), activity=entry.name, **base
        )
        events, hop = self._compensate_next(slips.compensated(slip), now)
        return [self._event(compensated), *events], hop

    # --- signals ---------------------------------------------------------------------------------

    def _stop(self, command: StopFulfillment, state: State) -> list[Emit]:
        if not STOPPED.load(state):
            STOPPED.save(state, command.reason)
        return []

    def _run(self, what: str, call: Callable[[], Any]) -> Any:
        """The call's result, retried while transient; a failure that outlasts the retries, or any outage, is
        raised as an `Outage` (the record is tried again); anything else as an `ActivityError`."""
        try:
            return retrying(call, self._retry)
        except TransientError as error:
            raise Outage(f"{what} kept failing after {self._retry.attempts} attempts: {error}") from error
        except Exception as error:
            if is_outage(error):
                raise
            raise ActivityError(f"{what} raised {type(error).__name__}: {error}") from error

    def _check_route(self, slip: RoutingSlip) -> None:
        reason = misrouting(slip, self._addresses)
        if reason is not None:
            raise MisroutedSlip(f"routing slip {slip.tracking_number} refused: {reason}")

    def _past_return(self, slip: RoutingSlip) -> bool:
        """Whether the slip did a step after which it is no longer stopped."""
        return any(entry.name in self._points_of_no_return for entry in slip.activity_log)

    # --- output ----------------------------------------------------------------------------------

    def _event(self, event: OrderEvent) -> Emit:
        return Emit(ROUTING_SLIPS_EVENTS, event.order_id, event)

    def _forward(self, request: FulfillmentRequest, hop: Hop) -> Emit:
        event_id = derive_event_id(hop.slip.tracking_number, hop.purpose)
        return forward(self._slips, request, hop.slip, hop.address, event_id, utc_now())


def forward(
    codec: SlipCodec,
    request: FulfillmentRequest,
    slip: RoutingSlip,
    address: str,
    event_id: uuid.UUID,
    now: datetime.datetime,
) -> Emit:
    """The request sent on to `address` (a step, a compensation or the parked topic), the slip in its header."""
    message = request.model_copy(update={"event_id": event_id, "occurred_at": now})
    return Emit(topic_named(address), slip.order_id, message, headers=codec.header(slip))


class _SlipFields(TypedDict):
    order_id: str
    occurred_at: datetime.datetime
    tracking_number: uuid.UUID


def slip_event_fields(slip: RoutingSlip, now: datetime.datetime) -> _SlipFields:
    """What every routing-slip event carries."""
    return {"order_id": slip.order_id, "occurred_at": now, "tracking_number": slip.tracking_number}
