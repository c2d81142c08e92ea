"""`oms status`: whether the Kafka cluster and schema registry the settings name answer (local or remote),
the local servers `oms up` runs when the settings name those, and the processors `oms run all` keeps."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ops.reachability import REACH_TIMEOUT_S, ClientRefused, Unreachable, require_kafka
from topology.settings import Settings, local_bootstrap_servers, local_registry_url


@dataclass(frozen=True)
class Endpoint:
    """Kafka or the registry as the settings name them, and what it answered."""

    name: str
    address: str
    answering: bool
    detail: str


def kafka_endpoint(settings: Settings) -> Endpoint:
    try:
        metadata = require_kafka(settings)
    except Unreachable as error:
        return Endpoint("kafka", settings.kafka_bootstrap_servers, False, f"did not answer: {error.reason}")
    except ClientRefused as error:
        return Endpoint("kafka", settings.kafka_bootstrap_servers, False, f"client refused: {error}")
    brokers = len(metadata.brokers)
    detail = f"{brokers} broker{'s' if brokers != 1 else ''}, cluster {metadata.cluster_id}"
    return Endpoint("kafka", settings.kafka_bootstrap_servers, True, detail)


def registry_endpoint(settings: Settings) -> Endpoint:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    # Asked once, briefly: a status report waits for no retry.
    config = {**settings.schema_registry_config(), "timeout": REACH_TIMEOUT_S, "max.retries": 0}
    try:
        subjects = SchemaRegistryClient(config).get_subjects()
    except Exception as error:
        reason = (str(error) or type(error).__name__).splitlines()[0][:200]
        return Endpoint("registry", settings.schema_registry_url, False, f"did not answer: {reason}")
    return Endpoint("registry", settings.schema_registry_url, True, f"{len(subjects)} subjects")


def uses_local_platform(settings: Settings) -> bool:
    """Whether the settings name the servers `oms up` runs (plaintext or, with OMS_LOCAL_SECURITY, secure)."""
    if settings.local_security == "sasl_ssl":
        return True
    return settings.kafka_bootstrap_servers == local_bootstrap_servers(
        settings
    ) or settings.schema_registry_url == local_registry_url(settings)


def endpoint_line(endpoint: Endpoint) -> str:
    state = "up" if endpoint.answering else "down"
    return f"{endpoint.name:<9} {state:<9} {endpoint.address}  ({endpoint.detail})"


def status_json(
    endpoints: list[Endpoint], local: list[dict[str, Any]], processors: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "configured": [asdict(endpoint) for endpoint in endpoints],
        "local_servers": local,
        "supervisors": processors,
    }
