from __future__ import annotations

from topology.drift import ActualTopic, TopicStatus, compare
from topology.topics import (
    ALL_TOPICS,
    FULFILLMENT_ACTIVITIES,
    INVENTORY_STOCK,
    ORDER_PARTITIONS,
    ORDERS_EVENTS,
    WORKFLOW_TOPICS,
    topic_named,
)


def test_topic_names_are_unique() -> None:
    names = [topic.name for topic in ALL_TOPICS]
    assert len(names) == len(set(names))


def test_order_keyed_topics_share_one_partition_count() -> None:
    order_keyed = [topic for topic in WORKFLOW_TOPICS if topic.key == "order_id"]
    assert order_keyed and {topic.partitions for topic in order_keyed} == {ORDER_PARTITIONS}


def test_every_workflow_topic_has_a_dead_letter_topic() -> None:
    for topic in WORKFLOW_TOPICS:
        assert topic_named(f"{topic.name}.dlq") == topic.dead_letter_topic


def test_the_design_contract_topics_are_declared() -> None:
    names = {topic.name for topic in ALL_TOPICS}
    contract = {
        "oms.orders.commands",
        "oms.orders.events",
        "oms.payments.commands",
        "oms.payments.events",
        "oms.inventory.commands",
        "oms.inventory.events",
        "oms.inventory.stock",
        "oms.routing-slips.events",
        "oms.sagas.events",
        "oms.notifications.events",
        *(f"oms.fulfillment.{activity}" for activity in FULFILLMENT_ACTIVITIES),
        *(f"oms.fulfillment.{activity}.compensate" for activity in FULFILLMENT_ACTIVITIES),
    }
    assert contract <= names


def test_compacted_topics_keep_records_forever() -> None:
    assert INVENTORY_STOCK.config() == {"cleanup.policy": "compact"}
    assert ORDERS_EVENTS.config() == {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)}


def test_compare_tells_missing_in_sync_and_drifted() -> None:
    in_sync = ActualTopic(ORDERS_EVENTS.partitions, 1, ORDERS_EVENTS.created_config(1))
    drifted = ActualTopic(2, 1, {**INVENTORY_STOCK.created_config(1), "cleanup.policy": "delete"})

    results = compare(
        [ORDERS_EVENTS, INVENTORY_STOCK, topic_named("oms.timers")],
        {ORDERS_EVENTS.name: in_sync, INVENTORY_STOCK.name: drifted, "undeclared": in_sync},
        replication_factor=1,
        min_insync_replicas=1,
    )

    assert [result.status for result in results] == [
        TopicStatus.IN_SYNC,
        TopicStatus.DRIFTED,
        TopicStatus.MISSING,
    ]
    assert results[1].differences == (
        f"partitions: declared {INVENTORY_STOCK.partitions}, actual 2",
        "cleanup.policy: declared compact, actual delete",
    )


def test_replication_factor_differing_from_settings_is_drift() -> None:
    actual = ActualTopic(ORDERS_EVENTS.partitions, 1, ORDERS_EVENTS.created_config(1))

    [result] = compare([ORDERS_EVENTS], {ORDERS_EVENTS.name: actual}, replication_factor=3, min_insync_replicas=1)

    assert result.status is TopicStatus.DRIFTED
    assert result.differences == ("replication factor: declared 3, actual 1",)


def test_fewer_in_sync_replicas_than_the_settings_ask_is_drift() -> None:
    actual = ActualTopic(ORDERS_EVENTS.partitions, 3, ORDERS_EVENTS.created_config(1))

    [result] = compare([ORDERS_EVENTS], {ORDERS_EVENTS.name: actual}, replication_factor=3, min_insync_replicas=2)

    assert result.differences == ("min.insync.replicas: declared 2, actual 1",)
