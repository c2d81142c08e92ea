"""The schema registry stopped in the middle of a stream of orders and started again: an outage pauses the
processors, it is no bad message. Afterwards no dead letter anywhere, and every order produced before, during
and after the outage reconciles exactly (ops/reconciliation.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from confluent_kafka import Producer

from ops.chaos import (
    Background,
    Fleet,
    Observer,
    close_the_books,
    restart_platform,
    seed_stock,
    stock_for,
    wait_for_endings,
)
from ops.orders import GeneratedOrder, OrderMix, generate_orders
from ops.produce import CLI_SOURCE, CancellationPlan
from ops.registry import registry_server
from processors.runtime.encoder import Encoder, produce
from processors.runtime.records import Emit, Outgoing
from schemas.registry import registry_client
from topology.settings import Settings
from topology.topics import ORDERS_COMMANDS

ORDERS = 80
RATE_PER_S = 4.0  # 20 s of orders: the registry stops after 4 s and is away until the last is produced
STOPPED_AFTER_S = 4.0


def encoded_commands(
    settings: Settings, plan: CancellationPlan, orders: Sequence[GeneratedOrder]
) -> list[tuple[float, Outgoing]]:
    """Every order and planned cancellation encoded now, while the registry answers, as a client that has its
    schema ids cached would send them; each with its moment (seconds from the start)."""
    encode = Encoder(registry_client(settings), CLI_SOURCE)
    placed = [(index / RATE_PER_S, order.order_id, order.record) for index, order in enumerate(orders)]
    timeline = sorted([*placed, *plan.commands(placed)], key=lambda entry: entry[0])
    return [(at, encode(Emit(ORDERS_COMMANDS, order_id, record))) for at, order_id, record in timeline]


def produce_in_time(settings: Settings, commands: list[tuple[float, Outgoing]]) -> int:
    producer = Producer({**settings.producer_config(), "enable.idempotence": True})
    started = time.monotonic()
    for at, outgoing in commands:
        while (wait := started + at - time.monotonic()) > 0:
            producer.poll(wait)
        produce(producer, outgoing)
    assert producer.flush(60) == 0
    return len(commands)


def test_a_registry_outage_mid_stream_dead_letters_nothing_and_loses_no_order(settings: Settings, fleet: Fleet) -> None:
    orders = generate_orders(ORDERS, seed=23, prefix=f"registry-{uuid.uuid4().hex[:6]}", mix=OrderMix(scarce=0.0))
    plan = CancellationPlan(share=0.25, seed=23, within_s=3.0)
    cancels = dict.fromkeys(plan.cancelled([order.order_id for order in orders]), 1)
    commands = encoded_commands(settings, plan, orders)
    registry = registry_server(settings)
    observer = Observer(settings, registry_client(settings))
    try:
        seeded = stock_for(orders)
        seed_stock(settings, observer, seeded)
        producing = Background(lambda: produce_in_time(settings, commands))
        stop_at = time.monotonic() + STOPPED_AFTER_S
        while time.monotonic() < stop_at:  # orders flowing through a registry that answers
            observer.poll()
        stopped = registry.stop()
        while producing.running:
            observer.poll()
            fleet.revive()
        assert producing.result() == len(commands)
        assert registry.status().pid is None, "the registry stayed away while the orders came"
        restart_platform(settings)

        unfinished = wait_for_endings(observer, [order.order_id for order in orders], cancels, 240, fleet)
        reconciliation = close_the_books(settings, observer, orders, cancels, seeded)
    finally:
        observer.close()

    report = reconciliation.report()
    print(stopped, report, f"processors that exited: {fleet.exited}", sep="\n")
    assert unfinished == set(), f"{len(unfinished)} orders never ended, e.g. {sorted(unfinished)[:3]}\n{report}"
    assert reconciliation.ok, report
    assert reconciliation.counts["dead letters"] == 0
    assert observer.undecodable == []
