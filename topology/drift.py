"""Compare declared topics with what the cluster has: a pure function, so the rules are easy to test."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from topology.topics import TopicSpec


@dataclass(frozen=True)
class ActualTopic:
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


class TopicStatus(StrEnum):
    MISSING = "missing"
    IN_SYNC = "in sync"
    DRIFTED = "drifted"


@dataclass(frozen=True)
class TopicComparison:
    declared: TopicSpec
    actual: ActualTopic | None
    status: TopicStatus
    differences: tuple[str, ...] = ()


def compare(
    declared: Iterable[TopicSpec],
    actual: Mapping[str, ActualTopic],
    replication_factor: int,
    min_insync_replicas: int,
) -> list[TopicComparison]:
    """One comparison per declared topic; a topic the cluster has but nobody declared is not our business."""
    return [_compare_one(topic, actual.get(topic.name), replication_factor, min_insync_replicas) for topic in declared]


def _compare_one(
    topic: TopicSpec, actual: ActualTopic | None, replication_factor: int, min_insync_replicas: int
) -> TopicComparison:
    if actual is None:
        return TopicComparison(topic, None, TopicStatus.MISSING)
    differences = []
    if actual.partitions != topic.partitions:
        differences.append(f"partitions: declared {topic.partitions}, actual {actual.partitions}")
    if actual.replication_factor != replication_factor:
        differences.append(f"replication factor: declared {replication_factor}, actual {actual.replication_factor}")
    for key, value in topic.created_config(min_insync_replicas).items():
        if actual.config.get(key) != value:
            differences.append(f"{key}: declared {value}, actual {actual.config.get(key)}")
    status = TopicStatus.DRIFTED if differences else TopicStatus.IN_SYNC
    return TopicComparison(topic, actual, status, tuple(differences))
