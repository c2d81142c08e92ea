"""`apply` against a cluster whose metadata lags a topic someone else just created."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from topology import admin as topology_admin
from topology.admin import apply
from topology.settings import Settings
from topology.topics import ORDERS_EVENTS


def done(value: Any = None, failure: BaseException | None = None) -> Future[Any]:
    future: Future[Any] = Future()
    if failure is None:
        future.set_result(value)
    else:
        future.set_exception(failure)
    return future


class LaggingAdmin:
    """A topic with two partitions exists, but the first metadata we are served does not show it yet."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.looks = 0

    def list_topics(self, timeout: float) -> Any:
        self.looks += 1
        if self.looks == 1:
            return SimpleNamespace(topics={})
        partition = SimpleNamespace(replicas=[1])
        return SimpleNamespace(topics={self.name: SimpleNamespace(partitions={0: partition, 1: partition})})

    def describe_configs(self, resources: list[Any]) -> dict[Any, Future[Any]]:
        return {resource: done({}) for resource in resources}

    def create_topics(self, topics: list[Any], operation_timeout: float) -> dict[str, Future[Any]]:
        exists = KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS))
        return {topic.topic: done(failure=exists) for topic in topics}


def test_a_topic_created_by_another_client_meanwhile_is_compared_not_reported_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = LaggingAdmin(ORDERS_EVENTS.name)
    monkeypatch.setattr(topology_admin, "admin_client", lambda settings: cluster)

    report = apply(Settings(), [ORDERS_EVENTS])

    assert report.created == []
    [drift] = report.drifted
    assert f"partitions: declared {ORDERS_EVENTS.partitions}, actual 2" in drift.differences


def test_other_create_failures_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    class RefusingAdmin(LaggingAdmin):
        def create_topics(self, topics: list[Any], operation_timeout: float) -> dict[str, Future[Any]]:
            refused = KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
            return {topic.topic: done(failure=refused) for topic in topics}

    monkeypatch.setattr(topology_admin, "admin_client", lambda settings: RefusingAdmin(ORDERS_EVENTS.name))

    with pytest.raises(KafkaException):
        apply(Settings(), [ORDERS_EVENTS])


class EmptyCluster(LaggingAdmin):
    """No topic exists; what is created is kept for the test to read."""

    def __init__(self) -> None:
        super().__init__("")
        self.created: list[Any] = []

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(topics={})

    def create_topics(self, topics: list[Any], operation_timeout: float) -> dict[str, Future[Any]]:
        self.created.extend(topics)
        return {topic.topic: done() for topic in topics}


def test_topics_are_created_with_the_replication_and_min_insync_replicas_of_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = EmptyCluster()
    monkeypatch.setattr(topology_admin, "admin_client", lambda settings: cluster)

    apply(Settings(replication_factor=3), [ORDERS_EVENTS])

    [created] = cluster.created
    assert created.replication_factor == 3
    assert created.config["min.insync.replicas"] == "2"
