"""Before an operator's command reads or writes: the files its settings name exist, and Kafka and the schema
registry answer, within seconds, so that a wrong address, a server that is down or credentials refused end the
command at once with what to fix, rather than after the clients' own retries."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from topology.settings import Settings

KAFKA, REGISTRY = "kafka", "registry"

REACH_TIMEOUT_S = 4.0  # with the command's start, an answer or a failure within 5 s
_POLL_S = 0.25

# What librdkafka reports as soon as it knows: no broker took the connection, no name resolved, the TLS or
# SASL handshake failed. Waiting on would only repeat it.
_DECISIVE = frozenset(
    {
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._AUTHENTICATION,
        KafkaError._SSL,
        KafkaError.SASL_AUTHENTICATION_FAILED,
    }
)
_CREDENTIALS = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})
# librdkafka's value of `ssl.ca.location` that asks it to find the system's CAs: no file of ours.
_NOT_A_PATH = frozenset({"probe"})


class MissingFile(Exception):
    """A file a setting names is not there."""


class Unreachable(Exception):
    """Kafka or the registry (`server`) did not answer at `address`, for `reason` (its client's last word)."""

    def __init__(self, server: str, address: str, reason: str, waited_s: float | None = None) -> None:
        self.address, self.reason = address, reason
        within = f" within {waited_s:g} s" if waited_s is not None else ""
        super().__init__(f"{server} ({address}) did not answer{within}: {reason}")


class CredentialsRefused(Exception):
    """Kafka or the registry answered, and refused who we said we were."""


class NotTheRegistryApi(Exception):
    """Something answered at the registry's URL, but not the Confluent-compatible API."""


class ClientRefused(Exception):
    """librdkafka refused the client configuration itself."""


def missing_files(settings: Settings) -> list[tuple[str, Path]]:
    """(where it is set, path) for every file setting, or `-X ...location` property, that names nothing."""
    named: list[tuple[str, Path]] = [
        (f"OMS_{field.upper()}", getattr(settings, field))
        for field in Settings.model_fields
        if field.endswith("_location") and getattr(settings, field) is not None
    ]
    named += [
        (f"kafka property {key}", Path(value))
        for key, value in settings.kafka_properties.items()
        if key.endswith(".location") and value not in _NOT_A_PATH
    ]
    return [(where, path) for where, path in named if not path.exists()]


def require_files(settings: Settings) -> None:
    missing = missing_files(settings)
    if missing:
        raise MissingFile("; ".join(f"{where}: no file {path}" for where, path in missing))


def require(settings: Settings, needs: tuple[str, ...]) -> None:
    """What a command that `needs` Kafka, the registry or both checks before it starts."""
    require_files(settings)
    if KAFKA in needs:
        require_kafka(settings)
    if REGISTRY in needs:
        require_registry(settings)


def require_kafka(settings: Settings, timeout_s: float = REACH_TIMEOUT_S) -> ClusterMetadata:
    """The cluster's metadata, once a broker of `settings` answers; raise `Unreachable`, naming the reason
    librdkafka gave, as soon as it knows none will, or after `timeout_s`."""
    errors: list[KafkaError] = []
    try:
        admin = AdminClient({**settings.kafka_config(), "error_cb": errors.append})
    except KafkaException as error:
        raise ClientRefused(_reason(error.args[0])) from None
    deadline = time.monotonic() + timeout_s
    last: str | None = None
    while True:
        try:
            return admin.list_topics(timeout=max(0.01, min(_POLL_S, deadline - time.monotonic())))
        except KafkaException as error:
            last = _reason(error.args[0])
        admin.poll(0)
        decisive = [error for error in errors if error.code() in _DECISIVE]
        if decisive or time.monotonic() >= deadline:
            causes = [error for error in errors if error.code() != KafkaError._ALL_BROKERS_DOWN]
            reason = _reason(causes[-1]) if causes else (last or "no answer")
            if any(error.code() in _CREDENTIALS for error in decisive):
                raise CredentialsRefused(
                    f"Kafka ({settings.kafka_bootstrap_servers}) refused the credentials: {reason}; check the "
                    "OMS_KAFKA_SASL_* settings (`oms config`)"
                )
            raise Unreachable("Kafka", settings.kafka_bootstrap_servers, reason, None if decisive else timeout_s)


def require_registry(settings: Settings, timeout_s: float = REACH_TIMEOUT_S) -> int:
    """How many subjects the registry of `settings` has, asked once with `timeout_s` and no retry; raise
    `Unreachable`, `CredentialsRefused` or `NotTheRegistryApi` for an answer that is none of that."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    url = settings.schema_registry_url
    client = SchemaRegistryClient({**settings.schema_registry_config(), "timeout": timeout_s, "max.retries": 0})
    try:
        return len(client.get_subjects())
    except SchemaRegistryError as error:
        status = error.http_status_code
        if status in (401, 403):
            raise CredentialsRefused(
                f"the schema registry ({url}) refused the credentials (HTTP {status}); check "
                "OMS_SCHEMA_REGISTRY_USERNAME and OMS_SCHEMA_REGISTRY_PASSWORD (`oms config`)"
            ) from None
        if 400 <= status < 500:
            raise NotTheRegistryApi(
                f"the schema registry URL {url} answered HTTP {status} to GET /subjects: is it the registry's "
                "Confluent-compatible API (Apicurio's ends in /apis/ccompat/v7)?"
            ) from None
        raise Unreachable("the schema registry", url, _reason(error)) from None
    except Exception as error:
        raise Unreachable("the schema registry", url, _reason(error)) from None


def _reason(error: object) -> str:
    text = error.str() if isinstance(error, KafkaError) else str(error)
    return text.splitlines()[0][:300] if text else "no reason given"
