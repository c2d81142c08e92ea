"""Customs: declare the order's goods for export, at the order's value; compensation cancels the declaration.

- Arguments: `origin`, the country the parcel leaves from, decided by the planner.
- Log: `declaration_id`.

The customs service may be unavailable for a while: it raises `TransientError`, and the host retries; if it
stays unavailable the slip pauses (an outage) rather than faulting: a declaration is not refused, only late.
"""

from __future__ import annotations

from pydantic import BaseModel

from processors.adapters.fulfillment_simulators import Customs
from processors.routingslip.activity import CompensateContext, Completed, ExecuteContext, ExecutionResult


class CustomsArguments(BaseModel):
    origin: str


class CustomsLog(BaseModel):
    declaration_id: str


class DeclareCustoms:
    name = "customs"

    def __init__(self, customs: Customs) -> None:
        self.customs = customs

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        arguments = CustomsArguments.model_validate(context.arguments)
        request = context.request
        declaration_id = self.customs.declare(
            context.idempotency_key,
            request.order_id,
            origin=arguments.origin,
            destination=request.shipping_address.country,
            value=request.total,
        )
        return Completed(log=CustomsLog(declaration_id=declaration_id).model_dump())

    def compensate(self, context: CompensateContext) -> None:
        log = CustomsLog.model_validate(context.log)
        self.customs.cancel_declaration(context.idempotency_key, log.declaration_id)
