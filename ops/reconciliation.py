"""Exact reconciliation per order of what the workflows published, after a run with failures; pure.

Given the records read from the order-keyed topics (and, where the run can read them, the stock levels before
and after, the simulators' ledgers and the dead-letter counts), every order must satisfy:

- exactly one terminal outcome, as `oms.orders.events` tells it: rejected (`OrderRejected`), payment failed or
  out of stock (`OrderFailed`), delivered or cancelled; every `PaymentFailed` and `InventoryShortage` told
  there by the one `OrderFailed` that names it, and no `OrderFailed` without one; every `CancelOrder` answered
  once; no event published twice (the same `event_id` on a topic);
- money: one charge at most; cancelled and short orders get back what they were charged, as refunds plus
  store credit, never more, as their `OrderCancelled` or `OrderFailed` says; delivered orders keep it;
  rejected and failed orders were never charged; the payment gateway's ledger agrees with the topics;
- stock per SKU: seeded - reserved + restocked = final (the partial grants of a short order come and go on
  the SKU side and leave no trace here); a cancelled order gives back all it held, a delivered one nothing;
- fulfillment: one routing slip per order, each activity done once (again only after it revised the
  itinerary, as ship does for another carrier) and undone at most once, one end per slip; a delivered
  order's slip completed untouched, a cancelled order's slip undone (nothing left outstanding in the
  fulfillment ledger); each ledger effect once per order;
- notifications: one per order and kind for each piece of news the order's events call for, none more (a
  rejected order has no address but its rejection's);
- no new dead letters.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from processors.adapters.fulfillment_simulators import UNDOES, UNDONE_BY, Effect
from processors.customer_messages import Notified
from processors.intake_rules import is_duplicate_id_rejection
from processors.notifications import notice_for
from schemas.models import (
    AvroRecord,
    CancelOrder,
    InventoryReleased,
    InventoryReserved,
    InventoryShortage,
    NotificationSent,
    OrderCancellationRejected,
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderFailed,
    OrderFailureReason,
    OrderRejected,
    PaymentFailed,
    PaymentMethod,
    PaymentProcessed,
    PaymentRefunded,
    RoutingSlipActivityCompensated,
    RoutingSlipActivityCompleted,
    RoutingSlipCompensationFailed,
    RoutingSlipCompleted,
    RoutingSlipCreated,
    RoutingSlipFaulted,
    RoutingSlipRevised,
    RoutingSlipTerminated,
    StockLine,
)

Record = TypeVar("Record", bound=AvroRecord)
Report = Callable[[str], None]

REJECTED, PAYMENT_FAILED, OUT_OF_STOCK = "rejected", "payment-failed", "out-of-stock"
DELIVERED, CANCELLED = "delivered", "cancelled"
OUTCOMES = (REJECTED, PAYMENT_FAILED, OUT_OF_STOCK, DELIVERED, CANCELLED)
# The outcome each reason of an `OrderFailed` tells, and the event on another topic that decides it.
FAILURES: Mapping[OrderFailureReason, str] = {
    OrderFailureReason.PAYMENT_FAILED: PAYMENT_FAILED,
    OrderFailureReason.OUT_OF_STOCK: OUT_OF_STOCK,
}
DECIDED_BY: Mapping[str, type[PaymentFailed] | type[InventoryShortage]] = {
    PAYMENT_FAILED: PaymentFailed,
    OUT_OF_STOCK: InventoryShortage,
}
OTHER_FAILURE = "failed"  # an `OrderFailed` whose reason this reconciliation does not know
SLIP_ENDS = (RoutingSlipCompleted, RoutingSlipFaulted, RoutingSlipTerminated, RoutingSlipCompensationFailed)

# What each label of the order generator (`ops.orders.Expected`) may end as; a cancelled order may end
# cancelled instead when it had been reserved (before that, the saga waits and then refuses).
ALLOWED_OUTCOMES: Mapping[str, frozenset[str]] = {
    "rejected": frozenset({REJECTED}),
    "payment-failed": frozenset({PAYMENT_FAILED}),
    "shortage": frozenset({OUT_OF_STOCK}),
    "may-shortage": frozenset({DELIVERED, OUT_OF_STOCK}),
    "created-paid-reserved": frozenset({DELIVERED}),
}
CANCELLABLE_LABELS = frozenset({"created-paid-reserved", "may-shortage"})


@dataclass(frozen=True)
class Seen:
    """One record as read from a topic (committed), keyed."""

    topic: str
    key: str
    record: AvroRecord


@dataclass(frozen=True)
class Stock:
    seeded: Mapping[str, int]
    """Units per SKU set before the orders were produced; only these SKUs are reconciled."""
    final: Mapping[str, int]
    """Units per SKU once every order ended."""


@dataclass(frozen=True)
class Ledgers:
    """What the simulators recorded, per order: the outside world's side of the story."""

    charged: Mapping[str, int]
    """Minor units approved and not voided by the payment gateway."""
    returned: Mapping[str, int]
    """Minor units refunded or issued as store credit by the payment gateway."""
    fulfillment: Sequence[Effect]
    """Every fulfillment effect done or undone (warehouse, customs, carriers)."""


