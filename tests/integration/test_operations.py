"""Recovery tools on the real broker: dead-letter redrive, group replay, and state rebuilt from its changelog."""

from __future__ import annotations

import datetime
import shutil
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.deadletters import dead_letters, matching, redrive
from ops.produce import produce_orders
from ops.replay import GroupActive, apply, committed, plan, reproduce
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.intake import PROCESSOR as INTAKE
from processors.payments import PROCESSOR as PAYMENTS
from processors.runtime.records import utc_now
from processors.stock import PROCESSOR as STOCK
from schemas.serde import RecordCodec
from tests.integration.harness import Processes, Watcher
from tests.integration.test_cancellation import SKU, tee_order
from tests.integration.test_choreography import set_stock_and_wait
from tests.integration.test_routing_slips import order
from topology.admin import wait_for_group
from topology.settings import Settings
from topology.topics import INVENTORY_EVENTS, INVENTORY_STOCK, ORDERS_COMMANDS, ORDERS_EVENTS, PAYMENTS_EVENTS

ENDS = {"RoutingSlipCompleted", "PaymentFailed", "InventoryShortage", "OrderRejected"}


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    topics = [ORDERS_EVENTS.name, PAYMENTS_EVENTS.name, INVENTORY_EVENTS.name, INVENTORY_STOCK.name]
    watching = Watcher(settings, registry, [*topics, "oms.routing-slips.events"])
    yield watching
    watching.close()


def records_of(watcher: Watcher, order_id: str, kind: str) -> int:
    return sum(1 for s in watcher.for_order(order_id) if s.record_type == kind)


def test_a_redriven_dead_letter_is_processed_once_however_often_it_is_redriven(
    settings: Settings, registry: SchemaRegistryClient, watcher: Watcher
) -> None:
    placed = tee_order("redrive")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    # As if intake and the sagas had failed on it during an outage: two letters of one original message.
    original = str(uuid.uuid4().int % 1_000_000)
    producer = Producer(settings.kafka_config())
    for processor in ("oms.intake", "oms.sagas"):
        producer.produce(
            f"{ORDERS_COMMANDS.name}.dlq",
            key=placed.order_id.encode(),
            value=RecordCodec(registry, ORDERS_COMMANDS.name).encode(placed),
            headers=[
                ("trace", b"kept"),
                ("dlq.original.topic", ORDERS_COMMANDS.name.encode()),
                ("dlq.original.partition", b"0"),
                ("dlq.original.offset", original.encode()),
                ("dlq.error.class", b"httpx.ConnectError"),
                ("dlq.error.message", b"registry unreachable"),
                ("dlq.processor", processor.encode()),
            ],
        )
    producer.flush(10)
    mine = matching(key=placed.order_id)
    assert len([letter for letter in dead_letters(settings, ORDERS_COMMANDS.name) if mine(letter)]) == 2

    assert len(redrive(settings, ORDERS_COMMANDS.name, mine, dry_run=True)) == 1
    [sent] = redrive(settings, ORDERS_COMMANDS.name, mine)
    assert sent.original_headers() == [("trace", b"kept")]
    assert redrive(settings, ORDERS_COMMANDS.name, mine) == [], "a second redrive sends nothing"
    watcher.wait_until(lambda _: records_of(watcher, placed.order_id, "RoutingSlipCompleted") == 1, what="fulfilled")

    assert records_of(watcher, placed.order_id, "OrderCreated") == 1
    assert records_of(watcher, placed.order_id, "PaymentProcessed") == 1


