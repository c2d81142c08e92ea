"""Chaos on the real broker: orders with cancellations while random processors are killed with SIGKILL every
few seconds and the broker itself is killed and restarted once; afterwards every order reconciles exactly
(one outcome, money, stock, fulfillment, notifications; ops/reconciliation.py). Once with every processor
alone, the registry killed and restarted too and a processor frozen past its session timeout; once with the
order-keyed ones run together as one engine. `make chaos` runs the full scale, a full disk included."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ops.chaos import ChaosPlan, ChaosResult, Fleet, run_chaos
from topology.settings import Settings

# A registry restart alone takes most of a minute of the machine's two cores; the default 300 s is for tests
# that find the platform running.
pytestmark = pytest.mark.timeout(600)

PLAN = ChaosPlan(orders=300, kills=8, kill_every_s=3.0, cancel_share=0.25, seed=11, outcome_timeout_s=300)
WITH_FAULTS = replace(PLAN, registry_restarts=1, freeze_s=15.0)


def test_orders_with_cancellations_reconcile_exactly_after_kill_9_of_processors_broker_and_registry(
    settings: Settings, fleet: Fleet
) -> None:
    result = reconciles_exactly_through_chaos(settings, fleet, WITH_FAULTS)

    assert any("kill -9 registry" in event for event in result.events), "the registry was killed once"
    assert any("kill -STOP" in event for event in result.events), "a processor was frozen"
    assert any("kill -CONT" in event or "killed while frozen" in event for event in result.events), "and thawed"
    assert result.quiet_after_fault_s is not None, result.report()


def test_orders_reconcile_exactly_through_kill_9_when_the_order_keyed_processors_run_together(
    settings: Settings, colocated_fleet: Fleet
) -> None:
    assert set(colocated_fleet.processes) == {"orders", "stock", "timers", "fleet"}
    reconciles_exactly_through_chaos(settings, colocated_fleet, PLAN)
    assert colocated_fleet.killed["orders"] > 0


def reconciles_exactly_through_chaos(settings: Settings, fleet: Fleet, plan: ChaosPlan) -> ChaosResult:
    result = run_chaos(settings, fleet, plan, echo=print)

    print(result.report())
    assert any("kill -9 broker" in event for event in result.events), "the broker was killed once"
    assert sum(fleet.killed.values()) == plan.kills
    assert result.unfinished == 0, result.report()
    assert result.reconciliation.ok, result.report()
    counts = result.reconciliation.counts
    assert counts["orders"] == plan.orders and counts["outcome cancelled"] > 0 and counts["outcome delivered"] > 0
    assert result.undecodable == []
    return result
