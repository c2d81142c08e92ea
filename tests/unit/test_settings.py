from __future__ import annotations

import pytest

from topology.settings import KAFKA_CLIENT_LOGGER, Settings


def test_local_defaults_reach_the_local_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMS_KAFKA_BOOTSTRAP_SERVERS", "OMS_SCHEMA_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert settings.kafka_config() == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
        "logger": KAFKA_CLIENT_LOGGER,
    }
    assert settings.schema_registry_config() == {
        "url": "http://127.0.0.1:8081/apis/ccompat/v7",
        "timeout": 5.0,
        "max.retries": 1,
    }


def test_secured_cluster_settings_come_from_oms_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_KAFKA_BOOTSTRAP_SERVERS", "broker-1:9093,broker-2:9093")
    monkeypatch.setenv("OMS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("OMS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("OMS_KAFKA_SASL_USERNAME", "oms")
    monkeypatch.setenv("OMS_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("OMS_KAFKA_SSL_CA_LOCATION", "/etc/ssl/ca.pem")
    monkeypatch.setenv("OMS_SCHEMA_REGISTRY_URL", "https://registry:8081")
    monkeypatch.setenv("OMS_SCHEMA_REGISTRY_USERNAME", "reader")
    monkeypatch.setenv("OMS_SCHEMA_REGISTRY_PASSWORD", "pw")

    settings = Settings()

    assert settings.kafka_config() == {
        "bootstrap.servers": "broker-1:9093,broker-2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "oms",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ssl/ca.pem",
        "logger": KAFKA_CLIENT_LOGGER,
    }
    assert settings.schema_registry_config() == {
        "url": "https://registry:8081",
        "timeout": 5.0,
        "max.retries": 1,
        "basic.auth.user.info": "reader:pw",
    }
    assert "s3cret" not in repr(settings), "secrets must not leak into logs"


def test_unknown_security_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_KAFKA_SECURITY_PROTOCOL", "SASL_PLAIN")

    with pytest.raises(ValueError, match="kafka_security_protocol"):
        Settings()


@pytest.mark.parametrize(("replication_factor", "min_insync_replicas"), [(1, 1), (2, 1), (3, 2), (5, 4)])
def test_min_insync_replicas_unset_leave_one_broker_to_spare(
    monkeypatch: pytest.MonkeyPatch, replication_factor: int, min_insync_replicas: int
) -> None:
    monkeypatch.delenv("OMS_MIN_INSYNC_REPLICAS", raising=False)
    monkeypatch.setenv("OMS_REPLICATION_FACTOR", str(replication_factor))

    assert Settings().min_insync_replicas == min_insync_replicas


def test_min_insync_replicas_given_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("OMS_MIN_INSYNC_REPLICAS", "3")

    assert Settings().min_insync_replicas == 3


def test_min_insync_replicas_above_the_replication_factor_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_REPLICATION_FACTOR", "1")
    monkeypatch.setenv("OMS_MIN_INSYNC_REPLICAS", "2")

    with pytest.raises(ValueError, match="min_insync_replicas"):
        Settings()
