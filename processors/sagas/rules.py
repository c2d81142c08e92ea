"""The cancellation rules a shop owner signs off, as data: each situation an order can be in when a
`CancelOrder` (or news during a cancellation) comes, where the saga goes, and what that means for the money,
the stock, the fulfillment and the customer.

`tests/unit/test_cancellation_rules.py` runs every row through the saga's table (`cancellation.advance`), so
a row that stops being true fails; `oms sagas rules --write` renders them into `docs/sagas.md`.
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.sagas.cancellation import Phase, Refusal, Trigger
from processors.sagas.facts import OrderFacts
from schemas.models import Money, StockLine

_PAID = Money(amount_minor=3000, currency="EUR")
_HELD = [StockLine(sku="SKU-MUG-01", quantity=2)]
_CREATED = OrderFacts(placed=True, created=True)
_RESERVED = _CREATED.model_copy(update={"charged": _PAID, "reserved": _HELD})

REFUNDED = "refunded per tender (store credit where the gateway cannot)"
RELEASED = "released"
UNDONE = "done steps undone in reverse"
TOLD_CANCELLED = "cancelled, with the refund"
NOTHING_TAKEN = "nothing taken"


@dataclass(frozen=True)
class Rule:
    situation: str
    facts: OrderFacts
    """What the order's events established."""
    then: Phase
    """Where the saga goes."""
    outcome: str
    money: str
    stock: str
    fulfillment: str
    told: str
    code: str = ""
    """The refusal's code, when the cancellation is refused."""
    trigger: Trigger = Trigger.CANCEL
    phase: Phase = Phase.IDLE
    """The saga's phase when the trigger comes."""


RULES: tuple[Rule, ...] = (
    Rule(
        "cancel before its order arrives",
        OrderFacts(),
        Phase.AWAITING_ORDER,
        "waits for the order (`OMS_CANCEL_WAITS_FOR_ORDER_S`, 60 s), then goes on as below",
        "as below",
        "as below",
        "as below",
        "as below",
    ),
    Rule(
        "... and the order never comes",
        OrderFacts(),
        Phase.REJECTED,
        "refused: no such order",
        "none moved",
        "untouched",
        "none",
        "cancellation refused: no such order",
        code=Refusal.UNKNOWN_ORDER,
        trigger=Trigger.TIMEOUT,
        phase=Phase.AWAITING_ORDER,
    ),
    Rule(
        "placed, intake has not decided",
        OrderFacts(placed=True),
        Phase.AWAITING_ORDER,
        "waits for intake's decision, then goes on as below",
        "as below",
        "as below",
        "as below",
        "as below",
    ),
    Rule(
        "created, payment not decided",
        _CREATED,
        Phase.AWAITING_PAYMENT,
        "waits for the payment, then goes on as below",
        "as below",
        "as below",
        "as below",
        "as below",
    ),
    Rule(
        "paid, stock not decided",
        _CREATED.model_copy(update={"charged": _PAID}),
        Phase.AWAITING_INVENTORY,
        "waits for the reservation, then goes on as below",
        "as below",
        "as below",
        "as below",
        "as below",
    ),
    Rule(
        "reserved, the slip not yet past shipping (pick, pack, gift-wrap, customs)",
        _RESERVED,
        Phase.STOPPING_FULFILLMENT,
        "stops the slip, refunds, releases: cancelled",
        REFUNDED,
        RELEASED,
        UNDONE,
        TOLD_CANCELLED,
    ),
    Rule(
        "shipped (`OrderShipped` seen), not delivered",
        _RESERVED.model_copy(update={"shipped": True}),
        Phase.REJECTED,
        "refused: the order has shipped",
        "kept",
        "kept",
        "goes on to delivery; a return once delivered",
        "cancellation refused: it has shipped",
        code=Refusal.SHIPPED,
    ),
    Rule(
        "the slip ships before the stop reaches it",
        _RESERVED.model_copy(update={"shipped": True}),
        Phase.REJECTED,
        "refused: the order has shipped (the slip refuses stops after `ship`)",
        "kept",
        "kept",
        "goes on to delivery",
        "cancellation refused: it has shipped",
        code=Refusal.SHIPPED,
        trigger=Trigger.PROGRESS,
        phase=Phase.STOPPING_FULFILLMENT,
    ),
    Rule(
        "delivered (or the slip completed)",
        _RESERVED.model_copy(update={"shipped": True, "delivered": True}),
        Phase.REJECTED,
        "refused: the order was delivered",
        "kept",
        "kept",
        "done",
        "cancellation refused: it was delivered",
        code=Refusal.DELIVERED,
    ),
    Rule(
        "rejected by intake",
        OrderFacts(placed=True, rejected="lines: at least one line"),
        Phase.REJECTED,
        "refused: the order was rejected",
        NOTHING_TAKEN,
        "untouched",
        "none",
        "cancellation refused: the order was not accepted",
        code=Refusal.ORDER_REJECTED,
    ),
    Rule(
        "payment failed",
        _CREATED.model_copy(update={"payment_failed": "card declined"}),
        Phase.REJECTED,
        "refused: the order already ended",
        "nothing stays charged (earlier tenders voided)",
        "untouched",
        "none",
        "cancellation refused: the payment had failed",
        code=Refusal.PAYMENT_FAILED,
    ),
    Rule(
        "out of stock",
        _CREATED.model_copy(update={"charged": _PAID, "shortage": True}),
        Phase.REJECTED,
        "refused: the order already ended",
        "refunded by the shortage",
        "nothing held",
        "none",
        "cancellation refused: it was out of stock",
        code=Refusal.OUT_OF_STOCK,
    ),
    Rule(
        "the slip cannot be undone (a compensation failed)",
        _RESERVED.model_copy(update={"slip": "compensation_failed", "slip_problem": "compensating pack failed"}),
        Phase.FAILED,
        "failed: an operator resumes the slip (`oms slips resume`), then the saga (`oms sagas retry`)",
        "kept until resumed",
        "held until resumed",
        "parked",
        "nothing until it ends",
    ),
    Rule(
        "already cancelled",
        _RESERVED.model_copy(update={"slip": "faulted", "refunded_minor": 3000, "released": True}),
        Phase.CANCELLED,
        "refused: already cancelled",
        "refunded once",
        "released once",
        "undone once",
        "cancellation refused: already cancelled",
        code=Refusal.ALREADY_CANCELLED,
        phase=Phase.CANCELLED,
    ),
    Rule(
        "a second request while one is under way (or failed)",
        _RESERVED,
        Phase.STOPPING_FULFILLMENT,
        "answered when the first ends, with its outcome: never a contradiction",
        "as the first",
        "as the first",
        "as the first",
        "the first's outcome (cancelled: 'already cancelled')",
        phase=Phase.STOPPING_FULFILLMENT,
    ),
)

BEGIN, END = "<!-- cancellation rules: generated by `oms sagas rules --write` -->", "<!-- end of rules -->"


def rules_table() -> str:
    """`RULES` as a Markdown table, between its markers."""
    rows = [
        "| situation | the saga | outcome | money | stock | fulfillment | the customer is told |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule in RULES:
        code = f" (`{rule.code}`)" if rule.code else ""
        rows.append(
            f"| {rule.situation} | {rule.phase} → {rule.then} | {rule.outcome}{code} | {rule.money} | {rule.stock} "
            f"| {rule.fulfillment} | {rule.told} |"
        )
    return "\n".join([BEGIN, *rows, END])
