"""Integration tests run against the real local Kafka broker and schema registry (`make up`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.chaos import Fleet, platform_lock
from ops.handover import take_over
from processors.runtime.colocated import CHAIN_PROCESSOR
from processors.services import CHAIN, ENGINE, SERVICES, services_run
from schemas.registry import declared_subjects, register, registry_client
from tests.integration.harness import Processes, fleet_of, restore
from topology.admin import admin_client, apply, wait_for_group
from topology.settings import Settings
from topology.topics import ALL_TOPICS

ALONE = services_run(colocated=False)


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
def pipeline(processes: Processes, admin: AdminClient, declared: None, settings: Settings) -> Processes:
    """Every processor running alone, one instance each, for the whole session."""
    take_over(settings, CHAIN, CHAIN_PROCESSOR, colocated=False)
    for name in ALONE:
        processes.start(name)
    for name in ALONE:
        wait_for_group(admin, SERVICES[name].group, members=1)
    return processes


@pytest.fixture
def colocated_fleet(settings: Settings, admin: AdminClient, pipeline: Processes) -> Iterator[Fleet]:
    """The order-keyed processors run together (`oms run orders`) instead of alone, for one test, with the
    platform to it alone; afterwards each runs alone again, taking over where the engine stopped."""
    members = [spec.name for spec in CHAIN.members]
    with platform_lock():
        for name in members:
            pipeline.stop(name)
        take_over(settings, CHAIN, CHAIN_PROCESSOR, colocated=True)
        pipeline.start(ENGINE)
        wait_for_group(admin, CHAIN_PROCESSOR, members=1)
        fleet = fleet_of(pipeline)
        try:
            yield fleet
        finally:
            restore(settings, admin, fleet)
            pipeline.stop(ENGINE)
            take_over(settings, CHAIN, CHAIN_PROCESSOR, colocated=False)
            for name in members:
                pipeline.start(name)
            for spec in CHAIN.members:
                wait_for_group(admin, spec.group, members=1)
