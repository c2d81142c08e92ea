"""What the sagas know of an order: the facts its events established, folded into one small record per order.

Folding is idempotent: a duplicate or replayed event changes nothing, and `observe` says whether anything
changed, so that a saga reacts to news only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from processors.intake_rules import is_duplicate_id_rejection
from schemas.models import (
    AvroRecord,
    InventoryReleased,
    InventoryReserved,
    InventoryShortage,
    Money,
    OrderCreated,
    OrderDelivered,
    OrderRejected,
    OrderShipped,
    PaymentFailed,
    PaymentProcessed,
    PaymentRefunded,
    PlaceOrder,
    RoutingSlipCompensationFailed,
    RoutingSlipCompleted,
    RoutingSlipFaulted,
    RoutingSlipTerminated,
    StockLine,
)

SlipOutcome = Literal["completed", "faulted", "terminated", "compensation_failed"]
FINAL_SLIP_OUTCOMES = ("completed", "faulted", "terminated")


class OrderFacts(BaseModel):
    placed: bool = False
    created: bool = False
    rejected: str | None = None  # intake's reasons
    charged: Money | None = None
    payment_failed: str | None = None
    reserved: list[StockLine] | None = None
    shortage: bool = False
    released: bool = False
    slip: SlipOutcome | None = None
    slip_problem: str | None = None  # why the slip faulted or could not be compensated
    shipped: bool = False
    delivered: bool = False
    refunded_minor: int = 0
    refunds_counted: list[str] = []  # PaymentRefunded event ids already added up

    @property
    def fulfillment_over(self) -> bool:
        """The routing slip will do nothing more (it finished, or was undone)."""
        return self.slip in ("faulted", "terminated")

    @property
    def money_back(self) -> bool:
        return self.charged is None or self.refunded_minor >= self.charged.amount_minor

    def still_charged(self) -> Money | None:
        if self.charged is None or self.money_back:
            return None
        return self.charged.model_copy(update={"amount_minor": self.charged.amount_minor - self.refunded_minor})


def observe(facts: OrderFacts, record: AvroRecord) -> OrderFacts:
    """The facts after `record`; the same object when it taught nothing new."""
    update = learned(facts, record)
    changed = {name: value for name, value in update.items() if getattr(facts, name) != value}
    return facts.model_copy(update=changed) if changed else facts


def learned(facts: OrderFacts, record: AvroRecord) -> dict[str, object]:
    match record:
        case PlaceOrder():
            return {"placed": True}
        case OrderCreated():
            return {"placed": True, "created": True}
        case OrderRejected() if is_duplicate_id_rejection(record):
            return {}  # answers a second PlaceOrder with this id; the order holding it is another's
        case OrderRejected(reasons=reasons):
            return {"placed": True, "rejected": "; ".join(reasons)}
        case PaymentProcessed(amount=amount):
            return {"charged": amount}
        case PaymentFailed(reason=reason):
            return {"payment_failed": reason}
        case PaymentRefunded(event_id=event_id, amount=amount) if str(event_id) not in facts.refunds_counted:
            return {
                "refunded_minor": facts.refunded_minor + amount.amount_minor,
                "refunds_counted": [*facts.refunds_counted, str(event_id)],
            }
        case InventoryReserved(lines=lines):
            return {"reserved": lines}
        case InventoryShortage():
            return {"shortage": True}
        case InventoryReleased():
            return {"released": True}
        case RoutingSlipCompleted():
            return {"slip": "completed"}
        case RoutingSlipFaulted(reason=reason):
            return {"slip": "faulted", "slip_problem": reason}
        case RoutingSlipTerminated(reason=reason):
            return {"slip": "terminated", "slip_problem": reason or None}
        case RoutingSlipCompensationFailed(activity=activity, reason=reason) if facts.slip not in FINAL_SLIP_OUTCOMES:
            return {"slip": "compensation_failed", "slip_problem": f"compensating {activity} failed: {reason}"}
        case OrderShipped():
            return {"shipped": True}
        case OrderDelivered():
            return {"delivered": True}
    return {}
