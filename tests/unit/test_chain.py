"""The order-keyed processors run together (processors/runtime/chain.py, colocated.py): what is chained follows
from the declarations, and the same orders lead to the same records and the same outside effects as when each
processor runs alone."""

from __future__ import annotations

import collections
import uuid
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import BaseModel
from quixstreams import State

from ops.chaos import read_ledgers, stock_for
from ops.orders import OrderMix, generate_orders
from ops.produce import CancellationPlan
from ops.reconciliation import Ledgers
from ops.stock import level_records
from processors.runtime.chain import Chain, chain_of
from processors.runtime.cloudevents import header
from processors.runtime.colocated import ChainStage
from processors.runtime.deadletters import Received
from processors.runtime.encoder import Encoder
from processors.runtime.inprocess import InProcessRunner, memory_registry
from processors.runtime.memory import MemoryState
from processors.runtime.records import Emit, Outgoing, derive_event_id
from processors.runtime.spec import ProcessorSpec, Stream
from processors.runtime.stage import Handler
from processors.runtime.state import StateSlot
from processors.services import STREAM_PROCESSORS
from processors.tracking.timeline import new_timeline
from schemas.models import AvroRecord, OrderCreated, OrderTimeline, PlaceOrder
from tests.factories import NOW, a_valid_order, order_created_from
from topology.settings import Settings
from topology.topics import (
    INVENTORY_STOCK,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    TRACKING_ORDERS,
    fulfillment_activity,
)

CHAIN = chain_of(STREAM_PROCESSORS)


def names(topics: Iterable[object]) -> set[str]:
    return {topic.name for topic in topics}  # type: ignore[attr-defined]


def test_the_order_keyed_processors_are_chained_and_stock_keyed_by_sku_runs_alone() -> None:
    assert {spec.name for spec in CHAIN.members} == {
        "intake",
        "payments",
        "inventory",
        "fulfillment",
        "activities",
        "notifications",
        "sagas",
        "tracker",
    }


def test_the_chain_reads_from_kafka_what_comes_from_outside_it_and_the_topics_a_slip_must_cross() -> None:
    assert names(CHAIN.inputs) == {
        "oms.orders.commands",  # users
        "oms.inventory.stock-results",  # stock, keyed by SKU, runs alone
        "oms.sagas.timers",  # the timers service
        "oms.fulfillment.ship",  # a stop is heard before the parcel leaves
        "oms.fulfillment.confirm-delivery",  # the order is seen shipped before it is delivered
    }
    assert {"oms.orders.events", "oms.payments.events", "oms.fulfillment.pick", "oms.fulfillment.control"} <= set(
        CHAIN.chained
    )
    assert not CHAIN.chained & names(CHAIN.inputs)


def test_the_chain_publishes_every_output_and_the_dead_letters_of_every_topic_it_reads() -> None:
    published = names(CHAIN.outputs)
    assert set(CHAIN.chained) <= published
    assert {f"{topic}.dlq" for topic in CHAIN.chained} <= published
    assert {f"{topic.name}.dlq" for topic in CHAIN.inputs} <= published
    assert "oms.inventory.stock-requests" in published


def emitting(emit: Emit) -> Handler:
    return lambda record, state, message: [emit]


def spec_of(name: str, reads: tuple, writes: tuple, handler: Handler) -> ProcessorSpec:
    return ProcessorSpec(name, f"oms.{name}", (Stream(reads, lambda s, r: handler),), writes, "nothing")


def test_a_topic_written_outside_the_chain_or_declared_unchainable_is_read_from_kafka() -> None:
    nothing: Handler = lambda record, state, message: []  # noqa: E731
    ship = fulfillment_activity("ship")
    first = spec_of("first", (ORDERS_COMMANDS,), (ORDERS_EVENTS, ship), nothing)
    second = spec_of("second", (ORDERS_EVENTS, ship, PAYMENTS_EVENTS), (), nothing)
    by_sku = spec_of("by-sku", (INVENTORY_STOCK,), (PAYMENTS_EVENTS,), nothing)

    chain = chain_of([first, second, by_sku])

    assert [spec.name for spec in chain.members] == ["first", "second"]
    assert chain.chained == {ORDERS_EVENTS.name}
    assert names(chain.inputs) == {ORDERS_COMMANDS.name, ship.name, PAYMENTS_EVENTS.name}


