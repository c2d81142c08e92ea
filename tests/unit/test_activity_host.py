"""The activity host on one order's state (no broker): before the point of no return a stop undoes the slip;
after it, and after the slip ended, a stop changes nothing and publishes nothing. Only a business failure the
activity reports faults a slip: an outage is raised for the record to be retried, anything else for it to be
dead-lettered, and a slip that routes anywhere but to the activities' own topics is refused before a step runs."""

from __future__ import annotations

import datetime
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping

import pytest

from processors.routingslip import slip as slips
from processors.routingslip.activity import (
    CompensateContext,
    CompensationFailed,
    Completed,
    ExecuteContext,
    ExecutionResult,
    Faulted,
)
from processors.routingslip.host import ActivityError, ActivityHost, MisroutedSlip, SlipCodec, compensate_address
from processors.runtime.deadletters import Received
from processors.runtime.errors import Outage, is_outage
from processors.runtime.inprocess import memory_registry
from processors.runtime.records import Emit
from processors.runtime.retries import RetryPolicy, TransientError
from schemas.models import (
    RoutingSlip,
    RoutingSlipActivityCompensated,
    RoutingSlipActivityCompensationFailed,
    RoutingSlipActivityCompleted,
    RoutingSlipActivityFaulted,
    RoutingSlipCompensationFailed,
    RoutingSlipCompleted,
    RoutingSlipFaulted,
    StopFulfillment,
)
from schemas.serde import HeaderCodec
from tests.factories import NOW, DictState, Order, fulfillment_request, record_of
from topology.topics import (
    FULFILLMENT_ACTIVITIES,
    ORDERS_EVENTS,
    ROUTING_SLIP_HEADER,
    ROUTING_SLIPS_PARKED,
    fulfillment_activity,
    fulfillment_compensation,
)

SHIP, DELIVER = fulfillment_activity("ship").name, fulfillment_activity("confirm-delivery").name
ADDRESSES = {name: fulfillment_activity(name).name for name in FULFILLMENT_ACTIVITIES}


def never_undone(context: CompensateContext) -> None:
    raise AssertionError("nothing here is undone by a stop")


class Step:
    def __init__(
        self,
        name: str,
        outcome: Callable[[], ExecutionResult] | None = None,
        undo: Callable[[CompensateContext], None] = never_undone,
    ) -> None:
        self.name = name
        self.executed = 0
        self.undone = 0
        self._outcome = outcome
        self._undo = undo

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        self.executed += 1
        if self._outcome is not None:
            return self._outcome()
        return Completed(log={"label": "l-1"} if self.name == "ship" else {})

    def compensate(self, context: CompensateContext) -> None:
        self.undone += 1
        self._undo(context)


@pytest.fixture
def codec() -> SlipCodec:
    return SlipCodec(HeaderCodec(memory_registry(), ROUTING_SLIP_HEADER))