@dataclass(frozen=True)
class Violation:
    order_id: str
    """The order, or `*` for what belongs to none (a SKU's stock, a dead-letter topic)."""
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.order_id}: [{self.rule}] {self.detail}"


@dataclass
class Reconciliation:
    counts: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def report(self, limit: int = 200) -> str:
        width = max((len(name) for name in self.counts), default=0)
        lines = ["reconciliation", *(f"  {name:<{width}}  {value:>8,}" for name, value in self.counts.items())]
        by_rule = Counter(violation.rule for violation in self.violations)
        if not self.violations:
            lines.append("no violation: every order reconciles exactly")
            return "\n".join(lines)
        lines.append(f"{len(self.violations)} violation(s): " + ", ".join(f"{r} {n}" for r, n in by_rule.items()))
        lines.extend(f"  {violation}" for violation in self.violations[:limit])
        if len(self.violations) > limit:
            lines.append(f"  ... and {len(self.violations) - limit} more")
        return "\n".join(lines)


def reconcile(
    order_ids: Collection[str],
    seen: Iterable[Seen],
    *,
    cancels: Mapping[str, int] | None = None,
    expected: Mapping[str, str] | None = None,
    stock: Stock | None = None,
    ledgers: Ledgers | None = None,
    dead_letters: Mapping[str, int] | None = None,
) -> Reconciliation:
    """Check every order of `order_ids` against the records `seen` (records of other keys are ignored).

    `cancels`: how many `CancelOrder`s each order was sent (each needs one answer); `expected`: each order's
    label from `ops.orders` (its outcome must fit it); `dead_letters`: new records per dead-letter topic."""
    cancels = cancels or {}
    wanted = set(order_ids)
    result = Reconciliation()
    by_order, duplicates = _by_order(seen, wanted)
    for (topic, event_id), times in sorted(duplicates.items()):
        result.violations.append(Violation("*", "exactly-once", f"event {event_id} published {times} times on {topic}"))
    outcomes: dict[str, str | None] = {}
    for order_id in sorted(wanted):
        records = by_order.get(order_id, [])
        outcome = _outcome(order_id, records, cancels.get(order_id, 0), expected, result)
        outcomes[order_id] = outcome
        _check_failures_told(order_id, records, result)
        _check_money(order_id, outcome, records, ledgers, result)
        _check_fulfillment(order_id, outcome, records, ledgers, result)
        _check_notifications(order_id, records, result)
    if stock is not None:
        _check_stock(stock, outcomes, by_order, result)
    for topic, count in sorted((dead_letters or {}).items()):
        if count:
            result.violations.append(Violation("*", "dead-letter", f"{count} new record(s) on {topic}"))
    _count(result, wanted, outcomes, cancels, by_order, stock, ledgers, dead_letters)
    return result


def _by_order(seen: Iterable[Seen], wanted: set[str]) -> tuple[dict[str, list[AvroRecord]], Counter[tuple[str, str]]]:
    """Each order's records, each event once, and the events seen more than once."""
    by_order: dict[str, list[AvroRecord]] = defaultdict(list)
    times: Counter[tuple[str, str]] = Counter()
    for item in seen:
        if item.key not in wanted:
            continue
        identity = (item.topic, str(getattr(item.record, "event_id", "")))
        times[identity] += 1
        if times[identity] == 1:
            by_order[item.key].append(item.record)
    return by_order, Counter({identity: n for identity, n in times.items() if n > 1})


def of_type(records: Iterable[AvroRecord], kind: type[Record]) -> list[Record]:
    return [record for record in records if isinstance(record, kind)]