def command_received(command: PlaceOrder, registry: SchemaRegistryClient) -> Received:
    """`command` as read from the commands topic."""
    outgoing = Encoder(registry, "oms.test")(Emit(ORDERS_COMMANDS, command.order_id, command))
    return Received(ORDERS_COMMANDS.name, 0, 7, 0, outgoing.key, outgoing.value, outgoing.headers)


def chain_stage(chain: Chain, registry: SchemaRegistryClient) -> ChainStage:
    return ChainStage(chain, lambda reader: reader.stage(Settings(), registry), Settings())


def test_an_event_under_another_order_than_its_cause_is_published_and_dead_lettered_for_the_chain() -> None:
    registry = memory_registry()
    command = a_valid_order("order-a")
    elsewhere = order_created_from(command).model_copy(update={"order_id": "order-b"})
    heard: list[AvroRecord] = []

    def listen(record: AvroRecord, state: State, message: Received) -> list[Emit]:
        heard.append(record)
        return []

    first = spec_of("first", (ORDERS_COMMANDS,), (ORDERS_EVENTS,), emitting(Emit(ORDERS_EVENTS, "order-b", elsewhere)))
    second = spec_of("second", (ORDERS_EVENTS,), (), listen)
    chain = chain_of([first, second])
    stage = chain_stage(chain, registry)

    published = stage.process(command_received(command, registry), MemoryState())

    assert [outgoing.topic for outgoing in published] == [ORDERS_EVENTS.name, f"{ORDERS_EVENTS.name}.dlq"]
    assert published[0].key == b"order-b"
    assert header(published[1].headers, "dlq.original.offset") == "-1"
    assert heard == []


def test_each_member_keeps_its_own_part_of_the_order_state() -> None:
    registry = memory_registry()
    command = a_valid_order("order-a")
    created = order_created_from(command)

    def count(record: AvroRecord, state: State, message: Received) -> list[Emit]:
        state.set("seen", state.get("seen", 0) + 1)
        return [Emit(ORDERS_EVENTS, "order-a", created)] if isinstance(record, PlaceOrder) else []

    first = spec_of("first", (ORDERS_COMMANDS,), (ORDERS_EVENTS,), count)
    second = spec_of("second", (ORDERS_EVENTS,), (), count)
    stage = chain_stage(chain_of([first, second]), registry)
    state = MemoryState()

    stage.process(command_received(command, registry), state)

    assert state.values == {"order": {"first/oms.orders.commands/seen": 1, "second/oms.orders.events/seen": 1}}


def test_a_record_handed_over_in_memory_is_not_decoded_again() -> None:
    registry = memory_registry()
    command = a_valid_order("order-a")
    created = order_created_from(command)
    heard: list[AvroRecord] = []

    def listen(record: AvroRecord, state: State, message: Received) -> list[Emit]:
        heard.append(record)
        return []

    first = spec_of("first", (ORDERS_COMMANDS,), (ORDERS_EVENTS,), emitting(Emit(ORDERS_EVENTS, "order-a", created)))
    second = spec_of("second", (ORDERS_EVENTS,), (), listen)
    stage = chain_stage(chain_of([first, second]), registry)

    stage.process(command_received(command, registry), MemoryState())

    assert heard == [created] and heard[0] is created


Commands = list[tuple[float, str, AvroRecord]]


def the_mix() -> tuple[dict[str, int], Commands]:
    """The bench's order mix, a tenth cancelled at planned moments: the stock, and the commands in the order
    sent."""
    generated = generate_orders(250, 7, prefix="modes", mix=OrderMix())
    placed: Commands = [(float(index), order.order_id, order.record) for index, order in enumerate(generated)]
    commands = sorted([*placed, *CancellationPlan(0.1, 7).commands(placed)], key=lambda command: command[0])
    return stock_for(generated, spare=2), commands


