"""How soon an operator's command learns that Kafka will not answer (ops/reachability.py): at once when the
connection is refused, and within its time limit when the broker takes the connection and never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from ops import reachability
from ops.reachability import CredentialsRefused, Unreachable, missing_files, require_kafka
from topology.settings import Settings


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A loopback port whose connections the kernel completes and nobody ever answers."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        yield f"127.0.0.1:{listening.getsockname()[1]}"


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def test_a_refused_connection_is_reported_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(Unreachable, match="Connection refused") as raised:
        require_kafka(Settings(kafka_bootstrap_servers=closed_port()))

    assert time.monotonic() - started < 2
    assert "within" not in str(raised.value), "it knew, it did not wait"


def test_a_broker_that_never_answers_is_given_up_on_after_the_time_limit(silent_broker: str) -> None:
    started = time.monotonic()
    with pytest.raises(Unreachable, match=r"did not answer within 1 s"):
        require_kafka(Settings(kafka_bootstrap_servers=silent_broker), timeout_s=1.0)

    assert 1.0 <= time.monotonic() - started < 2.5


def test_missing_files_name_the_setting_and_ignore_librdkafkas_probe_value(tmp_path: Path) -> None:
    present = tmp_path / "ca.pem"
    present.write_text("")
    settings = Settings(
        kafka_ssl_ca_location=present,
        schema_registry_ssl_ca_location=tmp_path / "registry-ca.pem",
        kafka_properties={"ssl.ca.location": "probe", "ssl.crl.location": str(tmp_path / "crl.pem")},
    )

    assert missing_files(settings) == [
        ("OMS_SCHEMA_REGISTRY_SSL_CA_LOCATION", tmp_path / "registry-ca.pem"),
        ("kafka property ssl.crl.location", tmp_path / "crl.pem"),
    ]


class RefusingBroker:
    """An AdminClient whose broker answers a SASL handshake with "authentication failed"."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._error_cb = config["error_cb"]

    def list_topics(self, timeout: float) -> None:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))

    def poll(self, timeout: float) -> int:
        self._error_cb(KafkaError(KafkaError.SASL_AUTHENTICATION_FAILED, "SASL authentication error: bad password"))
        return 1


def test_credentials_the_broker_refuses_are_told_apart_from_a_broker_that_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reachability, "AdminClient", RefusingBroker)

    with pytest.raises(CredentialsRefused, match="refused the credentials: SASL authentication error: bad password"):
        require_kafka(Settings(kafka_bootstrap_servers="b-1:9093"))
