"""Fulfillment routing slips end to end on the real broker and registry, from PlaceOrder to the slip's end."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.produce import produce_orders, produce_records
from ops.slips import parked as parked_slips
from ops.slips import resume
from processors.adapters.fulfillment_simulators import FulfillmentLedger, default_fulfillment_ledger
from processors.fulfillment.host import PROCESSOR as ACTIVITIES
from processors.routingslip import slip as slips
from processors.routingslip.host import SlipCodec
from processors.runtime.records import utc_now
from schemas.models import (
    FulfillmentRequest,
    Money,
    NotificationKind,
    NotificationSent,
    OrderDelivered,
    OrderShipped,
    PlaceOrder,
    RoutingSlip,
    RoutingSlipActivityCompensated,
    RoutingSlipCompleted,
    RoutingSlipCreated,
    RoutingSlipRevised,
    StopFulfillment,
)
from schemas.serde import HeaderCodec, RecordCodec
from tests.factories import order_of as order
from tests.integration.harness import Processes, Seen, Watcher, wait_until_handled
from tests.integration.test_choreography import set_stock_and_wait
from topology.admin import wait_for_group
from topology.settings import Settings
from topology.topics import (
    FULFILLMENT_CONTROL,
    INVENTORY_STOCK,
    NOTIFICATIONS_EVENTS,
    ORDERS_EVENTS,
    ROUTING_SLIP_HEADER,
    ROUTING_SLIPS_EVENTS,
    ROUTING_SLIPS_PARKED,
    fulfillment_activity,
    fulfillment_compensation,
)

ENDS = {"RoutingSlipCompleted", "RoutingSlipFaulted", "RoutingSlipCompensationFailed"}
PICK = fulfillment_activity("pick")
PICK_UNDO = fulfillment_compensation("pick")


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(
        settings,
        registry,
        [ROUTING_SLIPS_EVENTS.name, ORDERS_EVENTS.name, NOTIFICATIONS_EVENTS.name, INVENTORY_STOCK.name],
        raw=[ROUTING_SLIPS_PARKED.name, PICK.dead_letter_topic.name, PICK_UNDO.dead_letter_topic.name],
    )
    yield watching
    watching.close()


def run_to_the_end(settings: Settings, watcher: Watcher, orders: list[PlaceOrder]) -> dict[str, list[Seen]]:
    """Stock for every order, the orders placed, and each order's records once its slip has ended."""
    needed = Counter[str]()
    for placed in orders:
        needed.update({line.sku: line.quantity for line in placed.lines})
    set_stock_and_wait(settings, watcher, {sku: units + 1 for sku, units in needed.items()})
    produce_orders(settings, orders, progress=False)
    watcher.wait_until(
        lambda seen: all(any(s.key == o.order_id and s.record_type in ENDS for s in seen) for o in orders),
        timeout_s=90,
        what="every slip ended",
    )
    return {placed.order_id: watcher.for_order(placed.order_id) for placed in orders}


def slip_events(records: list[Seen]) -> list[tuple[str, str]]:
    """(event type, activity) of each routing-slip event, in the order they were published."""
    return [
        (s.record_type or "", s.record.model_dump().get("activity", ""))
        for s in records
        if s.topic == ROUTING_SLIPS_EVENTS.name and s.record is not None
    ]


def planned(records: list[Seen]) -> list[str]:
    [created] = [s.record for s in records if isinstance(s.record, RoutingSlipCreated)]
    return list(created.itinerary)


