"""The activity host's handling of stops, on one order's state (no broker): before the point of no return a
stop undoes the slip; after it, and after the slip ended, a stop changes nothing and publishes nothing."""

from __future__ import annotations

import uuid

import pytest

from processors.routingslip import slip as slips
from processors.routingslip.activity import CompensateContext, Completed, ExecuteContext, ExecutionResult
from processors.routingslip.host import ActivityHost, SlipCodec, compensate_address
from processors.runtime.deadletters import Received
from processors.runtime.inprocess import memory_registry
from processors.runtime.records import Emit
from processors.runtime.retries import RetryPolicy
from schemas.models import RoutingSlip, RoutingSlipCompleted, RoutingSlipFaulted, StopFulfillment
from schemas.serde import HeaderCodec
from tests.factories import NOW, DictState, Order, fulfillment_request
from topology.topics import ROUTING_SLIP_HEADER, fulfillment_activity

SHIP, DELIVER = fulfillment_activity("ship").name, fulfillment_activity("confirm-delivery").name


class Step:
    def __init__(self, name: str) -> None:
        self.name = name
        self.executed = 0

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        self.executed += 1
        return Completed(log={"label": "l-1"} if self.name == "ship" else {})

    def compensate(self, context: CompensateContext) -> None:
        raise AssertionError("nothing here is undone by a stop")


@pytest.fixture
def codec() -> SlipCodec:
    return SlipCodec(HeaderCodec(memory_registry(), ROUTING_SLIP_HEADER))


def host(codec: SlipCodec, steps: dict[str, Step]) -> ActivityHost:
    return ActivityHost(
        steps,
        codec,
        host="h-0",
        retry=RetryPolicy(attempts=1, first_delay_s=0, max_delay_s=0),
        points_of_no_return=frozenset({"ship"}),
    )


def a_slip() -> RoutingSlip:
    return slips.build("o-1", [slips.step("ship", SHIP), slips.step("confirm-delivery", DELIVER)], NOW)


def shipped(slip: RoutingSlip) -> RoutingSlip:
    return slips.completed(
        slip,
        execution=uuid.uuid4(),
        host="h-0",
        started_at=NOW,
        duration_ms=1,
        compensate_address=compensate_address(SHIP),
        log={"label": "l-1"},
        variables={},
    )


def deliver(steps: ActivityHost, codec: SlipCodec, slip: RoutingSlip, topic: str, state: DictState) -> list[Emit]:
    request = fulfillment_request(Order({"SKU-MUG-01": 1}))
    received = Received(topic, 0, 0, 0, b"o-1", None, codec.header(slip))
    return steps.handle(request, state, received)


def stop(steps: ActivityHost, state: DictState) -> list[Emit]:
    command = StopFulfillment(event_id=uuid.uuid4(), order_id="o-1", occurred_at=NOW, reason="changed my mind")
    return steps.handle(command, state, Received("oms.fulfillment.control", 0, 0, 0, b"o-1", None, ()))


def test_a_stop_before_the_point_of_no_return_ends_the_slip_without_running_the_step(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship"), "confirm-delivery": Step("confirm-delivery")}
    state = DictState()
    stop(host(codec, steps), state)

    emits = deliver(host(codec, steps), codec, a_slip(), SHIP, state)

    assert steps["ship"].executed == 0
    assert [type(emit.record) for emit in emits] == [RoutingSlipFaulted]


def test_a_stop_after_the_point_of_no_return_changes_nothing(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship"), "confirm-delivery": Step("confirm-delivery")}
    state = DictState()
    stop(host(codec, steps), state)

    emits = deliver(host(codec, steps), codec, shipped(a_slip()), DELIVER, state)

    assert steps["confirm-delivery"].executed == 1
    assert [type(emit.record) for emit in emits][-1] is RoutingSlipCompleted
    assert not [emit for emit in emits if emit.topic.name.endswith(".compensate")]


def test_a_stop_after_the_slip_completed_publishes_nothing(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship"), "confirm-delivery": Step("confirm-delivery")}
    state = DictState()
    deliver(host(codec, steps), codec, shipped(a_slip()), DELIVER, state)

    assert stop(host(codec, steps), state) == []