def terminal_outcomes(records: Sequence[AvroRecord]) -> list[str]:
    """Every terminal outcome the order's events on `oms.orders.events` tell, in the order seen."""
    found = []
    for record in records:
        if isinstance(record, OrderRejected) and not is_duplicate_id_rejection(record):
            found.append(REJECTED)
        elif isinstance(record, OrderFailed):
            found.append(FAILURES.get(record.reason, OTHER_FAILURE))
        elif isinstance(record, OrderDelivered):
            found.append(DELIVERED)
        elif isinstance(record, OrderCancelled):
            found.append(CANCELLED)
    return found


def _outcome(
    order_id: str,
    records: Sequence[AvroRecord],
    cancels: int,
    expected: Mapping[str, str] | None,
    result: Reconciliation,
) -> str | None:
    """The order's one terminal outcome, or None (a violation) when it has none or several."""
    found = terminal_outcomes(records)
    answers = len(of_type(records, OrderCancelled)) + len(of_type(records, OrderCancellationRejected))
    if answers != cancels:
        result.violations.append(
            Violation(order_id, "cancellation", f"{cancels} cancellation(s) asked, {answers} answered")
        )
    if len(found) != 1:
        last = type(records[-1]).__name__ if records else "nothing seen"
        what = f"no terminal outcome (last: {last})" if not found else f"{len(found)} outcomes: {', '.join(found)}"
        result.violations.append(Violation(order_id, "one-outcome", what))
        return None
    outcome = found[0]
    label = (expected or {}).get(order_id)
    if label is not None:
        allowed = ALLOWED_OUTCOMES[label] | ({CANCELLED} if cancels and label in CANCELLABLE_LABELS else set())
        if outcome not in allowed:
            result.violations.append(
                Violation(
                    order_id, "one-outcome", f"ended {outcome}; a {label} order ends {', '.join(sorted(allowed))}"
                )
            )
    return outcome


def _check_failures_told(order_id: str, records: Sequence[AvroRecord], result: Reconciliation) -> None:
    """A failure decided on another topic (`PaymentFailed`, `InventoryShortage`) is told on the orders topic by
    an `OrderFailed` naming it (`caused_by`), and an `OrderFailed` names a failure that was decided."""
    decided = {
        (outcome, str(record.event_id)): kind.__name__
        for outcome, kind in DECIDED_BY.items()
        for record in of_type(records, kind)
    }
    told = {
        (FAILURES.get(record.reason, OTHER_FAILURE), str(record.caused_by)) for record in of_type(records, OrderFailed)
    }
    for outcome, cause in sorted(decided.keys() - told):
        result.violations.append(
            Violation(
                order_id,
                "told",
                f"{decided[outcome, cause]} {cause} ended the order {outcome}; no OrderFailed tells it",
            )
        )
    for outcome, cause in sorted(told - decided.keys()):
        result.violations.append(
            Violation(
                order_id, "told", f"an OrderFailed tells {outcome}, caused by {cause}, which decided no such thing"
            )
        )


def _check_money(
    order_id: str, outcome: str | None, records: Sequence[AvroRecord], ledgers: Ledgers | None, result: Reconciliation
) -> None:
    def violation(detail: str) -> None:
        result.violations.append(Violation(order_id, "money", detail))

    payments = of_type(records, PaymentProcessed)
    refunds = of_type(records, PaymentRefunded)
    charged = sum(payment.amount.amount_minor for payment in payments)
    returned = sum(refund.amount.amount_minor for refund in refunds)
    if len(payments) > 1:
        violation(f"charged {len(payments)} times")
    if returned > charged:
        violation(f"{returned} returned of {charged} charged: refunded twice")
    if outcome in (CANCELLED, OUT_OF_STOCK) and returned != charged:
        violation(f"{outcome}: charged {charged}, refunds plus store credit {returned}")
    if outcome == DELIVERED and returned:
        violation(f"delivered, yet {returned} returned")
    if outcome in (REJECTED, PAYMENT_FAILED) and (charged or returned):
        violation(f"{outcome}, yet charged {charged} and returned {returned}")
    ends: list[OrderCancelled | OrderFailed] = [*of_type(records, OrderCancelled), *of_type(records, OrderFailed)]
    for ended in ends:
        told = ended.refunded.amount_minor if ended.refunded is not None else 0
        if told != returned:
            violation(f"{type(ended).__name__} says {told} refunded, the refunds add up to {returned}")
    if ledgers is not None:
        in_ledger = (ledgers.charged.get(order_id, 0), ledgers.returned.get(order_id, 0))
        if in_ledger != (charged, returned):
            violation(
                f"the gateway charged {in_ledger[0]} and returned {in_ledger[1]}; "
                f"the topics say {charged} and {returned}"
            )