def test_itineraries_follow_the_order_and_run_in_order(settings: Settings, watcher: Watcher) -> None:
    plain = order("plain", {"SKU-TEE-01": 2})
    fragile_gift = order("gift", {"SKU-VASE-01": 1}, is_gift=True)
    cold_abroad = order("cold-us", {"SKU-CHOC-01": 2}, country="US", priority="EXPRESS")
    signed = order("signed-fr", {"SKU-KBD-01": 3}, country="FR")
    swiss = order("swiss", {"SKU-BOOK-01": 1}, country="CH")

    ran = run_to_the_end(settings, watcher, [plain, fragile_gift, cold_abroad, signed, swiss])

    assert planned(ran[plain.order_id]) == ["pick", "pack", "ship", "confirm-delivery"]
    assert planned(ran[fragile_gift.order_id]) == ["pick", "pack", "gift-wrap", "ship", "confirm-delivery"]
    assert planned(ran[cold_abroad.order_id]) == ["pick", "pack", "customs", "ship", "confirm-delivery"]
    assert planned(ran[swiss.order_id]) == ["pick", "pack", "customs", "ship", "confirm-delivery"]
    for placed in (plain, fragile_gift, cold_abroad, signed, swiss):
        records = ran[placed.order_id]
        events = slip_events(records)
        assert events[0] == ("RoutingSlipCreated", "")
        assert events[1:-1] == [("RoutingSlipActivityCompleted", step) for step in planned(records)]
        assert events[-1] == ("RoutingSlipCompleted", "")
        shipped = [s.record for s in records if isinstance(s.record, OrderShipped)]
        delivered = [s.record for s in records if isinstance(s.record, OrderDelivered)]
        assert len(shipped) == 1 and len(delivered) == 1
    [delivered_signed] = [s.record for s in ran[signed.order_id] if isinstance(s.record, OrderDelivered)]
    assert delivered_signed.signed_by, "above the value threshold the delivery is signed for"

    told = watcher.wait_until(
        lambda seen: (
            {(s.key, s.record.kind) for s in seen if isinstance(s.record, NotificationSent) and s.key == plain.order_id}
            >= {(plain.order_id, NotificationKind.ORDER_SHIPPED), (plain.order_id, NotificationKind.ORDER_DELIVERED)}
        ),
        what="shipped and delivered notifications",
    )
    assert (
        Counter(s.record.kind for s in told if isinstance(s.record, NotificationSent) and s.key == plain.order_id)[
            NotificationKind.ORDER_SHIPPED
        ]
        == 1
    )


def test_an_oversized_parcel_is_revised_to_another_carrier(settings: Settings, watcher: Watcher) -> None:
    skis = order("skis", {"SKU-SKI-01": 1})

    records = run_to_the_end(settings, watcher, [skis])[skis.order_id]

    [revised] = [s.record for s in records if isinstance(s.record, RoutingSlipRevised)]
    [shipped] = [s.record for s in records if isinstance(s.record, OrderShipped)]
    assert revised.activity == "ship" and "parcelpost refused" in revised.reason
    assert shipped.carrier != "parcelpost"
    assert slip_events(records)[-1] == ("RoutingSlipCompleted", "")


def test_a_parcel_no_carrier_takes_compensates_in_reverse_and_faults(settings: Settings, watcher: Watcher) -> None:
    anvil = order("anvil", {"SKU-ANVIL-01": 1}, is_gift=True)

    records = run_to_the_end(settings, watcher, [anvil])[anvil.order_id]

    assert slip_events(records)[1:] == [
        ("RoutingSlipActivityCompleted", "pick"),
        ("RoutingSlipActivityCompleted", "pack"),
        ("RoutingSlipActivityCompleted", "gift-wrap"),
        ("RoutingSlipActivityFaulted", "ship"),
        ("RoutingSlipActivityCompensated", "gift-wrap"),
        ("RoutingSlipActivityCompensated", "pack"),
        ("RoutingSlipActivityCompensated", "pick"),
        ("RoutingSlipFaulted", ""),
    ]
    assert FulfillmentLedger(default_fulfillment_ledger(settings)).outstanding(anvil.order_id) == []


def test_a_compensation_that_fails_parks_the_slip_where_it_is_seen(
    settings: Settings, registry: SchemaRegistryClient, watcher: Watcher
) -> None:
    crate = order("crate", {"SKU-CRATE-01": 1, "SKU-ANVIL-01": 1})

    records = run_to_the_end(settings, watcher, [crate])[crate.order_id]

    assert slip_events(records)[-3:] == [
        ("RoutingSlipActivityFaulted", "ship"),
        ("RoutingSlipActivityCompensationFailed", "pack"),
        ("RoutingSlipCompensationFailed", "pack"),
    ]
    [parked] = [s for s in records if s.topic == ROUTING_SLIPS_PARKED.name]
    slip = SlipCodec(HeaderCodec(registry, ROUTING_SLIP_HEADER)).read(list(parked.headers.items()))
    assert isinstance(slip, RoutingSlip)
    assert [entry.name for entry in slip.compensation_log] == ["pick", "pack"], "pack still to undo, then pick"
    assert isinstance(RecordCodec(registry, ROUTING_SLIPS_PARKED.name).decode(parked.value or b""), FulfillmentRequest)
    assert parked_slips(settings)[crate.order_id].failed_step == "pack"

    # An operator opens the crate by hand and resumes: the step below it is undone and the slip ends.
    resume(settings, crate.order_id, skip_failed_step=True)

    watcher.wait_until(
        lambda seen: any(s.key == crate.order_id and s.record_type == "RoutingSlipFaulted" for s in seen),
        what="the resumed slip faulted",
    )
    assert slip_events(watcher.for_order(crate.order_id))[-3:] == [
        ("RoutingSlipActivityCompensated", "pack"),
        ("RoutingSlipActivityCompensated", "pick"),
        ("RoutingSlipFaulted", ""),
    ]
    assert crate.order_id not in parked_slips(settings)
    outstanding = FulfillmentLedger(default_fulfillment_ledger(settings)).outstanding(crate.order_id)
    assert [effect.kind for effect in outstanding] == ["pack"], "only the crate's box, opened by hand"


