"""Where the local platform listens comes from settings; clients follow; a taken port names its setting."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.kafka import kafka_server, plaintext_listeners
from ops.localserver import PlatformError
from ops.registry import plaintext_options, registry_server
from topology.settings import Settings


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield int(listening.getsockname()[1])


def test_clients_reach_the_local_platform_on_the_ports_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMS_KAFKA_BOOTSTRAP_SERVERS", "OMS_SCHEMA_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMS_LOCAL_KAFKA_PORT", "19092")
    monkeypatch.setenv("OMS_LOCAL_REGISTRY_PORT", "18081")

    settings = Settings()

    assert settings.kafka_config()["bootstrap.servers"] == "127.0.0.1:19092"
    assert settings.schema_registry_config()["url"] == "http://127.0.0.1:18081/apis/ccompat/v7"


def test_bootstrap_servers_and_registry_url_given_win_over_the_local_ports() -> None:
    settings = Settings(
        local_kafka_port=19092,
        local_registry_port=18081,
        kafka_bootstrap_servers="broker-1:9092",
        schema_registry_url="https://registry:8081",
    )

    assert (settings.kafka_bootstrap_servers, settings.schema_registry_url) == (
        "broker-1:9092",
        "https://registry:8081",
    )


def test_the_local_broker_and_registry_listen_where_the_settings_say(tmp_path: Path) -> None:
    settings = Settings(
        run_dir=tmp_path, local_kafka_port=19092, local_controller_port=19093, local_registry_port=18081
    )

    listeners = dict(line.split("=", 1) for line in plaintext_listeners(settings).splitlines())
    options = plaintext_options(settings)

    assert listeners["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert listeners["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert listeners["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert (options["quarkus.http.host"], options["quarkus.http.port"]) == ("127.0.0.1", "18081")
    assert options["apicurio.kafkasql.bootstrap.servers"] == "127.0.0.1:19092"
    assert kafka_server(settings).address == "127.0.0.1:19092"
    assert registry_server(settings).address == "127.0.0.1:18081"


def test_the_defaults_stay_the_usual_ports_on_loopback(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path)

    assert kafka_server(settings).ports == [9092, 9093]
    assert registry_server(settings).address == "127.0.0.1:8081"


def test_a_registry_port_taken_names_the_setting_to_change(tmp_path: Path, squatter: int) -> None:
    registry = registry_server(Settings(run_dir=tmp_path, local_registry_port=squatter))

    with pytest.raises(PlatformError, match=f"port {squatter} .* or set OMS_LOCAL_REGISTRY_PORT to a free port"):
        registry.start()
    assert registry.status().note.endswith("(OMS_LOCAL_REGISTRY_PORT chooses another)")


def test_a_controller_port_taken_is_found_before_the_broker_starts(tmp_path: Path, squatter: int) -> None:
    kafka = kafka_server(Settings(run_dir=tmp_path, local_kafka_port=free_port(), local_controller_port=squatter))

    with pytest.raises(PlatformError, match=f"port {squatter} .* or set OMS_LOCAL_CONTROLLER_PORT to a free port"):
        kafka.start()


def test_the_secure_platform_names_its_own_port_settings(tmp_path: Path, squatter: int) -> None:
    kafka = kafka_server(Settings(run_dir=tmp_path, local_security="sasl_ssl", local_secure_kafka_port=squatter))

    with pytest.raises(PlatformError, match="or set OMS_LOCAL_SECURE_KAFKA_PORT to a free port"):
        kafka.start()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
