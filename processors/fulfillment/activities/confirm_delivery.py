"""Confirm delivery: wait for the carrier's proof of delivery, signed for when the planner asked.

- Arguments: `signature` ("required" or "none"), decided by the planner; `carrier` and `label_id`, the
  variables ship sets.
- Log: nothing, so there is no compensation: a delivered parcel cannot be undelivered (a return is a new
  workflow).
- Emits `OrderDelivered`, with who signed for it when a signature was required.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from processors.adapters.carriers import Carriers
from processors.routingslip.activity import CompensateContext, Completed, ExecuteContext, ExecutionResult
from processors.runtime.records import Emit, derive_event_id
from schemas.models import OrderDelivered
from topology.topics import ORDERS_EVENTS


class ConfirmDeliveryArguments(BaseModel):
    signature: Literal["required", "none"]
    carrier: str
    label_id: str


class ConfirmDelivery:
    name = "confirm-delivery"

    def __init__(self, carriers: Carriers) -> None:
        self.carriers = carriers

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        arguments = ConfirmDeliveryArguments.model_validate(context.arguments)
        request = context.request
        signed_by = self.carriers.confirm_delivery(
            context.idempotency_key,
            arguments.carrier,
            arguments.label_id,
            signature_required=arguments.signature == "required",
            recipient=request.shipping_address.recipient,
        )
        delivered = OrderDelivered(
            event_id=derive_event_id(context.idempotency_key, "delivered"),
            order_id=request.order_id,
            occurred_at=context.now,
            carrier=arguments.carrier,
            signed_by=signed_by,
        )
        return Completed(emits=(Emit(ORDERS_EVENTS, request.order_id, delivered),))

    def compensate(self, context: CompensateContext) -> None:
        """Never called: execute logs nothing, so the slip has nothing of this step to undo."""
