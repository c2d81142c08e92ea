"""The tracker on the real broker: complete timelines across the three patterns, stuck slips, restarts, and
the records it cannot use dead-lettered rather than folded into made-up orders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.produce import produce_orders
from processors.runtime.records import utc_now
from processors.tracking.processor import PROCESSOR as TRACKER
from schemas.models import Money, OrderTimeline, PaymentProcessed
from schemas.serde import RecordCodec
from tests.integration.harness import Processes, Watcher
from tests.integration.test_cancellation import SKU, activities_held_back, cancel, tee_order
from tests.integration.test_choreography import set_stock_and_wait
from topology.admin import wait_for_group
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ORDERS_COMMANDS, PAYMENTS_EVENTS, TRACKING_ORDERS

COMMANDS_DLQ = ORDERS_COMMANDS.dead_letter_topic.name


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [TRACKING_ORDERS.name, INVENTORY_STOCK.name], raw=[COMMANDS_DLQ])
    yield watching
    watching.close()


def latest(watcher: Watcher, order_id: str) -> OrderTimeline | None:
    timelines = [s.record for s in watcher.for_order(order_id) if isinstance(s.record, OrderTimeline)]
    return timelines[-1] if timelines else None


def wait_for(watcher: Watcher, order_id: str, status: str, what: str) -> OrderTimeline:
    watcher.wait_until(lambda _: (t := latest(watcher, order_id)) is not None and t.status == status, what=what)
    timeline = latest(watcher, order_id)
    assert timeline is not None
    return timeline


def oms(*args: str, stuck_after_s: float = 30) -> Any:
    """Run the command line as a user would, with --json, and parse what it prints."""
    env = {**os.environ, "OMS_STUCK_AFTER_S": str(stuck_after_s)}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("oms")), *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout)


def test_timelines_show_every_pattern_and_the_command_line_prints_them(settings: Settings, watcher: Watcher) -> None:
    delivered, declined = tee_order("track-ok"), tee_order("track-declined", "tok_declined_1")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    produce_orders(settings, [delivered, declined], progress=False)

    shipped = wait_for(watcher, delivered.order_id, "completed", "the delivered order's timeline")
    failed = wait_for(watcher, declined.order_id, "completed", "the declined order's timeline")

    assert shipped.outcome == "delivered" and shipped.slip == "completed"
    kinds = {(step.pattern, step.name): step.status for step in shipped.steps}
    for name in ("intake", "payment", "inventory"):
        assert kinds[("choreography", name)] == "completed"
    assert [s.name for s in shipped.steps if s.pattern == "routing-slip"] == [
        "pick",
        "pack",
        "ship",
        "confirm-delivery",
    ]
    assert all(s.status == "completed" for s in shipped.steps if s.pattern == "routing-slip")
    assert failed.outcome == "payment-failed"
    [payment] = [s for s in failed.steps if s.name == "payment"]
    assert payment.status == "failed" and payment.error == "tender 1 of 1 (CARD) declined: card declined"

    [printed] = oms("track", delivered.order_id)
    assert printed["status"] == "completed" and printed["outcome"] == "delivered"
    workflow = [step["name"] for step in printed["steps"] if not step["name"].startswith("notify")]
    assert workflow == ["intake", "payment", "inventory", "pick", "pack", "ship", "confirm-delivery"]
    assert "notify order shipped" in {step["name"] for step in printed["steps"]}
    assert all(step["duration_ms"] is not None for step in printed["steps"] if step["status"] == "completed")


def test_a_cancelled_order_shows_its_saga_and_a_halted_activity_makes_slips_stuck(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    halted = tee_order("track-halted")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    with activities_held_back(pipeline, admin):
        produce_orders(settings, [halted], progress=False)
        watcher.wait_until(lambda _: (t := latest(watcher, halted.order_id)) is not None and t.slip == "running")
        stuck = watcher.wait_until(
            lambda _: any(t["order_id"] == halted.order_id for t in oms("slips", "--stuck", stuck_after_s=2)),
            what="the halted order listed as stuck",
        )
        assert stuck
        assert not any(t["order_id"] == halted.order_id for t in oms("slips", "--stuck", stuck_after_s=600))
        cancel(settings, halted.order_id)
        during = wait_for(watcher, halted.order_id, "compensating", "the saga under way")
        assert during.saga == "StoppingFulfillment"
    cancelled = wait_for(watcher, halted.order_id, "completed", "the order cancelled")

    assert (cancelled.outcome, cancelled.saga, cancelled.slip) == ("cancelled", "Cancelled", "faulted")
    saga = [(s.name, s.status) for s in cancelled.steps if s.pattern == "saga"]
    assert saga[0] == ("cancellation asked", "completed")
    assert ("StoppingFulfillment", "completed") in saga and saga[-1] == ("Cancelled", "completed")
    listed = oms("sagas", "--state", "Cancelled")
    assert halted.order_id in {t["order_id"] for t in listed}


def test_a_killed_tracker_keeps_its_timelines_and_folds_nothing_twice(
    settings: Settings, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    before, after = tee_order(f"track-before-{uuid.uuid4().hex[:4]}"), tee_order("track-after")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    produce_orders(settings, [before], progress=False)
    wait_for(watcher, before.order_id, "completed", "the first order's timeline")
    watcher.wait_until(
        lambda _: any(
            s.name == "notify order delivered" for s in getattr(latest(watcher, before.order_id), "steps", [])
        ),
        what="the first order's last notification tracked",
    )
    first = latest(watcher, before.order_id)
    assert first is not None

    pipeline.kill("tracker")
    produce_orders(settings, [after], progress=False)
    pipeline.start("tracker")
    wait_for_group(admin, TRACKER, members=1)
    wait_for(watcher, after.order_id, "completed", "the second order's timeline, after the restart")

    [kept] = oms("track", before.order_id)
    assert [(step["name"], step["status"]) for step in kept["steps"]] == [(s.name, s.status) for s in first.steps]
    [second] = oms("track", after.order_id)
    names = [step["name"] for step in second["steps"]]
    assert len(names) == len(set(names)), "each step once"


def test_records_the_tracker_cannot_use_are_dead_lettered_and_make_up_no_order(
    settings: Settings, registry: SchemaRegistryClient, watcher: Watcher
) -> None:
    run = uuid.uuid4().hex[:6]
    made_up = f"made-up-{run}"
    charged = PaymentProcessed(
        event_id=uuid.uuid4(),
        order_id=made_up,
        occurred_at=utc_now(),
        amount=Money(amount_minor=100, currency="EUR"),
        charges=[],
    )
    poison = {
        made_up: RecordCodec(registry, PAYMENTS_EVENTS.name).encode(charged),
        f"garbled-{run}": b"not a record",
    }
    producer = Producer(settings.kafka_config())
    for key, value in poison.items():
        producer.produce(ORDERS_COMMANDS.name, key=key.encode(), value=value)
    producer.flush(30)
    before = tee_order(f"track-after-poison-{run}")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    produce_orders(settings, [before], progress=False)

    def letters(seen: list[Any]) -> dict[str, str]:
        return {
            s.key: s.headers["dlq.error.message"].decode()
            for s in seen
            if s.topic == COMMANDS_DLQ and s.headers["dlq.processor"] == TRACKER.encode()
        }

    watcher.wait_until(lambda seen: letters(seen).keys() >= poison.keys(), what="the tracker's dead letters")
    wait_for(watcher, before.order_id, "completed", "an order placed after the poison")

    reasons = letters(watcher.seen)
    assert "oms.payments.PaymentProcessed is not a record type of oms.orders.commands" in reasons[made_up]
    assert "not Confluent-framed Avro" in reasons[f"garbled-{run}"]
    assert latest(watcher, made_up) is None, "no timeline for an order that does not exist"