def host(codec: SlipCodec, steps: Mapping[str, Step], inline: frozenset[str] = frozenset()) -> ActivityHost:
    return ActivityHost(
        steps,
        ADDRESSES,
        codec,
        host="h-0",
        retry=RetryPolicy(attempts=1, first_delay_s=0, max_delay_s=0),
        points_of_no_return=frozenset({"ship"}),
        inline=inline,
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


# --- what faults a slip, and what does not ------------------------------------------------------------


def raising(error: Exception) -> Callable[[], ExecutionResult]:
    def outcome() -> ExecutionResult:
        raise error

    return outcome


def test_a_business_failure_the_activity_reports_faults_the_slip_and_compensates(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship", lambda: Faulted("no carrier takes it")), "confirm-delivery": Step("confirm-delivery")}

    emits = deliver(host(codec, steps), codec, a_slip(), SHIP, DictState())

    assert [type(emit.record) for emit in emits] == [RoutingSlipActivityFaulted, RoutingSlipFaulted]
    assert record_of(emits[0]).model_dump()["reason"] == "no carrier takes it"


@pytest.mark.parametrize(
    "error",
    [sqlite3.OperationalError("database is locked"), OSError("disk full"), Outage("registry unreachable")],
    ids=["sqlite-locked", "os-error", "outage"],
)
def test_an_outage_in_a_step_is_raised_for_the_record_to_be_retried_not_faulted(
    codec: SlipCodec, error: Exception
) -> None:
    steps = {"ship": Step("ship", raising(error)), "confirm-delivery": Step("confirm-delivery")}

    with pytest.raises(Exception) as raised:
        deliver(host(codec, steps), codec, a_slip(), SHIP, DictState())

    assert is_outage(raised.value)


def test_a_transient_failure_that_outlasts_its_retries_pauses_the_slip_as_an_outage(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship", raising(TransientError("carrier timed out"))), "confirm-delivery": Step("x")}

    with pytest.raises(Outage, match="carrier timed out"):
        deliver(host(codec, steps), codec, a_slip(), SHIP, DictState())


def test_a_bug_in_a_step_is_raised_for_the_record_to_be_dead_lettered_not_compensated(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship", raising(KeyError("label"))), "confirm-delivery": Step("confirm-delivery")}

    with pytest.raises(ActivityError, match="ship raised KeyError") as raised:
        deliver(host(codec, steps), codec, a_slip(), SHIP, DictState())

    assert not is_outage(raised.value)


def test_an_outage_while_undoing_a_step_is_raised_and_does_not_park_the_slip(codec: SlipCodec) -> None:
    def locked(context: CompensateContext) -> None:
        raise sqlite3.OperationalError("database is locked")

    steps = {"ship": Step("ship", undo=locked), "confirm-delivery": Step("confirm-delivery")}
    slip = faulted_after_shipping()

    with pytest.raises(sqlite3.OperationalError):
        deliver(host(codec, steps), codec, slip, compensate_address(SHIP), DictState())


def test_a_step_that_cannot_be_undone_parks_the_slip(codec: SlipCodec) -> None:
    def sealed(context: CompensateContext) -> None:
        raise CompensationFailed("sealed")

    steps = {"ship": Step("ship", undo=sealed), "confirm-delivery": Step("confirm-delivery")}

    emits = deliver(host(codec, steps), codec, faulted_after_shipping(), compensate_address(SHIP), DictState())

    assert [type(emit.record) for emit in emits[:2]] == [
        RoutingSlipActivityCompensationFailed,
        RoutingSlipCompensationFailed,
    ]
    assert record_of(emits[0]).model_dump()["reason"] == "CompensationFailed: sealed"
    assert emits[-1].topic == ROUTING_SLIPS_PARKED


def faulted_after_shipping() -> RoutingSlip:
    return slips.faulted(shipped(a_slip()), execution=uuid.uuid4(), name="confirm-delivery", at=NOW, reason="lost")


# --- slips that route elsewhere than the activities' topics -------------------------------------------


def test_a_slip_whose_next_step_is_another_topic_is_refused_before_the_step_runs(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship"), "confirm-delivery": Step("confirm-delivery")}
    slip = slips.build("o-1", [slips.step("ship", SHIP), slips.step("confirm-delivery", ORDERS_EVENTS.name)], NOW)

    with pytest.raises(MisroutedSlip, match=re.escape("'oms.orders.events', not oms.fulfillment.confirm-delivery")):
        deliver(host(codec, steps), codec, slip, SHIP, DictState())

    assert steps["ship"].executed == 0


def test_a_slip_of_another_order_than_its_requests_is_refused_before_any_step_runs(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship"), "confirm-delivery": Step("confirm-delivery")}
    slip = a_slip().model_copy(update={"order_id": "o-2"})

    with pytest.raises(MisroutedSlip, match="belongs to order 'o-2', not to order 'o-1' whose request"):
        deliver(host(codec, steps), codec, slip, SHIP, DictState())

    assert steps["ship"].executed == 0


def test_a_slip_with_a_step_no_activity_hosts_is_refused_before_any_step_runs(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship"), "confirm-delivery": Step("confirm-delivery")}
    slip = slips.build("o-1", [slips.step("ship", SHIP), slips.step("teleport", "oms.fulfillment.teleport")], NOW)

    with pytest.raises(MisroutedSlip, match="names 'teleport', which is no activity"):
        deliver(host(codec, steps), codec, slip, SHIP, DictState())

    assert steps["ship"].executed == 0


def test_an_unknown_compensation_name_is_refused_and_never_published_as_a_step(codec: SlipCodec) -> None:
    name = '"><img src=x onerror=alert(1)>'
    steps = {"ship": Step("ship"), "confirm-delivery": Step("confirm-delivery")}
    slip = slips.completed(
        a_slip(),
        execution=uuid.uuid4(),
        host="h-0",
        started_at=NOW,
        duration_ms=1,
        compensate_address=fulfillment_compensation("ship").name,
        log={"label": "l-1"},
        variables={},
    )
    forged = slip.model_copy(
        update={"compensation_log": [slip.compensation_log[0].model_copy(update={"name": name})], "itinerary": []}
    )

    with pytest.raises(MisroutedSlip, match="the compensation log names"):
        deliver(host(codec, steps), codec, forged, compensate_address(SHIP), DictState())

    assert steps["ship"].undone == 0


def test_a_compensation_addressed_to_another_topic_is_refused(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship"), "confirm-delivery": Step("confirm-delivery")}
    slip = shipped(a_slip())
    forged = slip.model_copy(
        update={"compensation_log": [slip.compensation_log[0].model_copy(update={"address": ORDERS_EVENTS.name})]}
    )

    with pytest.raises(MisroutedSlip, match=re.escape("compensation of ship is addressed to 'oms.orders.events'")):
        deliver(host(codec, steps), codec, forged, DELIVER, DictState())

    assert steps["confirm-delivery"].executed == 0


def test_a_well_routed_slip_runs_and_its_compensation_is_published_with_its_known_name(codec: SlipCodec) -> None:
    steps = {"ship": Step("ship", undo=lambda context: None), "confirm-delivery": Step("confirm-delivery")}

    emits = deliver(host(codec, steps), codec, faulted_after_shipping(), compensate_address(SHIP), DictState())

    compensated, faulted = (emit.record for emit in emits)
    assert isinstance(compensated, RoutingSlipActivityCompensated) and compensated.activity == "ship"
    assert isinstance(faulted, RoutingSlipFaulted)


# --- inline steps: run in the record of the step before ------------------------------------------------

PICK, PACK = fulfillment_activity("pick").name, fulfillment_activity("pack").name


class Keyed(Step):
    """A step that remembers the idempotency key of every execution, and has something to undo."""

    def __init__(self, name: str, outcome: Callable[[], ExecutionResult] | None = None) -> None:
        super().__init__(name, outcome, undo=lambda context: None)
        self.keys: list[str] = []

    def execute(self, context: ExecuteContext) -> ExecutionResult:
        self.keys.append(context.idempotency_key)
        result = super().execute(context)
        return Completed(log={"done": self.name}) if self._outcome is None else result


def warehouse_host(codec: SlipCodec, steps: Mapping[str, Step]) -> ActivityHost:
    return host(codec, steps, inline=frozenset({"pick", "pack"}))


def warehouse_slip() -> RoutingSlip:
    return slips.build("o-1", [slips.step("pick", PICK), slips.step("pack", PACK), slips.step("ship", SHIP)], NOW)


def warehouse_steps(**outcomes: Callable[[], ExecutionResult]) -> dict[str, Keyed]:
    return {name: Keyed(name, outcomes.get(name)) for name in ("pick", "pack", "ship")}


def test_inline_steps_run_in_one_record_and_the_slip_crosses_a_topic_only_to_the_next_step(codec: SlipCodec) -> None:
    steps = warehouse_steps()

    emits = deliver(warehouse_host(codec, steps), codec, warehouse_slip(), PICK, DictState())

    assert [(steps[name].executed) for name in ("pick", "pack", "ship")] == [1, 1, 0]
    completions = [emit.record.activity for emit in emits if isinstance(emit.record, RoutingSlipActivityCompleted)]
    assert completions == ["pick", "pack"]
    [forwarded] = [emit for emit in emits if emit.headers]
    assert forwarded is emits[-1] and forwarded.topic.name == SHIP
    slip = codec.read(forwarded.headers)
    assert [entry.name for entry in slip.activity_log] == ["pick", "pack"]
    assert [planned.name for planned in slip.itinerary] == ["ship"]


def test_a_fault_in_an_inline_step_compensates_the_steps_before_it_in_the_same_record(
    codec: SlipCodec,
) -> None:
    steps = warehouse_steps(pack=lambda: Faulted("the box is too small"))

    emits = deliver(warehouse_host(codec, steps), codec, warehouse_slip(), PICK, DictState())

    assert [type(emit.record) for emit in emits] == [
        RoutingSlipActivityCompleted,
        RoutingSlipActivityFaulted,
        RoutingSlipActivityCompensated,
        RoutingSlipFaulted,
    ]
    assert steps["pick"].undone == 1 and steps["ship"].executed == 0
    assert not [emit for emit in emits if emit.headers], "nothing crossed a topic"


def test_an_outage_in_an_inline_step_repeats_the_record_and_the_steps_before_it_under_the_same_keys(
    codec: SlipCodec,
) -> None:
    down = [True]

    def pack() -> ExecutionResult:
        if down[0]:
            raise sqlite3.OperationalError("database is locked")
        return Completed()

    steps = warehouse_steps(pack=pack)
    with pytest.raises(sqlite3.OperationalError):
        deliver(warehouse_host(codec, steps), codec, warehouse_slip(), PICK, DictState())
    down[0] = False

    emits = deliver(warehouse_host(codec, steps), codec, warehouse_slip(), PICK, DictState())

    first, again = steps["pick"].keys
    assert first == again, "the repeated pick carries the same idempotency key"
    assert emits[-1].topic.name == SHIP


def test_a_completion_is_dated_when_its_step_ended_so_inline_steps_read_in_order(codec: SlipCodec) -> None:
    def slow_pack() -> ExecutionResult:
        time.sleep(0.03)
        return Completed()

    steps = warehouse_steps(pack=slow_pack)

    emits = deliver(warehouse_host(codec, steps), codec, warehouse_slip(), PICK, DictState())

    picked, packed = (emit.record for emit in emits if isinstance(emit.record, RoutingSlipActivityCompleted))
    assert packed.occurred_at - picked.occurred_at >= datetime.timedelta(milliseconds=25)
    pack_started = packed.occurred_at - datetime.timedelta(milliseconds=packed.duration_ms)
    assert pack_started >= picked.occurred_at - datetime.timedelta(milliseconds=1), "pack started after pick ended"
