from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from processors.adapters.carriers import parcel_of
from processors.adapters.catalog import SPECIAL_SKUS, plentiful_skus, scarce_skus
from processors.adapters.fulfillment_simulators import FulfillmentSimulators
from processors.fulfillment.activities import activities
from processors.fulfillment.planner import plan
from processors.routingslip import slip as slips
from processors.routingslip.activity import (
    Activity,
    CompensateContext,
    CompensationFailed,
    Completed,
    ExecuteContext,
    ExecutionResult,
    Faulted,
    Revised,
)
from processors.runtime.records import derive_event_id
from processors.runtime.retries import RetryPolicy, TransientError, retrying
from schemas.models import AvroRecord, FulfillmentRequest, ItineraryStep, OrderDelivered, OrderShipped, RoutingSlip
from tests.factories import NOW, Order, fulfillment_request
from topology.topics import FULFILLMENT_ACTIVITIES, ORDERS_EVENTS, fulfillment_activity, fulfillment_compensation

KEY = "slip-1/execution-1"
COMPENSATION_KEY = "slip-1/execution-1/compensate"


@pytest.fixture
def simulators(tmp_path: Path) -> FulfillmentSimulators:
    return FulfillmentSimulators.open(tmp_path / "simulators" / "fulfillment.sqlite")


@pytest.fixture
def steps(simulators: FulfillmentSimulators) -> dict[str, Activity]:
    return activities(simulators)


def request_for(units: dict[str, int], **options: Any) -> FulfillmentRequest:
    return fulfillment_request(Order(units, **options))


def executing(
    request: FulfillmentRequest,
    arguments: dict[str, str] | None = None,
    *,
    key: str = KEY,
    remaining: tuple[ItineraryStep, ...] = (),
) -> ExecuteContext:
    return ExecuteContext(request=request, arguments=arguments or {}, idempotency_key=key, now=NOW, remaining=remaining)


def compensating(request: FulfillmentRequest, log: dict[str, str], key: str = COMPENSATION_KEY) -> CompensateContext:
    return CompensateContext(request=request, log=log, idempotency_key=key, now=NOW)


def completed(result: ExecutionResult) -> Completed:
    assert type(result) is Completed, result
    return result


TEE = {"SKU-TEE-01": 1}


def test_there_is_one_activity_per_fulfillment_step(steps: dict[str, Activity]) -> None:
    assert sorted(steps) == sorted(FULFILLMENT_ACTIVITIES)
    assert all(activity.name == name for name, activity in steps.items())


# --- each activity ------------------------------------------------------------------------------------