def _check_fulfillment(
    order_id: str, outcome: str | None, records: Sequence[AvroRecord], ledgers: Ledgers | None, result: Reconciliation
) -> None:
    def violation(detail: str) -> None:
        result.violations.append(Violation(order_id, "fulfillment", detail))

    slips = {created.tracking_number for created in of_type(records, RoutingSlipCreated)}
    if len(slips) > 1:
        violation(f"{len(slips)} routing slips")
    if outcome == DELIVERED and not slips:
        violation("delivered without a routing slip")
    for slip in sorted(slips, key=str):
        done = Counter(r.activity for r in of_type(records, RoutingSlipActivityCompleted) if r.tracking_number == slip)
        undone = Counter(
            r.activity for r in of_type(records, RoutingSlipActivityCompensated) if r.tracking_number == slip
        )
        # A step that revises the itinerary (another carrier) completes, and its new version runs after it.
        again = Counter(r.activity for r in of_type(records, RoutingSlipRevised) if r.tracking_number == slip)
        ends = [type(r).__name__ for r in records if isinstance(r, SLIP_ENDS) and r.tracking_number == slip]
        for activity in sorted(set(done) | set(undone)):
            if done[activity] > 1 + again[activity] or undone[activity] > 1:
                violation(f"slip {slip}: {activity} done {done[activity]} times, undone {undone[activity]} times")
        if set(undone) - set(done):
            violation(f"slip {slip}: undid {sorted(set(undone) - set(done))}, which it never did")
        if outcome is not None and len(ends) != 1:
            violation(f"slip {slip} ended {len(ends)} times: {', '.join(ends) or 'never'}")
        if outcome == DELIVERED and (ends != ["RoutingSlipCompleted"] or undone):
            violation(f"delivered, yet slip {slip} ended {ends} with {sorted(undone)} undone")
        if outcome == CANCELLED and set(done) != set(undone):
            violation(f"cancelled, yet slip {slip} left {sorted(set(done) - set(undone))} not undone")
    if ledgers is not None:
        _check_effects(order_id, outcome, [e for e in ledgers.fulfillment if e.order_id == order_id], violation)


def _check_effects(order_id: str, outcome: str | None, effects: Sequence[Effect], violation: Report) -> None:
    kinds = Counter(effect.kind for effect in effects)
    for kind, times in sorted(kinds.items()):
        if times > 1:
            violation(f"the fulfillment ledger has {kind} {times} times")
    undone = {(UNDOES[e.kind], e.subject) for e in effects if e.kind in UNDOES}  # type: ignore[index]
    outstanding = sorted(e.kind for e in effects if e.kind in UNDONE_BY and (e.kind, e.subject) not in undone)
    if outcome == CANCELLED and outstanding:
        violation(f"cancelled, yet the fulfillment ledger has {outstanding} outstanding")
    if outcome == DELIVERED and undone:
        violation(f"delivered, yet the fulfillment ledger undid {sorted(kind for kind, _ in undone)}")
    if outcome in (REJECTED, PAYMENT_FAILED, OUT_OF_STOCK) and effects:
        violation(f"{outcome}, yet the fulfillment ledger has {sorted(kinds)}")


def _check_notifications(order_id: str, records: Sequence[AvroRecord], result: Reconciliation) -> None:
    """Each piece of news the order's events call for told once (answers to commands once per command).

    The customer's address comes with `OrderCreated`: of an order intake rejected, only the rejection itself
    is due (to the address on it, when it has one); other news of it may be told, once at most."""
    possible: Counter[str] = Counter()
    due: Counter[str] = Counter()
    subjects: set[str] = set()
    addressed = bool(of_type(records, OrderCreated))
    for record in records:
        if not isinstance(record, Notified):
            continue
        notice = notice_for(record)
        if notice.subject in subjects:
            continue
        subjects.add(notice.subject)
        possible[str(notice.kind.value)] += 1
        if addressed or (isinstance(record, OrderRejected) and record.customer_email is not None):
            due[str(notice.kind.value)] += 1
    sent = Counter(str(sent.kind.value) for sent in of_type(records, NotificationSent))
    for kind in sorted(set(possible) | set(sent)):
        if not due[kind] <= sent[kind] <= possible[kind]:
            result.violations.append(Violation(order_id, "notification", f"{kind}: {sent[kind]} sent, {due[kind]} due"))


