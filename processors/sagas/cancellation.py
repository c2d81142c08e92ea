"""The cancellation saga: its states, its transition table and what each step sends, all pure.

`CancelOrder` starts it; where it goes follows from what the order's events established (`OrderFacts`),
through one choice: refuse a delivered, shipped or ended order; wait for an order not seen yet or still in
intake, payment or reservation to be decided; otherwise stop fulfillment (the routing slip compensates),
refund what stays charged, release the reserved stock and end `Cancelled` with an `OrderCancelled`
(notifications tell the customer). Every waiting step has a timeout (a durable timer) and a number of
attempts; an order that never comes is refused as unknown; a refund the gateway cannot make is retried with
backoff, then made good in store credit; a step that runs out of attempts ends the saga `Failed` with its
reason, and `RetrySaga` (`oms sagas retry ORDER_ID`) resumes it.

Each `CancelOrder` gets one answer, and answers never contradict each other: a request that comes while a
cancellation is under way (or failed, awaiting an operator) is answered when that cancellation ends, with
its outcome. `docs/sagas.md` has the rules as a table (`RULES` in `processors.sagas.rules`).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel

from processors.runtime.records import Emit, derive_event_id
from processors.sagas.facts import OrderFacts
from processors.sagas.machine import CHOICE, SAME, Branch, Guard, StateMachine, Step, Transition, always
from schemas.models import (
    CancelOrder,
    Money,
    OrderCancellationRejected,
    OrderCancelled,
    RefundPayment,
    ReleaseInventory,
    SagaTransitioned,
    StopFulfillment,
    TimerScheduled,
)
from topology.topics import (
    FULFILLMENT_CONTROL,
    INVENTORY_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_COMMANDS,
    SAGA_TIMERS,
    SAGAS_EVENTS,
    TIMERS,
)

SAGA = "cancellation"


class Phase(StrEnum):
    IDLE = "Idle"
    AWAITING_ORDER = "AwaitingOrder"
    AWAITING_PAYMENT = "AwaitingPayment"
    AWAITING_INVENTORY = "AwaitingInventory"
    STOPPING_FULFILLMENT = "StoppingFulfillment"
    REFUNDING = "Refunding"
    REFUNDING_TO_STORE_CREDIT = "RefundingToStoreCredit"
    RELEASING_INVENTORY = "ReleasingInventory"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    FAILED = "Failed"


ACTIVE = (
    Phase.AWAITING_ORDER,
    Phase.AWAITING_PAYMENT,
    Phase.AWAITING_INVENTORY,
    Phase.STOPPING_FULFILLMENT,
    Phase.REFUNDING,
    Phase.REFUNDING_TO_STORE_CREDIT,
    Phase.RELEASING_INVENTORY,
)
PAST_INTAKE = ACTIVE[1:]
REFUND_PHASES = (Phase.REFUNDING, Phase.REFUNDING_TO_STORE_CREDIT)


class Trigger(StrEnum):
    CANCEL = "CancelOrder"
    PROGRESS = "order progressed"
    REFUND_UNAVAILABLE = "refund unavailable"
    REFUND_FAILED = "refund failed"
    TIMEOUT = "timeout"
    RETRY = "RetrySaga"


class Action(StrEnum):
    REJECT_REQUEST = "reject the request"
    ANSWER_LATER = "answer with the outcome"
    SCHEDULE_RETRY = "retry after backoff"
    REPEAT_STEP = "repeat the step"


class Refusal(StrEnum):
    """Why a cancellation is refused, machine-readable (`OrderCancellationRejected.code`)."""

    DELIVERED = "delivered"
    SHIPPED = "shipped"
    UNKNOWN_ORDER = "unknown-order"
    NEVER_DECIDED = "never-decided"
    ALREADY_CANCELLED = "already-cancelled"
    ORDER_REJECTED = "order-rejected"
    PAYMENT_FAILED = "payment-failed"
    OUT_OF_STOCK = "out-of-stock"


@dataclass(frozen=True)
class StepPolicy:
    """How long a step waits for its answer, how often it is tried, and the first pause before retrying a
    refund the gateway could not make (doubling each time)."""

    timeout_s: float
    attempts: int
    backoff_s: float = 0.0


POLICIES: dict[Phase, StepPolicy] = {
    Phase.AWAITING_ORDER: StepPolicy(timeout_s=60, attempts=1),
    Phase.AWAITING_PAYMENT: StepPolicy(timeout_s=30, attempts=3),
    Phase.AWAITING_INVENTORY: StepPolicy(timeout_s=30, attempts=3),
    Phase.STOPPING_FULFILLMENT: StepPolicy(timeout_s=30, attempts=3),
    Phase.REFUNDING: StepPolicy(timeout_s=20, attempts=3, backoff_s=1.0),
    Phase.REFUNDING_TO_STORE_CREDIT: StepPolicy(timeout_s=20, attempts=2),
    Phase.RELEASING_INVENTORY: StepPolicy(timeout_s=20, attempts=3),
}


class CancellationSaga(BaseModel):
    """One order's cancellation, as kept in the processor's changelog-backed state."""

    phase: Phase = Phase.IDLE
    saga_id: str | None = None  # the CancelOrder that started it
    reason: str = ""
    requested_by: str = "customer"
    attempt: int = 1  # of the current step
    timer_generation: int = 0  # only the timer set last counts when it fires
    refund_request_id: str | None = None  # the RefundPayment whose answer is awaited
    commands_seen: list[str] = []  # CancelOrder and RetrySaga ids: a duplicate is ignored
    answer_later: list[str] = []  # CancelOrder ids that came during this cancellation, answered when it ends


def policies(cancel_waits_for_order_s: float) -> dict[Phase, StepPolicy]:
    """`POLICIES`, with the configured wait for an order a cancellation overtook."""
    return {**POLICIES, Phase.AWAITING_ORDER: StepPolicy(timeout_s=cancel_waits_for_order_s, attempts=1)}


@dataclass(frozen=True)
class Situation:
    """What the guards look at."""

    facts: OrderFacts
    saga: CancellationSaga
    cause_reason: str = ""  # the triggering record's reason, e.g. why a refund failed
    policies: Mapping[Phase, StepPolicy] = field(default_factory=lambda: POLICIES)

    @property
    def attempts_left(self) -> bool:
        policy = self.policies.get(self.saga.phase)
        return policy is not None and self.saga.attempt < policy.attempts


Condition = Guard[Situation]

DELIVERED = Condition("delivered", lambda s: s.facts.delivered or s.facts.slip == "completed")
SHIPPED = Condition("shipped", lambda s: s.facts.shipped and not s.facts.fulfillment_over)
REJECTED_AT_INTAKE = Condition("rejected by intake", lambda s: s.facts.rejected is not None)
PAYMENT_FAILED = Condition("payment failed", lambda s: s.facts.payment_failed is not None)
SHORT = Condition("out of stock", lambda s: s.facts.shortage)
NEVER_PLACED = Condition("never placed", lambda s: not s.facts.placed)
NOT_CREATED = Condition("not created yet", lambda s: not s.facts.created)
UNPAID = Condition("payment undecided", lambda s: s.facts.charged is None)
UNRESERVED = Condition("stock undecided", lambda s: s.facts.reserved is None)
SLIP_STUCK = Condition("slip compensation failed", lambda s: s.facts.slip == "compensation_failed")
SLIP_BUSY = Condition("slip not over", lambda s: not s.facts.fulfillment_over)
MONEY_OUT = Condition("money still charged", lambda s: not s.facts.money_back)
STOCK_HELD = Condition("stock still held", lambda s: not s.facts.released)
ATTEMPTS_LEFT = Condition("attempts left", lambda s: s.attempts_left)
OUT_OF_ATTEMPTS = Condition("out of attempts", lambda s: not s.attempts_left)
MONEY_BACK = Condition("all money back", lambda s: s.facts.money_back)


def intake_rejection(situation: Situation) -> str:
    return f"the order was rejected: {situation.facts.rejected}"


def payment_failure(situation: Situation) -> str:
    return f"the order already ended: its payment failed ({situation.facts.payment_failed})"


def stuck_reason(situation: Situation) -> str:
    return (
        f"the routing slip could not be undone ({situation.facts.slip_problem}); "
        "resume it with `oms slips resume`, then `oms sagas retry`"
    )


def out_of_attempts(situation: Situation) -> str:
    policy = situation.policies[situation.saga.phase]
    return f"{situation.saga.phase} got no answer in {policy.attempts} attempts of {policy.timeout_s:g}s"


def refund_failure(situation: Situation) -> str:
    return f"the refund failed: {situation.cause_reason}"


def constant(text: str) -> Callable[[Situation], str]:
    return lambda _situation: text


# fmt: off
CANCELLATION: StateMachine[Situation] = StateMachine(
    name=SAGA,
    initial=Phase.IDLE,
    final=(Phase.CANCELLED, Phase.REJECTED, Phase.FAILED),
    choice_name="WhereIsTheOrder",
    transitions=(
        Transition((Phase.IDLE, Phase.REJECTED), Trigger.CANCEL, CHOICE),
        Transition((Phase.CANCELLED,), Trigger.CANCEL, SAME, action=Action.REJECT_REQUEST,
                   reason=constant("the order is already cancelled"), code=Refusal.ALREADY_CANCELLED),
        Transition((*ACTIVE, Phase.FAILED), Trigger.CANCEL, SAME, action=Action.ANSWER_LATER),
        Transition(ACTIVE, Trigger.PROGRESS, CHOICE),
        Transition((Phase.REFUNDING,), Trigger.REFUND_UNAVAILABLE, SAME, ATTEMPTS_LEFT, Action.SCHEDULE_RETRY),
        Transition((Phase.REFUNDING,), Trigger.REFUND_UNAVAILABLE, Phase.REFUNDING_TO_STORE_CREDIT, OUT_OF_ATTEMPTS),
        Transition(REFUND_PHASES, Trigger.REFUND_FAILED, CHOICE, MONEY_BACK),
        Transition(REFUND_PHASES, Trigger.REFUND_FAILED, Phase.FAILED, reason=refund_failure),
        Transition(ACTIVE, Trigger.TIMEOUT, SAME, ATTEMPTS_LEFT, Action.REPEAT_STEP),
        Transition((Phase.AWAITING_ORDER,), Trigger.TIMEOUT, Phase.REJECTED, NEVER_PLACED,
                   reason=constant("no such order"), code=Refusal.UNKNOWN_ORDER),
        Transition((Phase.AWAITING_ORDER,), Trigger.TIMEOUT, Phase.REJECTED, OUT_OF_ATTEMPTS,
                   reason=constant("the order was placed, but intake never decided it"), code=Refusal.NEVER_DECIDED),
        Transition(PAST_INTAKE, Trigger.TIMEOUT, Phase.FAILED, OUT_OF_ATTEMPTS, reason=out_of_attempts),
        Transition((Phase.FAILED,), Trigger.RETRY, CHOICE),
    ),
    choice=(
        Branch(DELIVERED, Phase.REJECTED, constant("the order was delivered"), Refusal.DELIVERED),
        Branch(SHIPPED, Phase.REJECTED, constant("the order has shipped; it can be returned once delivered"),
               Refusal.SHIPPED),
        Branch(REJECTED_AT_INTAKE, Phase.REJECTED, intake_rejection, Refusal.ORDER_REJECTED),
        Branch(PAYMENT_FAILED, Phase.REJECTED, payment_failure, Refusal.PAYMENT_FAILED),
        Branch(SHORT, Phase.REJECTED, constant("the order already ended: out of stock, its payment refunded"),
               Refusal.OUT_OF_STOCK),
        Branch(NOT_CREATED, Phase.AWAITING_ORDER),
        Branch(UNPAID, Phase.AWAITING_PAYMENT),
        Branch(UNRESERVED, Phase.AWAITING_INVENTORY),
        Branch(SLIP_STUCK, Phase.FAILED, stuck_reason),
        Branch(SLIP_BUSY, Phase.STOPPING_FULFILLMENT),
        Branch(MONEY_OUT, Phase.REFUNDING),
        Branch(STOCK_HELD, Phase.RELEASING_INVENTORY),
        Branch(always(), Phase.CANCELLED),
    ),
)
# fmt: on


@dataclass(frozen=True)
class Cause:
    """The record that triggered a step: its id seeds the ids of everything the step emits."""

    event_id: str
    order_id: str
    type: str
    reason: str = ""


def requested(saga: CancellationSaga, cancel: CancelOrder) -> CancellationSaga:
    """The saga as `cancel` finds it: a new instance unless one is under way or over."""
    if saga.phase not in (Phase.IDLE, Phase.REJECTED):
        return saga
    return saga.model_copy(
        update={
            "saga_id": str(cancel.event_id),
            "reason": cancel.reason,
            "requested_by": cancel.requested_by,
            "attempt": 1,
        }
    )


@dataclass(frozen=True)
class Advanced:
    saga: CancellationSaga
    emits: list[Emit]


def advance(
    facts: OrderFacts,
    saga: CancellationSaga,
    trigger: Trigger,
    cause: Cause,
    now: datetime.datetime,
    step_policies: Mapping[Phase, StepPolicy] = POLICIES,
) -> Advanced:
    """What `trigger` does to the saga: its next state and what it sends; nothing if it means nothing now."""
    step = CANCELLATION.fire(saga.phase, trigger, Situation(facts, saga, cause.reason, step_policies))
    if step is None:
        return Advanced(saga, [])
    emits: list[Emit] = []
    actions: list[str] = []
    updated = saga.model_copy(update={"phase": Phase(step.target)})
    if step.action == Action.REJECT_REQUEST:
        emits.append(rejection(cause.order_id, cause.event_id, step.reason or "", step.code, now))
        actions.append("OrderCancellationRejected")
    elif step.action == Action.ANSWER_LATER:
        updated = updated.model_copy(update={"answer_later": [*updated.answer_later, cause.event_id]})
        actions.append(Action.ANSWER_LATER)
    elif step.action == Action.SCHEDULE_RETRY:
        policy = step_policies[updated.phase]
        updated, timer = set_timer(updated, cause, policy.backoff_s * 2 ** (updated.attempt - 1), "retry", now)
        emits.append(timer)
        actions.append(describe(timer))
    # A request after a refusal is a new instance: refused again, it is answered again.
    asked_again = trigger == Trigger.CANCEL and saga.phase == Phase.REJECTED
    if step.moved or step.action == Action.REPEAT_STEP or asked_again:
        attempt = updated.attempt + 1 if step.action == Action.REPEAT_STEP else 1
        updated = updated.model_copy(update={"attempt": attempt})
        updated, entered = enter(facts, updated, cause, step, now, step_policies)
        emits.extend(entered)
        actions.extend(describe(emit) for emit in entered)
    if not step.moved and not actions and trigger != Trigger.RETRY:
        return Advanced(updated, [])  # news that does not move the saga: nothing to report
    emits.insert(0, transitioned(updated, saga.phase, step, cause, actions, now))
    return Advanced(updated, emits)


def enter(
    facts: OrderFacts,
    saga: CancellationSaga,
    cause: Cause,
    step: Step,
    now: datetime.datetime,
    step_policies: Mapping[Phase, StepPolicy] = POLICIES,
) -> tuple[CancellationSaga, list[Emit]]:
    """What (re-)entering the saga's phase sends: the step's command, and the timer that bounds its wait; at
    the end, the answer to the request that started it and to those that came meanwhile."""
    order_id = cause.order_id
    command_id = derive_event_id(cause.event_id, f"{SAGA}/{saga.phase}/{saga.attempt}")
    emits: list[Emit] = []
    match saga.phase:
        case Phase.STOPPING_FULFILLMENT:
            stop = StopFulfillment(event_id=command_id, order_id=order_id, occurred_at=now, reason=saga.reason)
            emits.append(Emit(FULFILLMENT_CONTROL, order_id, stop))
        case Phase.REFUNDING | Phase.REFUNDING_TO_STORE_CREDIT:
            amount = facts.still_charged()
            assert amount is not None, "the choice refunds only what stays charged"
            refund = RefundPayment(
                event_id=command_id,
                order_id=order_id,
                occurred_at=now,
                amount=amount,
                reason=f"order cancelled: {saga.reason}",
                store_credit_if_unavailable=saga.phase == Phase.REFUNDING_TO_STORE_CREDIT,
            )
            saga = saga.model_copy(update={"refund_request_id": str(command_id)})
            emits.append(Emit(PAYMENTS_COMMANDS, order_id, refund))
        case Phase.RELEASING_INVENTORY:
            release = ReleaseInventory(
                event_id=command_id,
                order_id=order_id,
                occurred_at=now,
                lines=facts.reserved or [],
                reason=f"order cancelled: {saga.reason}",
            )
            emits.append(Emit(INVENTORY_COMMANDS, order_id, release))
        case Phase.CANCELLED:
            refunded = None
            if facts.charged is not None:
                refunded = Money(amount_minor=facts.refunded_minor, currency=facts.charged.currency)
            cancelled = OrderCancelled(
                event_id=derive_event_id(saga.saga_id or cause.event_id, "order-cancelled"),
                order_id=order_id,
                occurred_at=now,
                reason=saga.reason,
                requested_by=saga.requested_by,
                refunded=refunded,
            )
            answers = answered_later(saga, order_id, "the order is already cancelled", Refusal.ALREADY_CANCELLED, now)
            ended = [Emit(ORDERS_EVENTS, order_id, cancelled), *answers, *cancel_timer(saga, order_id)]
            return saga.model_copy(update={"answer_later": []}), ended
        case Phase.REJECTED:
            first = rejection(order_id, saga.saga_id or cause.event_id, step.reason or "", step.code, now)
            answers = answered_later(saga, order_id, step.reason or "", step.code, now)
            return saga.model_copy(update={"answer_later": []}), [first, *answers, *cancel_timer(saga, order_id)]
        case Phase.FAILED:
            return saga, cancel_timer(saga, order_id)
    policy = step_policies[saga.phase]
    saga, timer = set_timer(saga, cause, policy.timeout_s, "timeout", now)
    return saga, [*emits, timer]


def answered_later(saga: CancellationSaga, order_id: str, reason: str, code: str, now: datetime.datetime) -> list[Emit]:
    """The requests that came during the cancellation, each refused with its outcome: they cannot do more."""
    return [rejection(order_id, request, reason, code, now) for request in saga.answer_later]


def cancel_timer(saga: CancellationSaga, order_id: str) -> list[Emit]:
    """The saga's timer's tombstone, when it ever set one: a saga that ended has no timeout left, and a timer
    left pending would fire for nothing (after an outage, a burst of them)."""
    return [Emit(TIMERS, timer_id_of(order_id), None)] if saga.timer_generation else []


def timer_id_of(order_id: str) -> str:
    return f"{order_id}/{SAGA}"


def set_timer(
    saga: CancellationSaga, cause: Cause, delay_s: float, purpose: str, now: datetime.datetime
) -> tuple[CancellationSaga, Emit]:
    """One timer per saga (its id is the order's): setting it again replaces the pending one."""
    generation = saga.timer_generation + 1
    timer_id = timer_id_of(cause.order_id)
    timer = TimerScheduled(
        event_id=derive_event_id(cause.event_id, f"{SAGA}/timer/{generation}"),
        order_id=cause.order_id,
        occurred_at=now,
        timer_id=timer_id,
        due_at=now + datetime.timedelta(seconds=delay_s),
        fire_topic=SAGA_TIMERS.name,
        purpose=f"{saga.phase} {purpose}",
        attempt=generation,
    )
    return saga.model_copy(update={"timer_generation": generation}), Emit(TIMERS, timer_id, timer)


def rejection(order_id: str, cancel_event_id: str, reason: str, code: str, now: datetime.datetime) -> Emit:
    rejected = OrderCancellationRejected(
        event_id=derive_event_id(cancel_event_id, "cancellation-rejected"),
        order_id=order_id,
        occurred_at=now,
        cancel_event_id=uuid.UUID(cancel_event_id),
        reason=reason,
        code=code,
    )
    return Emit(ORDERS_EVENTS, order_id, rejected)


def describe(emit: Emit) -> str:
    """An action as `oms.sagas.events` lists it."""
    if emit.record is None:
        return f"cancel {emit.topic.name} {emit.key}"
    fields = emit.record.model_dump()
    match emit.record:
        case TimerScheduled():
            return f"timer {fields['purpose']} at {fields['due_at'].isoformat()}"
        case RefundPayment(amount=amount, store_credit_if_unavailable=credit):
            return f"RefundPayment {amount.amount_minor} {amount.currency}" + (" or store credit" if credit else "")
    return type(emit.record).__name__


def transitioned(
    saga: CancellationSaga,
    source: str,
    step: Step,
    cause: Cause,
    actions: list[str],
    now: datetime.datetime,
) -> Emit:
    event = SagaTransitioned(
        event_id=derive_event_id(cause.event_id, f"{SAGA}/{source}->{saga.phase}/{step.action}"),
        order_id=cause.order_id,
        occurred_at=now,
        saga=SAGA,
        saga_id=saga.saga_id or cause.event_id,
        from_state=source,
        to_state=saga.phase,
        trigger=cause.type if step.trigger in (Trigger.PROGRESS, Trigger.CANCEL, Trigger.RETRY) else step.trigger,
        trigger_event_id=cause.event_id,
        actions=actions,
        attempt=saga.attempt,
        reason=step.reason,
    )
    return Emit(SAGAS_EVENTS, cause.order_id, event)
