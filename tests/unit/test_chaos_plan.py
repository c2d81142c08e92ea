"""When a chaos run's faults come, between its processor kills."""

from __future__ import annotations

from ops.chaos import ChaosPlan, Fault


def test_the_faults_of_the_issue_s_scale_are_spread_over_the_kills_a_broker_restart_first() -> None:
    plan = ChaosPlan(kills=50, broker_restarts=3, registry_restarts=1, freeze_s=45, disk_full_s=30)

    schedule = plan.faults()

    assert schedule == {
        7: [Fault.BROKER],
        14: [Fault.FREEZE],
        21: [Fault.REGISTRY],
        29: [Fault.DISK],
        36: [Fault.BROKER],
        43: [Fault.BROKER],
    }


def test_a_plan_without_faults_only_kills() -> None:
    assert ChaosPlan(kills=10, broker_restarts=0).faults() == {}


def test_with_few_kills_faults_share_a_turn_and_none_is_lost() -> None:
    plan = ChaosPlan(kills=2, broker_restarts=2, registry_restarts=1, freeze_s=5)

    faults = [fault for turn in plan.faults().values() for fault in turn]

    assert sorted(faults) == sorted([Fault.BROKER, Fault.BROKER, Fault.REGISTRY, Fault.FREEZE])
    assert set(plan.faults()) <= {1, 2}
