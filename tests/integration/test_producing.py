"""docs/producing.md's example producers, Python and Java, run as a third party would run them: each places an
order and follows it on `oms.orders.events` alone to its outcome, delivered or failed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.producing import EXAMPLE
from schemas.models import OrderCreated, OrderDelivered
from tests.integration.harness import Processes, Watcher
from tests.integration.test_choreography import set_stock_and_wait
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ORDERS_EVENTS

JAVA_EXAMPLE = EXAMPLE.parent / "java"


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [ORDERS_EVENTS.name, INVENTORY_STOCK.name])
    yield watching
    watching.close()


@pytest.fixture(scope="module")
def java_example() -> list[str]:
    """The Java example, built with the machine's Maven, as the command that runs it."""
    mvn, java = shutil.which("mvn"), shutil.which("java")
    assert mvn and java, "the Java example needs Maven and a JDK (make setup installs both)"
    built = subprocess.run(
        [mvn, "-q", "-B", "-f", str(JAVA_EXAMPLE / "pom.xml"), "package", "-DskipTests"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return [java, "-jar", str(JAVA_EXAMPLE / "target" / "place-order.jar")]


def python_example() -> list[str]:
    return [sys.executable, str(EXAMPLE)]


def place_and_follow(command: list[str], settings: Settings, order_id: str, token: str) -> list[str]:
    """Runs an example to the end of its order: the lines it printed."""
    arguments = [
        *(["--order-id", order_id] if command[0] != sys.executable else [order_id]),
        "--token",
        token,
        "--bootstrap",
        settings.kafka_bootstrap_servers,
        "--registry",
        settings.schema_registry_url,
        "--timeout-s",
        "150",
    ]
    ran = subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=240)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout.splitlines()


def outcome_of(lines: list[str]) -> str:
    outcomes = [line.split()[1] for line in lines if line.startswith("outcome ")]
    assert len(outcomes) == 1, lines
    return outcomes[0]


@pytest.mark.parametrize("language", ["python", "java"])
def test_an_example_producer_places_an_order_and_follows_it_to_delivery(
    language: str, settings: Settings, watcher: Watcher, request: pytest.FixtureRequest
) -> None:
    command = python_example() if language == "python" else request.getfixturevalue("java_example")
    set_stock_and_wait(settings, watcher, {"SKU-MUG-01": 50, "SKU-TEA-01": 50})
    order_id = f"ext-{language}-{uuid.uuid4().hex[:10]}"

    lines = place_and_follow(command, settings, order_id, "tok_ok_visa")

    assert lines[0] == f"placed {order_id}"
    assert "event oms.OrderCreated" in lines
    assert "event oms.OrderShipped" in lines
    assert outcome_of(lines) == "oms.OrderDelivered"
    # What the example read is what every reader sees: once, committed.
    watcher.wait_until(
        lambda seen: any(isinstance(s.record, OrderDelivered) for s in watcher.for_order(order_id)),
        timeout_s=30,
        what=f"{order_id} delivered",
    )
    assert len([s for s in watcher.for_order(order_id) if isinstance(s.record, OrderCreated)]) == 1


@pytest.mark.parametrize("language", ["python", "java"])
def test_an_example_producer_follows_a_declined_card_to_its_failure(
    language: str, settings: Settings, watcher: Watcher, request: pytest.FixtureRequest
) -> None:
    command = python_example() if language == "python" else request.getfixturevalue("java_example")
    set_stock_and_wait(settings, watcher, {"SKU-MUG-01": 50, "SKU-TEA-01": 50})
    order_id = f"ext-{language}-{uuid.uuid4().hex[:10]}"

    lines = place_and_follow(command, settings, order_id, "tok_declined_visa")

    assert "event oms.OrderCreated" in lines
    assert outcome_of(lines) == "oms.OrderFailed"
    assert "card declined" in next(line for line in lines if line.startswith("outcome "))
