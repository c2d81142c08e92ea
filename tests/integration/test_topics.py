"""`oms topics apply` creates what is declared, reports drift and never deletes or changes anything."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from topology.admin import apply, describe
from topology.settings import Settings
from topology.topics import ALL_TOPICS, INVENTORY_STOCK, ORDERS_EVENTS, TopicSpec


def oms(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def renamed(topic: TopicSpec, prefix: str) -> TopicSpec:
    return dataclasses.replace(topic, name=f"{prefix}.{topic.name}")


def test_apply_twice_creates_then_changes_nothing(
    settings: Settings, admin: AdminClient, unique_name: Callable[[str], str], created_topics: list[str]
) -> None:
    prefix = unique_name("apply")
    declared = [renamed(ORDERS_EVENTS, prefix), renamed(INVENTORY_STOCK, prefix)]
    created_topics.extend(topic.name for topic in declared)

    first = apply(settings, declared)
    second = apply(settings, declared)

    assert sorted(first.created) == sorted(topic.name for topic in declared)
    assert second.created == [] and second.drifted == []
    assert sorted(second.in_sync) == sorted(first.created)
    stock = describe(admin, [declared[1].name])[declared[1].name]
    assert stock.config["cleanup.policy"] == "compact"
    assert stock.config["min.insync.replicas"] == str(settings.min_insync_replicas)
    assert stock.partitions == INVENTORY_STOCK.partitions


def test_drift_is_reported_and_left_alone(
    settings: Settings, admin: AdminClient, unique_name: Callable[[str], str], created_topics: list[str]
) -> None:
    declared = renamed(ORDERS_EVENTS, unique_name("drift"))
    created_topics.append(declared.name)
    admin.create_topics([NewTopic(declared.name, 2, 1)])[declared.name].result(timeout=30)

    report = apply(settings, [declared])

    assert report.created == []
    [drift] = report.drifted
    assert f"partitions: declared {declared.partitions}, actual 2" in drift.differences
    assert describe(admin, [declared.name])[declared.name].partitions == 2


def test_cli_apply_is_idempotent_and_kcat_lists_every_declared_topic(settings: Settings) -> None:
    oms("topics", "apply")
    second = oms("topics", "apply")

    assert second.returncode == 0, second.stderr
    assert "0 created" in second.stdout and "0 drifted" in second.stdout
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is missing: `make setup` installs it (Debian package kcat)")
    listing = subprocess.run(
        [kcat, "-b", settings.kafka_bootstrap_servers, "-L"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    listed = {line.split('"')[1] for line in listing.splitlines() if line.strip().startswith('topic "')}
    assert {topic.name for topic in ALL_TOPICS} <= listed
