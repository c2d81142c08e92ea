"""Chaos on the real broker: orders with cancellations while random processors are killed with SIGKILL every
few seconds and the broker itself is killed and restarted once; afterwards every order reconciles exactly
(one outcome, money, stock, fulfillment, notifications; ops/reconciliation.py). Once with every processor
alone, once with the order-keyed ones run together as one engine."""

from __future__ import annotations

from ops.chaos import ChaosPlan, Fleet, run_chaos
from topology.settings import Settings

PLAN = ChaosPlan(orders=300, kills=8, kill_every_s=3.0, cancel_share=0.25, seed=11, outcome_timeout_s=300)


def test_orders_with_cancellations_reconcile_exactly_after_kill_9_of_processors_and_of_the_broker(
    settings: Settings, fleet: Fleet
) -> None:
    reconciles_exactly_through_chaos(settings, fleet)


def test_orders_reconcile_exactly_through_kill_9_when_the_order_keyed_processors_run_together(
    settings: Settings, colocated_fleet: Fleet
) -> None:
    assert set(colocated_fleet.processes) == {"orders", "stock", "timers", "tracker"}
    reconciles_exactly_through_chaos(settings, colocated_fleet)
    assert colocated_fleet.killed["orders"] > 0


def reconciles_exactly_through_chaos(settings: Settings, fleet: Fleet) -> None:
    result = run_chaos(settings, fleet, PLAN, echo=print)

    print(result.report())
    assert any("kill -9 broker" in event for event in result.events), "the broker was killed once"
    assert sum(fleet.killed.values()) == PLAN.kills
    assert result.unfinished == 0, result.report()
    assert result.reconciliation.ok, result.report()
    counts = result.reconciliation.counts
    assert counts["orders"] == PLAN.orders and counts["outcome cancelled"] > 0 and counts["outcome delivered"] > 0
    assert result.undecodable == []