def test_a_stop_signal_makes_the_next_step_compensate_and_one_after_the_end_changes_nothing(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    finished, stopped = order("done", {"SKU-TEE-01": 1}), order("stopped", {"SKU-TEE-01": 1})
    run_to_the_end(settings, watcher, [finished])
    pipeline.stop("activities")
    try:
        produce_orders(settings, [stopped], progress=False)
        watcher.wait_until(
            lambda seen: any(isinstance(s.record, RoutingSlipCreated) and s.key == stopped.order_id for s in seen),
            what="the slip created",
        )
        stop = [
            (
                placed.order_id,
                StopFulfillment(
                    event_id=uuid.uuid4(), order_id=placed.order_id, occurred_at=utc_now(), reason="cancelled"
                ),
            )
            for placed in (finished, stopped)
        ]
        stops = produce_records(settings, FULFILLMENT_CONTROL, stop, progress=False)
    finally:
        pipeline.start("activities")
    wait_for_group(admin, ACTIVITIES, members=1)
    watcher.wait_until(
        lambda seen: any(s.key == stopped.order_id and s.record_type == "RoutingSlipFaulted" for s in seen),
        what="the stopped slip faulted",
    )
    wait_until_handled(watcher, admin, ACTIVITIES, FULFILLMENT_CONTROL.name, stops.ends)

    # Pick was already addressed when the stop came, so the warehouse picked and packed (one record); ship,
    # reached through its topic, heard the stop first and undid both instead of shipping.
    assert slip_events(watcher.for_order(stopped.order_id)) == [
        ("RoutingSlipCreated", ""),
        ("RoutingSlipActivityCompleted", "pick"),
        ("RoutingSlipActivityCompleted", "pack"),
        ("RoutingSlipActivityCompensated", "pack"),
        ("RoutingSlipActivityCompensated", "pick"),
        ("RoutingSlipFaulted", ""),
    ]
    # The finished slip's end is published once: the late stop neither undoes it nor says it again.
    completions = [s.record for s in watcher.for_order(finished.order_id) if isinstance(s.record, RoutingSlipCompleted)]
    assert len(completions) == 1
    assert not any(isinstance(s.record, RoutingSlipActivityCompensated) for s in watcher.for_order(finished.order_id))


def test_a_slip_header_that_is_too_large_or_unreadable_is_dead_lettered(
    settings: Settings, registry: SchemaRegistryClient, watcher: Watcher
) -> None:
    placed = order("bad-header", {"SKU-TEE-01": 1})
    header = ROUTING_SLIP_HEADER.name
    cases = {
        f"{placed.order_id}-garbled": [(header, b"not a slip")],
        f"{placed.order_id}-huge": [(header, b"\x00" * (ROUTING_SLIP_HEADER.max_bytes + 1))],
        f"{placed.order_id}-missing": [],
    }
    producer = Producer(settings.kafka_config())
    for key, headers in cases.items():
        # Keyed by its own order id, as the topic's contract wants: only the header is wrong.
        request = FulfillmentRequest(
            event_id=uuid.uuid4(),
            order_id=key,
            occurred_at=utc_now(),
            lines=[],
            shipping_address=placed.shipping_address,
            total=Money(amount_minor=0, currency="EUR"),
        )
        value = RecordCodec(registry, PICK.name).encode(request)
        producer.produce(PICK.name, key=key.encode(), value=value, headers=headers)
    producer.flush(30)

    seen = watcher.wait_until(
        lambda seen: {s.key for s in seen if s.topic == PICK.dead_letter_topic.name} >= set(cases),
        what="three dead letters",
    )

    reasons = {s.key: s.headers["dlq.error.message"].decode() for s in seen if s.topic == PICK.dead_letter_topic.name}
    assert "not Confluent-framed Avro" in reasons[f"{placed.order_id}-garbled"]
    assert f"over the bound of {ROUTING_SLIP_HEADER.max_bytes}" in reasons[f"{placed.order_id}-huge"]
    assert "is missing" in reasons[f"{placed.order_id}-missing"]


def test_a_slip_routed_elsewhere_than_the_activities_is_dead_lettered_before_any_step_runs(
    settings: Settings, registry: SchemaRegistryClient, watcher: Watcher
) -> None:
    run = uuid.uuid4().hex[:6]
    placed = order(f"misrouted-{run}", {"SKU-TEE-01": 1})
    request = FulfillmentRequest(
        event_id=uuid.uuid4(),
        order_id=placed.order_id,
        occurred_at=utc_now(),
        lines=[],
        shipping_address=placed.shipping_address,
        total=Money(amount_minor=0, currency="EUR"),
    )
    codec = SlipCodec(HeaderCodec(registry, ROUTING_SLIP_HEADER))
    now = utc_now()
    to_the_orders = slips.build(
        placed.order_id, [slips.step("pick", PICK.name), slips.step("pack", ORDERS_EVENTS.name)], now
    )
    undeclared = slips.build(placed.order_id, [slips.step("pick", PICK.name), slips.step("pack", "oms.nowhere")], now)
    picked = slips.completed(
        slips.build(placed.order_id, [slips.step("pick", PICK.name)], now),
        execution=uuid.uuid4(),
        host="test",
        started_at=now,
        duration_ms=1,
        compensate_address=PICK_UNDO.name,
        log={"pick_id": "p-1", "items": "SKU-TEE-01:1"},
        variables={},
    )
    [entry] = picked.compensation_log
    forged_undo = picked.model_copy(
        update={"compensation_log": [entry.model_copy(update={"name": '"><img src=x onerror=alert(1)>'})]}
    )
    cases = {
        (PICK.name, f"{placed.order_id}-orders"): to_the_orders,
        (PICK.name, f"{placed.order_id}-nowhere"): undeclared,
        (PICK_UNDO.name, f"{placed.order_id}-undo"): forged_undo,
    }
    producer = Producer(settings.kafka_config())
    for (topic, key), slip in cases.items():
        value = RecordCodec(registry, topic).encode(request.model_copy(update={"order_id": key}))
        ours = slip.model_copy(update={"order_id": key})  # a slip of another order is refused for that alone
        producer.produce(topic, key=key.encode(), value=value, headers=list(codec.header(ours)))
    producer.flush(30)
    letters = {PICK.dead_letter_topic.name, PICK_UNDO.dead_letter_topic.name}

    seen = watcher.wait_until(
        lambda seen: {s.key for s in seen if s.topic in letters} >= {key for _, key in cases},
        what="three dead letters",
    )

    reasons = {s.key: s.headers["dlq.error.message"].decode() for s in seen if s.topic in letters}
    assert "'oms.orders.events', not oms.fulfillment.pack" in reasons[f"{placed.order_id}-orders"]
    assert "'oms.nowhere', not oms.fulfillment.pack" in reasons[f"{placed.order_id}-nowhere"]
    assert "the compensation log names" in reasons[f"{placed.order_id}-undo"]
    ledger = FulfillmentLedger(default_fulfillment_ledger(settings))
    assert [effect for _, key in cases for effect in ledger.effects(key)] == [], "no step ran"
    assert not [s for s in seen if s.topic == ROUTING_SLIPS_EVENTS.name and s.key in {k for _, k in cases}]

    # The host goes on: an order placed after them is fulfilled.
    after = order(f"after-misrouted-{run}", {"SKU-TEE-01": 1})
    records = run_to_the_end(settings, watcher, [after])[after.order_id]
    assert slip_events(records)[-1] == ("RoutingSlipCompleted", "")


def test_kill_9_of_the_activity_host_mid_stream_repeats_no_side_effect(
    settings: Settings, pipeline: Processes, watcher: Watcher
) -> None:
    orders = [order(f"crash-{n}", {"SKU-TEE-01": 1, "SKU-MUG-01": 1}, is_gift=n % 3 == 0) for n in range(60)]
    needed = {"SKU-TEE-01": 61, "SKU-MUG-01": 61}
    set_stock_and_wait(settings, watcher, needed)

    produce_orders(settings, orders, rate_per_s=40, progress=False)
    time.sleep(0.5)
    pipeline.kill("activities")
    time.sleep(0.5)
    pipeline.start("activities")
    watcher.wait_until(
        lambda seen: all(any(s.key == o.order_id and s.record_type in ENDS for s in seen) for o in orders),
        timeout_s=120,
        what="every slip ended",
    )

    ledger = FulfillmentLedger(default_fulfillment_ledger(settings))
    for placed in orders:
        kinds = Counter[str](effect.kind for effect in ledger.effects(placed.order_id))
        expected = {"pick": 1, "pack": 1, "label": 1, "confirm-delivery": 1} | ({"wrap": 1} if placed.is_gift else {})
        assert {kind: kinds[kind] for kind in expected} == expected, placed.order_id
        ended = [s.record_type for s in watcher.for_order(placed.order_id) if s.record_type in ENDS]
        assert ended == ["RoutingSlipCompleted"], placed.order_id
