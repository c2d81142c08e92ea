"""Integration tests run against the real local Kafka broker and schema registry (`make up`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.chaos import Fleet, platform_lock
from processors.services import SERVICES
from schemas.registry import declared_subjects, register, registry_client
from tests.integration.harness import Processes, fleet_of, restore
from topology.admin import admin_client, apply, wait_for_group
from topology.settings import Settings
from topology.topics import ALL_TOPICS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def admin(settings: Settings) -> AdminClient:
    client = admin_client(settings)
    try:
        client.list_topics(timeout=10)
    except Exception as error:
        pytest.fail(f"Kafka at {settings.kafka_bootstrap_servers} does not answer ({error}); run `make up`")
    return client


@pytest.fixture(scope="session")
def registry(settings: Settings) -> SchemaRegistryClient:
    client = registry_client(settings)
    try:
        client.get_subjects()
    except Exception as error:
        pytest.fail(f"the schema registry at {settings.schema_registry_url} does not answer ({error}); run `make up`")
    return client


@pytest.fixture
def topic(admin: AdminClient, unique_name: Callable[[str], str]) -> Iterator[str]:
    """A fresh one-partition topic, deleted afterwards."""
    name = unique_name("topic")
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


@pytest.fixture
def created_topics(admin: AdminClient) -> Iterator[list[str]]:
    """Names a test appends here are deleted after it."""
    names: list[str] = []
    yield names
    if names:
        for future in admin.delete_topics(names).values():
            future.result(timeout=30)


@pytest.fixture(scope="session")
def declared(settings: Settings, registry: SchemaRegistryClient) -> None:
    """Every declared topic exists and every schema is registered, as `make run` leaves them."""
    apply(settings, ALL_TOPICS)
    register(registry, declared_subjects())


@pytest.fixture(scope="session")
def processes(settings: Settings) -> Iterator[Processes]:
    running = Processes(settings.run_dir / "test-logs")
    yield running
    running.stop_all()


@pytest.fixture
def fleet(settings: Settings, admin: AdminClient, pipeline: Processes) -> Iterator[Fleet]:
    """The session's processors, to kill and revive, and the platform to this test alone (it may stop the
    broker or registry); afterwards everything runs again."""
    fleet = fleet_of(pipeline)
    with platform_lock():
        try:
            yield fleet
        finally:
            restore(settings, admin, fleet)


@pytest.fixture(scope="session")
def pipeline(processes: Processes, admin: AdminClient, declared: None) -> Processes:
    """Every processor running, one instance each, for the whole session."""
    for name in SERVICES:
        processes.start(name)
    for service in SERVICES.values():
        wait_for_group(admin, service.group, members=1)
    return processes
