"""Kafka wiring for the topology: read what the cluster has, create what is missing, never delete."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from topology.drift import ActualTopic, TopicComparison, TopicStatus, compare
from topology.settings import Settings
from topology.topics import TopicSpec

TIMEOUT_S = 30.0
STATIC_MEMBER_SLACK_S = 5.0
"""Beyond a session timeout: how long a stopped processor, a static member, may take to leave its group."""


@dataclass(frozen=True)
class ApplyReport:
    created: list[str]
    drifted: list[TopicComparison]
    in_sync: list[str]


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka_config())


def describe(admin: AdminClient, names: Sequence[str]) -> dict[str, ActualTopic]:
    """Partitions, replication and configuration of those of `names` that exist."""
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    existing = [name for name in names if name in metadata.topics]
    if not existing:
        return {}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in existing]
    configs = {
        resource.name: future.result(timeout=TIMEOUT_S)
        for resource, future in admin.describe_configs(resources).items()
    }
    actual = {}
    for name in existing:
        partitions = metadata.topics[name].partitions
        replicas = len(next(iter(partitions.values())).replicas) if partitions else 0
        config = {key: entry.value for key, entry in configs[name].items() if entry.value is not None}
        actual[name] = ActualTopic(len(partitions), replicas, config)
    return actual


def inspect(settings: Settings, declared: Sequence[TopicSpec]) -> list[TopicComparison]:
    admin = admin_client(settings)
    actual = describe(admin, [topic.name for topic in declared])
    return compare(declared, actual, settings.replication_factor, settings.min_insync_replicas)


def apply(settings: Settings, declared: Sequence[TopicSpec]) -> ApplyReport:
    """Create every missing topic; report drift without changing or deleting anything.

    A topic another client creates between our look and our create (a second `oms topics apply`, a pod
    starting beside us, metadata not yet caught up) is compared as it exists, not reported as created.
    """
    admin = admin_client(settings)
    actual = describe(admin, [topic.name for topic in declared])
    comparisons = compare(declared, actual, settings.replication_factor, settings.min_insync_replicas)
    missing = [c.declared for c in comparisons if c.status is TopicStatus.MISSING]
    raced = _create(admin, settings, missing)
    if raced:
        found = _describe_when_visible(admin, raced)
        comparisons = [
            compare([c.declared], found, settings.replication_factor, settings.min_insync_replicas)[0]
            if c.declared.name in raced
            else c
            for c in comparisons
        ]
    return ApplyReport(
        created=[topic.name for topic in missing if topic.name not in raced],
        drifted=[c for c in comparisons if c.status is TopicStatus.DRIFTED],
        in_sync=[c.declared.name for c in comparisons if c.status is TopicStatus.IN_SYNC],
    )


def _create(admin: AdminClient, settings: Settings, topics: Sequence[TopicSpec]) -> list[str]:
    """Create `topics`; the names of those that turned out to exist already."""
    if not topics:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                topic.name,
                num_partitions=topic.partitions,
                replication_factor=settings.replication_factor,
                config=topic.created_config(settings.min_insync_replicas),
            )
            for topic in topics
        ],
        operation_timeout=TIMEOUT_S,
    )
    raced = []
    for name, future in futures.items():
        try:
            future.result(timeout=TIMEOUT_S)
        except KafkaException as failure:
            if failure.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            raced.append(name)
    return raced


def _describe_when_visible(admin: AdminClient, names: Sequence[str]) -> dict[str, ActualTopic]:
    """`describe`, waiting until the metadata we are served shows every one of `names`."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        found = describe(admin, names)
        if len(found) == len(names) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def wait_for_group(admin: AdminClient, group: str, members: int, timeout_s: float = 90) -> None:
    """Until the consumer group is stable with `members` members, each owning partitions."""
    deadline = time.monotonic() + timeout_s
    state = "unknown"
    while time.monotonic() < deadline:
        description = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
        assigned = [m for m in description.members if m.assignment and m.assignment.topic_partitions]
        state = f"{description.state.name} with {len(description.members)} members, {len(assigned)} assigned"
        if description.state.name == "STABLE" and len(description.members) == members == len(assigned):
            return
        time.sleep(0.25)
    raise TimeoutError(f"consumer group {group} not stable with {members} members within {timeout_s:.0f}s: {state}")


def groups_with_members(admin: AdminClient, groups: list[str]) -> list[str]:
    """Those of `groups` that have members now."""
    described = admin.describe_consumer_groups(groups)
    return [group for group, future in described.items() if future.result(timeout=10).members]


def wait_until_empty(admin: AdminClient, groups: list[str], settings: Settings) -> list[str]:
    """Wait for `groups` to have no members, as long as a stopped processor stays one (processors are static
    members: one that stopped leaves its group after a session timeout, so that a restart takes its partitions
    back at once); those that still have members."""
    deadline = time.monotonic() + settings.session_timeout_ms / 1000 + STATIC_MEMBER_SLACK_S
    while (busy := groups_with_members(admin, groups)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return busy