def test_a_replayed_group_repeats_no_outcome_and_no_side_effect(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    orders = [tee_order(f"replay-{index}") for index in range(4)]
    set_stock_and_wait(settings, watcher, {SKU: 10})
    before = utc_now() - datetime.timedelta(seconds=1)
    produce_orders(settings, orders, progress=False)
    watcher.wait_until(
        lambda _: all(records_of(watcher, o.order_id, "RoutingSlipCompleted") == 1 for o in orders),
        what="every order fulfilled",
    )

    moves = plan(settings, PAYMENTS, to_time=before)
    assert moves and all(move.rereads is not None and move.rereads >= 0 for move in moves)
    assert sum(move.rereads or 0 for move in moves) >= len(orders), "the dry run shows what is read again"
    with pytest.raises(GroupActive):
        apply(settings, PAYMENTS, moves)
    pipeline.stop("payments")
    try:
        watcher_offsets = len(watcher.seen)
        apply(settings, PAYMENTS, moves)
    finally:
        pipeline.start("payments")
    wait_for_group(admin, PAYMENTS, members=1)
    where_it_was = {(move.topic, move.partition): move.current or 0 for move in moves}

    def caught_up() -> bool:
        now = {(tp.topic, tp.partition): tp.offset for tp in committed(admin, PAYMENTS)}
        return all(now.get(partition, -1) >= offset for partition, offset in where_it_was.items())

    watcher.wait_until(lambda _: caught_up(), what="payments read everything again")

    again = [s for s in watcher.seen[watcher_offsets:] if s.key in {o.order_id for o in orders}]
    assert [s for s in again if s.topic == PAYMENTS_EVENTS.name] == [], "no payment event repeated"
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    for placed in orders:
        assert gateway.count_charges(placed.order_id) == 1


def test_a_processor_whose_state_folder_is_deleted_rebuilds_it_from_its_changelog(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    set_stock_and_wait(settings, watcher, {SKU: 5})
    first = order("rebuild-first", {SKU: 2})
    produce_orders(settings, [first], progress=False)
    watcher.wait_until(lambda _: records_of(watcher, first.order_id, "InventoryReserved") == 1, what="reserved")

    pipeline.stop("stock")
    shutil.rmtree(settings.run_dir / "state" / STOCK / "0")
    pipeline.start("stock")
    wait_for_group(admin, STOCK, members=1)
    fits, short = order("rebuild-fits", {SKU: 3}), order("rebuild-short", {SKU: 1})
    produce_orders(settings, [fits], progress=False)
    watcher.wait_until(lambda _: records_of(watcher, fits.order_id, "InventoryReserved") == 1, what="3 of 3 left")
    produce_orders(settings, [short], progress=False)
    watcher.wait_until(lambda _: records_of(watcher, short.order_id, "InventoryShortage") == 1, what="none left")


def test_a_re_produced_range_of_a_topic_repeats_no_outcome(
    settings: Settings, admin: AdminClient, watcher: Watcher
) -> None:
    placed = tee_order("reproduce")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    report = produce_orders(settings, [placed], progress=False)
    watcher.wait_until(lambda _: records_of(watcher, placed.order_id, "RoutingSlipCompleted") == 1, what="fulfilled")
    consumer = Consumer({**settings.kafka_config(), "group.id": f"test-{uuid.uuid4().hex}"})
    try:
        moment = report.produced_at_ms[placed.order_id]
        found = consumer.offsets_for_times(
            [TopicPartition(ORDERS_COMMANDS.name, p, moment) for p in range(ORDERS_COMMANDS.partitions)], timeout=10
        )
        [(partition, offset)] = [(tp.partition, tp.offset) for tp in found if tp.offset >= 0]

        assert reproduce(settings, ORDERS_COMMANDS.name, partition, offset, offset + 1) == 1
        _, end = consumer.get_watermark_offsets(TopicPartition(ORDERS_COMMANDS.name, partition), timeout=10)
    finally:
        consumer.close()

    def intake_read_the_copy() -> bool:
        read_to = {(tp.topic, tp.partition): tp.offset for tp in committed(admin, INTAKE)}
        return read_to.get((ORDERS_COMMANDS.name, partition), -1) >= end

    watcher.wait_until(lambda _: intake_read_the_copy(), what="intake read the copy")
    watcher.poll(1.0)  # what it would have published went out with that commit
    assert records_of(watcher, placed.order_id, "OrderCreated") == 1
    assert records_of(watcher, placed.order_id, "PaymentProcessed") == 1
