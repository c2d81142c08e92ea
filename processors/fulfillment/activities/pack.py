"""Pack: put the order's items in a box of the kind they need; compensation takes the box apart again.

- Arguments: `kind` (standard, fragile or cold-chain), decided by the planner.
- Log: `box_id`, all that unpacking needs.
- Variables: `box_id`, for gift-wrap.

A sealed item cannot be unpacked: compensation then fails, and the slip is parked for an operator.
"""

from __future__ import annotations

from pydantic import BaseModel

from processors.adapters.carriers import PackingKind
from processors.adapters.fulfillment_simulators import CannotUndo, Warehouse, items_of
from processors.routingslip.activity import (
    CompensateContext,
    CompensationFailed,
    Completed,
    ExecuteContext,
    ExecutionResult,
)


class PackArguments(BaseModel):
    kind: PackingKind


class PackLog(BaseModel):
    box_id: str


class Pack:
    name = "pack"

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        arguments = PackArguments.model_validate(context.arguments)
        order_id, items = context.request.order_id, items_of(context.request)
        box_id = self.warehouse.pack(context.idempotency_key, order_id, arguments.kind, items)
        return Completed(log=PackLog(box_id=box_id).model_dump(), variables={"box_id": box_id})

    def compensate(self, context: CompensateContext) -> None:
        log = PackLog.model_validate(context.log)
        try:
            self.warehouse.unpack(context.idempotency_key, log.box_id)
        except CannotUndo as error:
            raise CompensationFailed(str(error)) from error
