"""Pick: take the order's items off the shelves; compensation puts them back.

- Arguments: none; what to pick is the request's lines.
- Log: `pick_id` and `items` (`SKU:units,...`), what goes back to the shelf.
"""

from __future__ import annotations

from pydantic import BaseModel

from processors.adapters.fulfillment_simulators import Warehouse, items_from_text, items_of, items_text
from processors.routingslip.activity import CompensateContext, Completed, ExecuteContext, ExecutionResult


class PickLog(BaseModel):
    pick_id: str
    items: str


class Pick:
    name = "pick"

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        items = items_of(context.request)
        pick_id = self.warehouse.pick(context.idempotency_key, context.request.order_id, items)
        return Completed(log=PickLog(pick_id=pick_id, items=items_text(items)).model_dump())

    def compensate(self, context: CompensateContext) -> None:
        log = PickLog.model_validate(context.log)
        self.warehouse.return_to_shelf(context.idempotency_key, log.pick_id, items_from_text(log.items))
