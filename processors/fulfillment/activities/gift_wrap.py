"""Gift-wrap: wrap the packed box as a present; compensation unwraps it.

- Arguments: `box_id`, the variable pack sets.
- Log: `wrap_id`.
"""

from __future__ import annotations

from pydantic import BaseModel

from processors.adapters.fulfillment_simulators import Warehouse
from processors.routingslip.activity import CompensateContext, Completed, ExecuteContext, ExecutionResult


class GiftWrapArguments(BaseModel):
    box_id: str


class GiftWrapLog(BaseModel):
    wrap_id: str


class GiftWrap:
    name = "gift-wrap"

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        arguments = GiftWrapArguments.model_validate(context.arguments)
        wrap_id = self.warehouse.wrap(context.idempotency_key, context.request.order_id, arguments.box_id)
        return Completed(log=GiftWrapLog(wrap_id=wrap_id).model_dump())

    def compensate(self, context: CompensateContext) -> None:
        log = GiftWrapLog.model_validate(context.log)
        self.warehouse.unwrap(context.idempotency_key, log.wrap_id)
