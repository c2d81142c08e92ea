from __future__ import annotations

import uuid

from processors.routingslip import slip as slips
from schemas.models import RoutingSlip
from tests.factories import NOW


def a_slip() -> RoutingSlip:
    itinerary = [slips.step("pick", "oms.fulfillment.pick"), slips.step("pack", "oms.fulfillment.pack", kind="fragile")]
    return slips.build("o-1", itinerary, NOW, variables={"kind": "standard", "box_id": "b-1"})


def done(slip: RoutingSlip, log: dict[str, str], variables: dict[str, str] | None = None) -> RoutingSlip:
    step = slips.next_step(slip)
    assert step is not None
    return slips.completed(
        slip,
        execution=slips.execution_id(slip, step.name),
        host="h",
        started_at=NOW,
        duration_ms=1,
        compensate_address=f"{step.address}.compensate",
        log=log,
        variables=variables or {},
    )


def test_a_steps_own_arguments_win_over_the_slips_variables() -> None:
    slip = a_slip()

    assert slips.arguments_for(slip, slip.itinerary[1]) == {"kind": "fragile", "box_id": "b-1"}


def test_the_tracking_number_derives_from_the_order() -> None:
    assert a_slip().tracking_number == a_slip().tracking_number != slips.build("o-2", [], NOW).tracking_number


def test_completing_a_step_advances_logs_and_keeps_what_undoing_needs() -> None:
    slip = done(a_slip(), log={"pick_id": "p-1"}, variables={"picked": "yes"})

    assert [s.name for s in slip.itinerary] == ["pack"]
    assert [e.name for e in slip.activity_log] == ["pick"]
    assert [(e.name, e.address, e.data) for e in slip.compensation_log] == [
        ("pick", "oms.fulfillment.pick.compensate", {"pick_id": "p-1"})
    ]
    assert slip.variables["picked"] == "yes"


def test_a_step_with_nothing_to_undo_leaves_no_compensation_entry() -> None:
    assert done(a_slip(), log={}).compensation_log == []


def test_compensation_runs_last_in_first_out() -> None:
    slip = done(done(a_slip(), log={"pick_id": "p-1"}), log={"box_id": "b-9"})

    first = slips.to_compensate(slip)
    second = slips.to_compensate(slips.compensated(slip))

    assert first is not None and second is not None
    assert (first.name, second.name) == ("pack", "pick")
    assert slips.to_compensate(slips.compensated(slips.compensated(slip))) is None


def test_a_fault_stops_execution_and_says_why() -> None:
    slip = slips.faulted(a_slip(), execution=uuid.uuid4(), name="pick", at=NOW, reason="no stock on the shelf")

    assert slips.next_step(slip) is None
    assert slips.fault_reason(slip) == "no stock on the shelf"