def test_pick_logs_the_items_it_took_and_compensation_returns_exactly_those(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for({"SKU-TEA-01": 1, "SKU-MUG-01": 2})

    result = completed(steps["pick"].execute(executing(request)))
    steps["pick"].compensate(compensating(request, result.log))

    assert result.log["items"] == "SKU-MUG-01:2,SKU-TEA-01:1"
    assert [effect.kind for effect in simulators.ledger.effects("o-1")] == ["pick", "return-to-shelf"]
    assert simulators.ledger.effects("o-1")[1].detail["items"] == "SKU-MUG-01:2,SKU-TEA-01:1"


def test_pack_uses_the_planned_kind_and_hands_its_box_on(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for({"SKU-MUG-01": 1})

    result = completed(steps["pack"].execute(executing(request, {"kind": "fragile"})))

    [packed] = simulators.ledger.effects("o-1")
    assert packed.detail == {"kind": "fragile", "items": "SKU-MUG-01:1"}
    assert result.log == {"box_id": packed.subject} == result.variables


def test_compensating_pack_unpacks_the_box(steps: dict[str, Activity], simulators: FulfillmentSimulators) -> None:
    request = request_for(TEE)
    result = completed(steps["pack"].execute(executing(request, {"kind": "standard"})))

    steps["pack"].compensate(compensating(request, result.log))

    assert simulators.ledger.count("unpack", "o-1") == 1
    assert simulators.ledger.outstanding("o-1") == []


def test_a_box_holding_the_sealed_crate_cannot_be_unpacked(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for({"SKU-CRATE-01": 1, "SKU-TEE-01": 1})
    result = completed(steps["pack"].execute(executing(request, {"kind": "standard"})))

    with pytest.raises(CompensationFailed, match="SKU-CRATE-01, which is sealed"):
        steps["pack"].compensate(compensating(request, result.log))

    assert [effect.kind for effect in simulators.ledger.outstanding("o-1")] == ["pack"]


def test_gift_wrap_wraps_the_packed_box_and_compensation_unwraps_it(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for(TEE, is_gift=True)
    box = completed(steps["pack"].execute(executing(request, {"kind": "standard"}, key="pack-1")))

    wrapped = completed(steps["gift-wrap"].execute(executing(request, box.variables, key="wrap-1")))
    steps["gift-wrap"].compensate(compensating(request, wrapped.log, key="unwrap-1"))

    assert set(wrapped.log) == {"wrap_id"}
    assert [effect.kind for effect in simulators.ledger.effects("o-1")] == ["pack", "wrap", "unwrap"]


def test_customs_declares_the_order_value_and_compensation_cancels_it(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for({"SKU-HOOD-01": 2}, country="US")

    result = completed(steps["customs"].execute(executing(request, {"origin": "DE"})))
    steps["customs"].compensate(compensating(request, result.log))

    declared, cancelled = simulators.ledger.effects("o-1")
    assert declared.detail == {"origin": "DE", "destination": "US", "value_minor": "9980", "currency": "EUR"}
    assert result.log == {"declaration_id": declared.subject}
    assert (cancelled.kind, cancelled.subject) == ("cancel-declaration", declared.subject)


def test_customs_for_switzerland_is_unavailable_once_per_key_then_declares(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for(TEE, country="CH")

    with pytest.raises(TransientError):
        steps["customs"].execute(executing(request, {"origin": "DE"}))
    result = completed(steps["customs"].execute(executing(request, {"origin": "DE"})))

    assert simulators.ledger.attempts(KEY) == 2
    assert simulators.ledger.count("declare", "o-1") == 1
    assert "declaration_id" in result.log


def test_ship_books_the_planned_carrier_and_announces_the_shipment(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for(TEE)

    result = completed(steps["ship"].execute(executing(request, {"carrier": "parcelpost", "alternates": "swiftair"})))

    [label] = simulators.ledger.effects("o-1")
    assert label.kind == "label"
    assert result.log == result.variables == {"carrier": "parcelpost", "label_id": label.subject}
    [emit] = result.emits
    assert (emit.topic, emit.key) == (ORDERS_EVENTS, "o-1")
    assert emit.record == OrderShipped(
        event_id=derive_event_id(KEY, "shipped"),
        order_id="o-1",
        occurred_at=NOW,
        carrier="parcelpost",
        label_id=label.subject,
    )


def test_ship_moves_on_to_the_next_carrier_when_one_refuses_the_packed_parcel(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for({"SKU-SKI-01": 1})
    confirm = slips.step("confirm-delivery", fulfillment_activity("confirm-delivery").name, signature="none")
    context = executing(
        request, {"carrier": "parcelpost", "alternates": "swiftair,freightco,aircargo"}, remaining=(confirm,)
    )

    result = steps["ship"].execute(context)

    assert isinstance(result, Revised)
    assert result.itinerary == (
        slips.step("ship", fulfillment_activity("ship").name, carrier="swiftair", alternates="freightco,aircargo"),
        confirm,
    )
    assert result.reason.startswith("parcelpost refused 3,250 g, 123 x 17 x 13 cm to DE: the longest side, 123 cm")
    assert (result.log, result.variables, result.emits) == ({}, {}, ())
    assert simulators.ledger.effects() == []


def test_ship_faults_when_the_last_carrier_refuses(steps: dict[str, Activity]) -> None:
    request = request_for({"SKU-SKI-01": 1})

    result = steps["ship"].execute(executing(request, {"carrier": "parcelpost", "alternates": ""}))

    assert isinstance(result, Faulted)
    assert result.reason.startswith("no carrier accepts the parcel: parcelpost refused")


def test_ship_faults_when_no_carrier_was_planned(steps: dict[str, Activity], simulators: FulfillmentSimulators) -> None:
    request = request_for({"SKU-ANVIL-01": 1})

    result = steps["ship"].execute(executing(request, {"carrier": "", "alternates": ""}))

    assert result == Faulted("no carrier accepts the parcel: none takes 1,320,500 g, 115 x 85 x 50 cm to DE")
    assert simulators.ledger.effects() == []


def test_compensating_ship_voids_the_label(steps: dict[str, Activity], simulators: FulfillmentSimulators) -> None:
    request = request_for(TEE)
    result = completed(steps["ship"].execute(executing(request, {"carrier": "parcelpost"})))

    steps["ship"].compensate(compensating(request, result.log))

    assert simulators.ledger.count("void-label", "o-1") == 1
    assert simulators.ledger.outstanding("o-1") == []


@pytest.mark.parametrize(("signature", "signed_by"), [("required", "Ada"), ("none", None)])
def test_delivery_is_signed_for_only_when_required(
    steps: dict[str, Activity], simulators: FulfillmentSimulators, signature: str, signed_by: str | None
) -> None:
    request = request_for(TEE)
    label_id = simulators.carriers.create_label("label-1", "swiftair", parcel_of(request), "DE", order_id="o-1")

    result = completed(
        steps["confirm-delivery"].execute(
            executing(request, {"signature": signature, "carrier": "swiftair", "label_id": label_id})
        )
    )

    assert result.log == {}, "a delivery cannot be undone, so there is nothing to compensate"
    [emit] = result.emits
    assert emit.record == OrderDelivered(
        event_id=derive_event_id(KEY, "delivered"),
        order_id="o-1",
        occurred_at=NOW,
        carrier="swiftair",
        signed_by=signed_by,
    )
    assert simulators.ledger.count("confirm-delivery", "o-1") == 1


def test_a_step_run_again_under_its_key_has_no_second_effect(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for(TEE, country="US")
    arguments = {"pick": {}, "pack": {"kind": "standard"}, "customs": {"origin": "DE"}, "ship": {"carrier": "swiftair"}}

    for name, step_arguments in arguments.items():
        first = steps[name].execute(executing(request, step_arguments, key=f"do-{name}"))
        again = steps[name].execute(executing(request, step_arguments, key=f"do-{name}"))
        assert first == again, name
        log = completed(first).log
        steps[name].compensate(compensating(request, log, key=f"undo-{name}"))
        steps[name].compensate(compensating(request, log, key=f"undo-{name}"))

    kinds = [effect.kind for effect in simulators.ledger.effects("o-1")]
    assert kinds == [
        "pick",
        "return-to-shelf",
        "pack",
        "unpack",
        "declare",
        "cancel-declaration",
        "label",
        "void-label",
    ]


# --- whole slips, run the way the host runs them ------------------------------------------------------


@dataclass(frozen=True)
class SlipRun:
    slip: RoutingSlip
    emitted: list[AvroRecord]
    revisions: list[str]
    compensation_failure: str | None = None


def run_slip(request: FulfillmentRequest, steps: dict[str, Activity]) -> SlipRun:
    """Execute the planned slip step by step (retrying transient failures), then, if it faulted, compensate
    last-in-first-out: the routing-slip host's semantics, without Kafka."""
    slip = slips.build(request.order_id, plan(request), NOW)
    emitted: list[AvroRecord] = []
    revisions: list[str] = []
    no_wait = RetryPolicy(first_delay_s=0.0, max_delay_s=0.0)
    while (current := slips.next_step(slip)) is not None:
        execution = slips.execution_id(slip, current.name)
        context = ExecuteContext(
            request=request,
            arguments=slips.arguments_for(slip, current),
            idempotency_key=f"{slip.tracking_number}/{execution}",
            now=NOW,
            remaining=tuple(slip.itinerary[1:]),
        )
        result = retrying(functools.partial(steps[current.name].execute, context), no_wait)
        if isinstance(result, Faulted):
            slip = slips.faulted(slip, execution=execution, name=current.name, at=NOW, reason=result.reason)
            break
        emitted += [emit.record for emit in result.emits]
        if isinstance(result, Revised):
            revisions.append(result.reason)
        slip = slips.completed(
            slip,
            execution=execution,
            host="test",
            started_at=NOW,
            duration_ms=0,
            compensate_address=fulfillment_compensation(current.name).name,
            log=result.log,
            variables=result.variables,
            itinerary=result.itinerary if isinstance(result, Revised) else None,
        )
    while slip.faults and (entry := slips.to_compensate(slip)) is not None:
        key = f"{slip.tracking_number}/{entry.execution_id}/compensate"
        try:
            steps[entry.name].compensate(compensating(request, dict(entry.data), key=key))
        except CompensationFailed as error:
            return SlipRun(slip, emitted, revisions, compensation_failure=str(error))
        slip = slips.compensated(slip)
    return SlipRun(slip, emitted, revisions)


def test_an_order_runs_its_whole_slip_and_is_shipped_and_delivered(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    run = run_slip(request_for({"SKU-CHEESE-01": 1, "SKU-WATCH-01": 1}, is_gift=True, country="US"), steps)

    assert run.slip.faults == [] and run.slip.itinerary == []
    assert [entry.name for entry in run.slip.compensation_log] == ["pick", "pack", "gift-wrap", "customs", "ship"]
    shipped, delivered = run.emitted
    assert isinstance(shipped, OrderShipped) and shipped.carrier == "swiftair"
    assert isinstance(delivered, OrderDelivered) and delivered.signed_by == "Ada"
    assert [effect.kind for effect in simulators.ledger.effects("o-1")] == [
        "pick",
        "pack",
        "wrap",
        "declare",
        "label",
        "confirm-delivery",
    ]


def test_a_slip_run_again_after_a_crash_has_no_second_effect(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    request = request_for(TEE, is_gift=True, country="CH")

    first, again = run_slip(request, steps), run_slip(request, steps)

    assert first == again
    assert len(simulators.ledger.effects("o-1")) == 6


def test_skis_refused_by_parcelpost_once_packed_go_with_the_next_carrier(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    run = run_slip(request_for({"SKU-SKI-01": 1}), steps)

    [revision] = run.revisions
    assert revision.startswith("parcelpost refused")
    assert [entry.name for entry in run.slip.activity_log] == ["pick", "pack", "ship", "ship", "confirm-delivery"]
    assert run.slip.variables["carrier"] == "swiftair"
    assert simulators.ledger.count("label", "o-1") == 1


def test_an_anvil_no_carrier_takes_faults_at_ship_and_everything_before_is_undone(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    run = run_slip(request_for({"SKU-ANVIL-01": 1}, is_gift=True, country="CH"), steps)

    [fault] = run.slip.faults
    assert (fault.name, fault.reason.startswith("no carrier accepts the parcel")) == ("ship", True)
    assert run.slip.compensation_log == [] and run.emitted == []
    assert [effect.kind for effect in simulators.ledger.effects("o-1")] == [
        "pick",
        "pack",
        "wrap",
        "declare",
        "cancel-declaration",
        "unwrap",
        "unpack",
        "return-to-shelf",
    ]


def test_a_sealed_crate_stops_compensation_at_pack_and_leaves_the_slip_for_an_operator(
    steps: dict[str, Activity], simulators: FulfillmentSimulators
) -> None:
    run = run_slip(request_for({"SKU-CRATE-01": 1, "SKU-ANVIL-01": 1}), steps)

    assert run.compensation_failure is not None and "SKU-CRATE-01" in run.compensation_failure
    assert [entry.name for entry in run.slip.compensation_log] == ["pick", "pack"]
    assert [effect.kind for effect in simulators.ledger.outstanding("o-1")] == ["pick", "pack"]


def test_the_failure_skus_never_appear_in_generated_demo_orders() -> None:
    assert {"SKU-SKI-01", "SKU-ANVIL-01", "SKU-CRATE-01"} == SPECIAL_SKUS
    assert not SPECIAL_SKUS & {*plentiful_skus(), *scarce_skus()}
