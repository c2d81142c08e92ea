"""Ship: book the packed parcel with a carrier and hand it over; compensation voids the label.

- Arguments: `carrier`, and `alternates` (comma-separated, in order of preference), decided by the planner.
- Log: `carrier` and `label_id`.
- Variables: `carrier` and `label_id`, for confirm-delivery.
- Emits `OrderShipped`.

The planner chooses carriers by the unpacked items; the carrier judges the packed parcel, and may refuse
it. Then the step revises the itinerary: it runs again with the first alternate, and the rest as its
alternates. With no alternate left, or no carrier planned at all, the step faults.
"""

from __future__ import annotations

from pydantic import BaseModel

from processors.adapters.carriers import CarrierRefused, Carriers, parcel_of
from processors.routingslip.activity import (
    CompensateContext,
    Completed,
    ExecuteContext,
    ExecutionResult,
    Faulted,
    Revised,
)
from processors.routingslip.slip import step
from processors.runtime.records import Emit, derive_event_id
from schemas.models import OrderShipped
from topology.topics import ORDERS_EVENTS, fulfillment_activity


class ShipArguments(BaseModel):
    carrier: str
    alternates: str = ""


class ShipLog(BaseModel):
    carrier: str
    label_id: str


class Ship:
    name = "ship"

    def __init__(self, carriers: Carriers) -> None:
        self.carriers = carriers

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        arguments = ShipArguments.model_validate(context.arguments)
        request = context.request
        country = request.shipping_address.country
        parcel = parcel_of(request)
        if not arguments.carrier:
            return Faulted(f"no carrier accepts the parcel: none takes {parcel} to {country}")
        try:
            label_id = self.carriers.create_label(
                context.idempotency_key, arguments.carrier, parcel, country, order_id=request.order_id
            )
        except CarrierRefused as refused:
            refusal = f"{arguments.carrier} refused {parcel} to {country}: {refused.reason}"
            alternates = [name for name in arguments.alternates.split(",") if name]
            if not alternates:
                return Faulted(f"no carrier accepts the parcel: {refusal}")
            next_carrier, *others = alternates
            retry = step(
                self.name, fulfillment_activity(self.name).name, carrier=next_carrier, alternates=",".join(others)
            )
            return Revised(itinerary=(retry, *context.remaining), reason=refusal)
        shipped = OrderShipped(
            event_id=derive_event_id(context.idempotency_key, "shipped"),
            order_id=request.order_id,
            occurred_at=context.now,
            carrier=arguments.carrier,
            label_id=label_id,
        )
        return Completed(
            log=ShipLog(carrier=arguments.carrier, label_id=label_id).model_dump(),
            variables={"carrier": arguments.carrier, "label_id": label_id},
            emits=(Emit(ORDERS_EVENTS, request.order_id, shipped),),
        )

    def compensate(self, context: CompensateContext) -> None:
        log = ShipLog.model_validate(context.log)
        self.carriers.void_label(context.idempotency_key, log.carrier, log.label_id)