def _units(lines: Iterable[StockLine]) -> Counter[str]:
    units: Counter[str] = Counter()
    for line in lines:
        units[line.sku] += line.quantity
    return units


def _check_stock(
    stock: Stock, outcomes: Mapping[str, str | None], by_order: Mapping[str, list[AvroRecord]], result: Reconciliation
) -> None:
    reserved: Counter[str] = Counter()
    restocked: Counter[str] = Counter()
    for order_id, outcome in outcomes.items():
        records = by_order.get(order_id, [])
        held = sum((_units(r.lines) for r in of_type(records, InventoryReserved)), Counter())
        released = sum((_units(r.lines) for r in of_type(records, InventoryReleased)), Counter())
        if outcome == OUT_OF_STOCK or of_type(records, InventoryShortage):
            continue  # its partial grants were taken and given back on the SKU side
        reserved.update(held)
        restocked.update(released)
        if released - held:
            result.violations.append(
                Violation(order_id, "stock", f"released {dict(released)} of {dict(held)} held: released twice")
            )
        if outcome == CANCELLED and released != held:
            result.violations.append(
                Violation(order_id, "stock", f"cancelled: held {dict(held)}, released {dict(released)}")
            )
        if outcome == DELIVERED and released:
            result.violations.append(Violation(order_id, "stock", f"delivered, yet released {dict(released)}"))
    for sku, seeded in sorted(stock.seeded.items()):
        expected = seeded - reserved[sku] + restocked[sku]
        final = stock.final.get(sku)
        if final != expected:
            result.violations.append(
                Violation(
                    "*",
                    "stock",
                    f"{sku}: seeded {seeded} - reserved {reserved[sku]} + restocked {restocked[sku]} "
                    f"= {expected}, but {final} left",
                )
            )


def _count(
    result: Reconciliation,
    wanted: set[str],
    outcomes: Mapping[str, str | None],
    cancels: Mapping[str, int],
    by_order: Mapping[str, list[AvroRecord]],
    stock: Stock | None,
    ledgers: Ledgers | None,
    dead_letters: Mapping[str, int] | None,
) -> None:
    every = [record for order_id in wanted for record in by_order.get(order_id, [])]
    ended = Counter(outcome for outcome in outcomes.values() if outcome is not None)
    counts = result.counts
    counts["orders"] = len(wanted)
    counts.update({f"outcome {outcome}": ended[outcome] for outcome in OUTCOMES})
    counts["outcome none or several"] = sum(1 for outcome in outcomes.values() if outcome is None)
    counts["cancellations asked"] = sum(cancels.get(order_id, 0) for order_id in wanted)
    counts["cancellations refused"] = len(of_type(every, OrderCancellationRejected))
    counts["charged (minor units)"] = sum(r.amount.amount_minor for r in of_type(every, PaymentProcessed))
    refunds = of_type(every, PaymentRefunded)
    counts["refunded (minor units)"] = sum(
        r.amount.amount_minor for r in refunds if r.method != PaymentMethod.STORE_CREDIT
    )
    counts["store credit (minor units)"] = sum(
        r.amount.amount_minor for r in refunds if r.method == PaymentMethod.STORE_CREDIT
    )
    counts["routing slips"] = len({r.tracking_number for r in of_type(every, RoutingSlipCreated)})
    counts["activities done"] = len(of_type(every, RoutingSlipActivityCompleted))
    counts["activities undone"] = len(of_type(every, RoutingSlipActivityCompensated))
    counts["notifications"] = len(of_type(every, NotificationSent))
    if stock is not None:
        counts["SKUs reconciled"] = len(stock.seeded)
    if ledgers is not None:
        counts["fulfillment ledger effects"] = sum(1 for e in ledgers.fulfillment if e.order_id in wanted)
    if dead_letters is not None:
        counts["dead letters"] = sum(dead_letters.values())
    counts["violations"] = len(result.violations)


def order_ids_of(commands: Iterable[AvroRecord]) -> list[str]:
    """Order ids of produced commands, once each, in order."""
    return list(dict.fromkeys(command.order_id for command in commands if hasattr(command, "order_id")))


def cancels_of(commands: Iterable[AvroRecord]) -> Counter[str]:
    return Counter(command.order_id for command in commands if isinstance(command, CancelOrder))