def run(stock: dict[str, int], commands: Commands, settings: Settings, colocated: bool) -> InProcessRunner:
    """`commands` through every declared processor, each command's consequences before the next."""
    runner = InProcessRunner(STREAM_PROCESSORS, settings, colocated=colocated)
    runner.send(
        *(
            Emit(INVENTORY_STOCK, level.sku, level.model_copy(update={"event_id": derive_event_id(level.sku, "seed")}))
            for level in level_records(stock)
        )
    )
    runner.run()
    # The carrier's queue is behind for the first half: those orders' cancellations come before their parcels
    # leave; the second half's come after delivery.
    ship = fulfillment_activity("ship").name
    runner.hold(ship)
    for index, (_, order_id, record) in enumerate(commands):
        if index == len(commands) // 2:
            runner.release(ship)
            runner.run()
        runner.send(Emit(ORDERS_COMMANDS, order_id, record))
        runner.run()
    return runner


def effects(ledgers: Ledgers) -> list[tuple[str, ...]]:
    """Every fulfillment effect, without when it was made."""
    return sorted(
        (effect.kind, effect.idempotency_key, effect.order_id, effect.subject, str(sorted(effect.detail.items())))
        for effect in ledgers.fulfillment
    )


def test_the_same_orders_make_the_same_records_and_effects_whether_processors_run_alone_or_together(
    tmp_path: Path,
) -> None:
    stock, commands = the_mix()
    order_ids = sorted({order_id for _, order_id, _ in commands})
    alone_settings, together_settings = Settings(run_dir=tmp_path / "alone"), Settings(run_dir=tmp_path / "together")
    alone = run(stock, commands, alone_settings, colocated=False)
    together = run(stock, commands, together_settings, colocated=True)

    def records(runner: InProcessRunner) -> collections.Counter[tuple[str, bytes | None, str | None, str | None]]:
        return collections.Counter(
            (out.topic, out.key, header(out.headers, "ce_type"), header(out.headers, "ce_id"))
            for out in (delivered.outgoing for delivered in runner.log)
            if out.topic != TRACKING_ORDERS.name
        )

    def views(runner: InProcessRunner) -> dict[str, tuple[object, ...]]:
        """The last timeline of every order, without the times its steps took."""
        latest = {timeline.order_id: timeline for timeline in runner.records(OrderTimeline)}
        return {
            order_id: (t.status, t.outcome, t.slip, t.saga, sorted((s.pattern, s.name, s.status) for s in t.steps))
            for order_id, t in latest.items()
        }

    assert records(together) == records(alone)
    assert views(together) == views(alone) and len(views(together)) == len(order_ids)
    published_views = len(together.records(OrderTimeline))
    assert published_views < len(alone.records(OrderTimeline)), "one view per order per message, not per event"
    assert len(alone.log) > 20 * len(order_ids)
    assert {type(record).__name__ for record in together.records()} >= {
        "OrderCreated",
        "OrderRejected",
        "PaymentFailed",
        "InventoryShortage",
        "OrderDelivered",
        "OrderCancelled",
        "OrderCancellationRejected",
        "OrderFailed",
        "NotificationSent",
    }
    alone_ledgers, together_ledgers = (
        read_ledgers(alone_settings, order_ids),
        read_ledgers(together_settings, order_ids),
    )
    assert together_ledgers.charged == alone_ledgers.charged and sum(together_ledgers.charged.values()) > 0
    assert together_ledgers.returned == alone_ledgers.returned and sum(together_ledgers.returned.values()) > 0
    assert effects(together_ledgers) == effects(alone_ledgers)
    assert not [record for record in together.records(OrderCreated) if record.order_id not in order_ids]


class CountingState(MemoryState):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def set(self, key: object, value: object, ttl: object = None) -> None:
        self.writes += 1
        super().set(key, value)


