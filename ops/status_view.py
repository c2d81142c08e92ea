"""`oms status`: whether the Kafka cluster and schema registry the settings name answer (local or remote),
the local servers `oms up` runs when the settings name those, and the processors `oms run all` keeps."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from ops.reachability import (
    ClientRefused,
    CredentialsRefused,
    NotTheRegistryApi,
    Unreachable,
    require_kafka,
    require_registry,
)
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
    except (ClientRefused, CredentialsRefused) as error:
        return Endpoint("kafka", settings.kafka_bootstrap_servers, False, str(error))
    brokers = len(metadata.brokers)
    detail = f"{brokers} broker{'s' if brokers != 1 else ''}, cluster {metadata.cluster_id}"
    return Endpoint("kafka", settings.kafka_bootstrap_servers, True, detail)


def registry_endpoint(settings: Settings) -> Endpoint:
    try:
        subjects = require_registry(settings)
    except Unreachable as error:
        return Endpoint("registry", settings.schema_registry_url, False, f"did not answer: {error.reason}")
    except (CredentialsRefused, NotTheRegistryApi) as error:
        return Endpoint("registry", settings.schema_registry_url, False, str(error))
    return Endpoint("registry", settings.schema_registry_url, True, f"{subjects} subjects")


def configured_endpoints(settings: Settings) -> list[Endpoint]:
    """Kafka and the registry, asked at once: a report within one time limit when neither answers."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda ask: ask(settings), (kafka_endpoint, registry_endpoint)))


def uses_local_platform(settings: Settings) -> bool:
    """Whether the settings name the servers `oms up` runs (plaintext or, with OMS_LOCAL_SECURITY, secure)."""
    if settings.local_security == "sasl_ssl":
        return True
    local_kafka = settings.kafka_bootstrap_servers == local_bootstrap_servers(settings)
    return local_kafka or settings.schema_registry_url == local_registry_url(settings)


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
