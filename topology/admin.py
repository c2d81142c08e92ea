"""Kafka wiring for the topology: read what the cluster has, create what is missing, never delete."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from topology.drift import ActualTopic, TopicComparison, TopicStatus, compare
from topology.settings import Settings
from topology.topics import TopicSpec

TIMEOUT_S = 30.0


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
    return compare(declared, actual, settings.replication_factor)


def apply(settings: Settings, declared: Sequence[TopicSpec]) -> ApplyReport:
    """Create every missing topic; report drift without changing or deleting anything."""
    admin = admin_client(settings)
    comparisons = compare(declared, describe(admin, [topic.name for topic in declared]), settings.replication_factor)
    missing = [c.declared for c in comparisons if c.status is TopicStatus.MISSING]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    topic.name,
                    num_partitions=topic.partitions,
                    replication_factor=settings.replication_factor,
                    config=topic.config(),
                )
                for topic in missing
            ],
            operation_timeout=TIMEOUT_S,
        )
        for future in futures.values():
            future.result(timeout=TIMEOUT_S)
    return ApplyReport(
        created=[topic.name for topic in missing],
        drifted=[c for c in comparisons if c.status is TopicStatus.DRIFTED],
        in_sync=[c.declared.name for c in comparisons if c.status is TopicStatus.IN_SYNC],
    )


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
