"""Consumer lag of every `oms.` group: committed offsets against the partitions' ends, from the admin API."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

GROUP_PREFIX = "oms."
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    lag: int


def consumer_lag(admin: AdminClient, prefix: str = GROUP_PREFIX) -> list[PartitionLag]:
    """Per group and partition it has committed: the end offset less the committed one."""
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result()
    groups = sorted(group.group_id for group in listed.valid if group.group_id.startswith(prefix))
    committed: dict[str, list[TopicPartition]] = {}
    for group in groups:  # the API takes one group per request
        future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
        committed[group] = [tp for tp in future.result().topic_partitions if tp.offset >= 0]
    wanted = {(tp.topic, tp.partition) for partitions in committed.values() for tp in partitions}
    if not wanted:
        return []
    ends_futures = admin.list_offsets(
        {TopicPartition(topic, partition): OffsetSpec.latest() for topic, partition in wanted},
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=TIMEOUT_S,
    )
    ends = {(tp.topic, tp.partition): future.result().offset for tp, future in ends_futures.items()}
    return [
        PartitionLag(group, tp.topic, tp.partition, max(0, ends[(tp.topic, tp.partition)] - tp.offset))
        for group, partitions in committed.items()
        for tp in partitions
    ]