def test_an_order_state_is_written_once_for_a_message_and_its_handovers_and_not_at_all_when_unchanged() -> None:
    registry = memory_registry()
    command = a_valid_order("order-a")
    created = order_created_from(command)

    def remember(record: AvroRecord, state: State, message: Received) -> list[Emit]:
        state.set("last", type(record).__name__)
        return [Emit(ORDERS_EVENTS, "order-a", created)] if isinstance(record, PlaceOrder) else []

    first = spec_of("first", (ORDERS_COMMANDS,), (ORDERS_EVENTS,), remember)
    second = spec_of("second", (ORDERS_EVENTS,), (), remember)
    idle = spec_of("idle", (ORDERS_COMMANDS,), (), lambda record, state, message: [])
    state = CountingState()

    chain_stage(chain_of([first, second]), registry).process(command_received(command, registry), state)
    chain_stage(chain_of([idle]), registry).process(command_received(command, registry), state)

    assert state.writes == 1


class Tally(BaseModel):
    events: tuple[str, ...] = ()


TALLY = StateSlot("tally", Tally)


def test_a_model_in_the_order_state_is_validated_and_dumped_once_per_message_not_per_handover() -> None:
    registry = memory_registry()
    command = a_valid_order("order-a")
    created = order_created_from(command)
    loaded: list[Tally | None] = []
    saved: list[Tally] = []

    def tally(record: AvroRecord, state: State, message: Received) -> list[Emit]:
        before = TALLY.load(state)
        after = Tally(events=(*(before or Tally()).events, type(record).__name__))
        TALLY.update(state, before, after)
        loaded.append(before)
        saved.append(after)
        return [Emit(ORDERS_EVENTS, "order-a", created)] if isinstance(record, PlaceOrder) else []

    stage = chain_stage(
        chain_of([spec_of("tally", (ORDERS_COMMANDS, ORDERS_EVENTS), (ORDERS_EVENTS,), tally)]), registry
    )
    state = MemoryState()

    stage.process(command_received(command, registry), state)

    assert loaded[0] is None
    assert loaded[1] is saved[0], "the tally kept by the command's handling is the object the event's loads"
    assert state.values == {"order": {"tally/oms.orders.commands/tally": {"events": ["PlaceOrder", "OrderCreated"]}}}


def test_of_a_view_only_the_last_record_of_each_key_that_one_message_leads_to_is_published() -> None:
    registry = memory_registry()
    command = a_valid_order("order-a")
    created = order_created_from(command)

    def view(step: int) -> Emit:
        timeline = new_timeline("order-a", NOW).model_copy(update={"status": f"step-{step}"})
        return Emit(TRACKING_ORDERS, "order-a", timeline)

    def restate(record: AvroRecord, state: State, message: Received) -> list[Emit]:
        return [view(1), Emit(ORDERS_EVENTS, "order-a", created), view(2)]

    def restate_again(record: AvroRecord, state: State, message: Received) -> list[Emit]:
        return [view(3)]

    first = spec_of("first", (ORDERS_COMMANDS,), (ORDERS_EVENTS, TRACKING_ORDERS), restate)
    second = spec_of("second", (ORDERS_EVENTS,), (TRACKING_ORDERS,), restate_again)
    stage = chain_stage(chain_of([first, second]), registry)

    published = stage.process(command_received(command, registry), MemoryState())

    def status(out: Outgoing) -> str | None:
        return out.record.status if isinstance(out.record, OrderTimeline) else None

    assert [(out.topic, status(out)) for out in published] == [
        (ORDERS_EVENTS.name, None),
        (TRACKING_ORDERS.name, "step-3"),
    ]


def test_a_view_too_large_to_publish_is_the_dead_letter_of_the_message_that_led_to_it() -> None:
    registry = memory_registry()
    command = a_valid_order("order-a")
    large = new_timeline("order-a", NOW).model_copy(update={"seen": [str(uuid.uuid4()) for _ in range(100)]})

    def restate(record: AvroRecord, state: State, message: Received) -> list[Emit]:
        return [Emit(TRACKING_ORDERS, "order-a", large)]

    first = spec_of("first", (ORDERS_COMMANDS,), (TRACKING_ORDERS,), restate)
    settings = Settings(max_message_bytes=2000)
    stage = ChainStage(chain_of([first]), lambda reader: reader.stage(settings, registry), settings)

    [letter] = stage.process(command_received(command, registry), MemoryState())

    assert letter.topic == f"{ORDERS_COMMANDS.name}.dlq" and letter.key == b"order-a"
    assert "over the 2000 a message may have" in (header(letter.headers, "dlq.error.message") or "")
