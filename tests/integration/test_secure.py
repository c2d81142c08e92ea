"""The secure platform end to end: a SASL_SSL broker (SCRAM-SHA-512) and an HTTPS registry of the test's own,
on spare ports in a temporary run folder, and one order taken by the processors over them to its delivery.

The shared plaintext broker and registry are not touched. The servers this starts are stopped at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pydantic import SecretStr

from ops import platform
from ops.localsecurity import client_environment, client_settings
from ops.produce import produce_orders
from processors.services import SERVICES
from schemas.models import InventoryReserved, OrderCreated, OrderDelivered, PaymentProcessed, RoutingSlipCompleted
from schemas.registry import declared_subjects, register, registry_client
from tests.factories import order_of
from tests.integration.harness import Processes, Watcher
from tests.integration.test_choreography import set_stock_and_wait
from topology.admin import admin_client, apply, wait_for_group
from topology.settings import Settings
from topology.topics import (
    ALL_TOPICS,
    INVENTORY_EVENTS,
    INVENTORY_STOCK,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
)

# Starting a broker and a registry takes a minute of the machine's two cores; the default 300 s is for tests
# that find them running.
pytestmark = pytest.mark.timeout(600)

BROKER_LOCK = Path("/tmp/oms-broker.lock")
# What takes an order from PlaceOrder to OrderDelivered: no saga, no notifications, no timers.
PROCESSORS = ("intake", "payments", "inventory", "stock", "fulfillment", "activities")


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A secure broker and registry started for this module; the settings of a client of them (user `oms`)."""
    run_dir = tmp_path_factory.mktemp("secure-run")
    kafka_port, controller_port, registry_port = _spare_ports()
    settings = Settings(
        run_dir=run_dir,
        # The jars `oms up` downloaded already, whatever OMS_RUN_DIR says.
        cache_dir=Settings().cache_dir,
        local_security="sasl_ssl",
        local_secure_kafka_port=kafka_port,
        local_secure_controller_port=controller_port,
        local_secure_registry_port=registry_port,
    )
    with _broker_lock():
        try:
            platform.up(settings)
            yield client_settings(settings)
        finally:
            platform.down(settings)


@pytest.fixture(scope="module")
def processes(secure: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """The processors an order needs to be delivered, as `oms run` processes configured by the environment
    `oms up --secure` prints, keeping their state in the test's run folder."""
    running = Processes(tmp_path_factory.mktemp("secure-logs"))
    with pytest.MonkeyPatch.context() as environment:
        for name, value in client_environment(secure).items():
            environment.setenv(name, value)
        environment.setenv("OMS_RUN_DIR", str(secure.run_dir))
        environment.setenv("OMS_METRICS_PORT", "0")  # the shared pipeline's processes serve the usual ports
        try:
            for name in PROCESSORS:
                running.start(name)
            yield running
        finally:
            running.stop_all()


def test_an_order_is_delivered_over_sasl_ssl_and_https(secure: Settings, processes: Processes) -> None:
    assert secure.kafka_security_protocol == "SASL_SSL" and secure.schema_registry_url.startswith("https://")
    registry = registry_client(secure)
    apply(secure, ALL_TOPICS)
    register(registry, declared_subjects())
    admin = admin_client(secure)
    for name in PROCESSORS:
        wait_for_group(admin, SERVICES[name].group, members=1)
    watched = [ORDERS_EVENTS, PAYMENTS_EVENTS, INVENTORY_EVENTS, INVENTORY_STOCK, ROUTING_SLIPS_EVENTS]
    watcher = Watcher(secure, registry, [topic.name for topic in watched])
    try:
        placed = order_of("secure", {"SKU-TEE-01": 2})
        set_stock_and_wait(secure, watcher, {"SKU-TEE-01": 5})
        produce_orders(secure, [placed], progress=False)
        watcher.wait_until(
            lambda seen: any(isinstance(s.record, OrderDelivered) and s.key == placed.order_id for s in seen),
            timeout_s=120,
            what="the order delivered",
        )
    finally:
        watcher.close()

    kinds = [type(seen.record) for seen in watcher.for_order(placed.order_id)]
    for step in (OrderCreated, PaymentProcessed, InventoryReserved, RoutingSlipCompleted, OrderDelivered):
        assert kinds.count(step) == 1, (step.__name__, kinds)


def test_the_secure_platform_refuses_who_has_no_secret(secure: Settings) -> None:
    """Without the password, or without TLS, neither server answers; the registry takes no request, read or
    write, without the user's password."""
    wrong_password = secure.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    plaintext = secure.model_copy(update={"kafka_security_protocol": "PLAINTEXT"})
    for refused in (wrong_password, plaintext):
        with pytest.raises(KafkaException):
            AdminClient({**refused.kafka_config(), "log_level": 0}).list_topics(timeout=5)
    assert AdminClient(secure.kafka_config()).list_topics(timeout=10).topics

    http_url = secure.schema_registry_url.replace("https://", "http://")
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"{http_url}/subjects", timeout=5)

    anonymous = secure.model_copy(update={"schema_registry_username": None, "schema_registry_password": None})
    wrong_user = secure.model_copy(update={"schema_registry_password": SecretStr("not-the-password")})
    for refused in (anonymous, wrong_user):
        client = SchemaRegistryClient({**refused.schema_registry_config(), "max.retries": 0})
        with pytest.raises(SchemaRegistryError) as refusal:
            client.set_compatibility(level="NONE")
        assert refusal.value.http_status_code == 401
        with pytest.raises(SchemaRegistryError) as refusal:
            client.get_subjects()
        assert refusal.value.http_status_code == 401
    assert registry_client(secure).get_compatibility() == "FULL_TRANSITIVE"


def _spare_ports() -> tuple[int, int, int]:
    """Three free ports; the registry's next one is free too (its management interface)."""
    while True:
        ports = [_free_port() for _ in range(3)]
        management = ports[2] + 1
        if len(set(ports)) == 3 and management not in ports and _is_free(management):
            return ports[0], ports[1], ports[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def _broker_lock() -> Iterator[None]:
    """The machine's broker lock, for the CPU this takes; not taken again when a parent (`flock`) holds it."""
    BROKER_LOCK.touch(exist_ok=True)
    if _held_by_an_ancestor(BROKER_LOCK):
        yield
        return
    with BROKER_LOCK.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _held_by_an_ancestor(path: Path) -> bool:
    inode = path.stat().st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" not in fields and len(fields) > 5 and fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            holders.add(int(fields[4]))
    pid = os.getpid()
    while pid > 1:
        if pid in holders:
            return True
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return False
