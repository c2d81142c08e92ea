"""The fulfillment activities, one module per routing-slip step, each a triad: arguments in, a log out,
and a compensation that needs only the log.

Arguments are what the planner or an earlier step (through the slip's variables) decided; the order's
own facts come from `context.request`. Side effects go through the adapters, under
`context.idempotency_key`, so a re-run has none twice. `pack` is the fullest example to copy.
"""

from __future__ import annotations

from typing import Protocol

from processors.adapters.carriers import Carriers
from processors.adapters.fulfillment_simulators import Customs, Warehouse
from processors.fulfillment.activities.confirm_delivery import ConfirmDelivery
from processors.fulfillment.activities.customs import DeclareCustoms
from processors.fulfillment.activities.gift_wrap import GiftWrap
from processors.fulfillment.activities.pack import Pack
from processors.fulfillment.activities.pick import Pick
from processors.fulfillment.activities.ship import Ship
from processors.routingslip.activity import Activity


class Adapters(Protocol):
    """What the activities act through: `FulfillmentSimulators` here, real systems some day."""

    @property
    def warehouse(self) -> Warehouse: ...
    @property
    def customs(self) -> Customs: ...
    @property
    def carriers(self) -> Carriers: ...


def activities(adapters: Adapters) -> dict[str, Activity]:
    """Every fulfillment activity by its step name (`topology.topics.FULFILLMENT_ACTIVITIES`)."""
    all_activities: tuple[Activity, ...] = (
        Pick(adapters.warehouse),
        Pack(adapters.warehouse),
        GiftWrap(adapters.warehouse),
        DeclareCustoms(adapters.customs),
        Ship(adapters.carriers),
        ConfirmDelivery(adapters.carriers),
    )
    return {activity.name: activity for activity in all_activities}
