"""The local schema registry: Apicurio Registry 3 keeping its schemas in Kafka, Confluent API on
`local_registry_port` (or, with `local_security` "sasl_ssl", on HTTPS only, storing its schemas through the secure
broker as its own SCRAM user)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.certificates import write_private
from ops.jvm import java_executable
from ops.kafka import HOST as KAFKA_HOST
from ops.kafka import scram_jaas
from ops.localsecurity import (
    CLIENT_USER,
    REGISTRY_USER,
    SCRAM_MECHANISM,
    client_settings,
    ensure_material,
    secure_dir,
    secure_files,
)
from ops.localserver import LocalServer
from ops.maven import registry_app
from topology.settings import LOCAL_HOST, Settings, local_bootstrap_servers, local_registry_url

HOST = LOCAL_HOST
HEAP = "-Xmx384m"


def registry_server(settings: Settings) -> LocalServer:
    """The registry that `settings.local_security` asks for."""
    if settings.local_security == "sasl_ssl":
        return _secure_registry_server(settings)
    return LocalServer(
        name="registry",
        host=HOST,
        port=settings.local_registry_port,
        run_dir=settings.run_dir / "registry",
        cmdline_marker="quarkus-run.jar",
        build_command=lambda: _command(settings),
        is_ready=lambda: (
            _storage_loaded(settings.local_registry_port) and _answers({"url": local_registry_url(settings)})
        ),
        start_timeout_s=180.0,
        port_settings=_ports(settings.local_registry_port, "OMS_LOCAL_REGISTRY_PORT"),
    )


def local_registry_client(settings: Settings) -> SchemaRegistryClient:
    """A client of the local registry that `settings.local_security` asks for."""
    if settings.local_security == "sasl_ssl":
        return SchemaRegistryClient(client_settings(settings).schema_registry_config())
    return SchemaRegistryClient({"url": local_registry_url(settings)})


def _command(settings: Settings) -> list[str]:
    return _java_command(registry_app(settings.cache_dir), plaintext_options(settings))


def plaintext_options(settings: Settings) -> dict[str, str]:
    """The plaintext registry's configuration: HTTP on `local_registry_port`, schemas through the local broker."""
    return {
        "quarkus.http.host": HOST,
        "quarkus.http.port": str(settings.local_registry_port),
        "quarkus.http.access-log.enabled": "false",
        # Apicurio's build keeps the management interface (health, metrics) on; loopback, beside the API.
        "quarkus.management.host": HOST,
        "quarkus.management.port": str(management_port(settings.local_registry_port)),
        # Schemas live in a Kafka topic (the `kafkasql-journal`), so they survive restarts as Kafka does.
        "apicurio.storage.kind": "kafkasql",
        "apicurio.kafkasql.bootstrap.servers": local_bootstrap_servers(settings),
    }


def _secure_registry_server(settings: Settings) -> LocalServer:
    run_dir = secure_dir(settings) / "registry"

    def build_command() -> list[str]:
        jar = registry_app(settings.cache_dir)
        # Quarkus reads `config/application.properties` in its working directory: the password stays out of
        # the command line, where any user of the machine could read it.
        write_private(run_dir / "config" / "application.properties", _secure_properties(settings).encode())
        return _java_command(jar, {})

    return LocalServer(
        name="registry",
        host=HOST,
        port=settings.local_secure_registry_port,
        run_dir=run_dir,
        cmdline_marker="quarkus-run.jar",
        build_command=build_command,
        is_ready=lambda: (
            _storage_loaded(settings.local_secure_registry_port)
            and _answers(client_settings(settings).schema_registry_config())
        ),
        start_timeout_s=180.0,
        port_settings=_ports(settings.local_secure_registry_port, "OMS_LOCAL_SECURE_REGISTRY_PORT"),
    )


def _secure_properties(settings: Settings) -> str:
    """HTTPS only, with the project CA's certificate; kafkasql through the SASL_SSL listener as `registry`.

    Apicurio's build fixes Quarkus' client-auth to NONE, so the registry cannot ask for client certificates;
    clients still offer theirs (`OMS_SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION`) to a registry that does.
    """
    files = secure_files(settings)
    passwords = ensure_material(files)
    password = passwords[REGISTRY_USER]
    properties = {
        "quarkus.http.host": HOST,
        "quarkus.http.ssl-port": str(settings.local_secure_registry_port),
        "quarkus.http.insecure-requests": "disabled",
        "quarkus.http.ssl.certificate.files": str(files.registry_certificate),
        "quarkus.http.ssl.certificate.key-files": str(files.registry_key),
        "quarkus.http.access-log.enabled": "false",
        # Every request to the API, reads included, needs a user's password (HTTP basic over TLS): the embedded
        # user `oms`, with the password its SCRAM login has. Apicurio's build enables embedded users.
        "quarkus.http.auth.basic": "true",
        "apicurio.authn.mechanism.priority": "basic",
        "quarkus.security.users.embedded.plain-text": "true",
        f"quarkus.security.users.embedded.users.{CLIENT_USER}": passwords[CLIENT_USER],
        f"quarkus.security.users.embedded.roles.{CLIENT_USER}": "sr-admin",
        "quarkus.http.auth.permission.api.paths": "/apis/*",
        "quarkus.http.auth.permission.api.policy": "authenticated",
        "quarkus.management.host": HOST,
        "quarkus.management.port": str(management_port(settings.local_secure_registry_port)),
        "apicurio.storage.kind": "kafkasql",
        "apicurio.kafkasql.bootstrap.servers": f"{KAFKA_HOST}:{settings.local_secure_kafka_port}",
        # Passed to the storage's producer, consumer and admin client alike.
        "apicurio.kafka.common.security.protocol": "SASL_SSL",
        "apicurio.kafka.common.sasl.mechanism": SCRAM_MECHANISM,
        "apicurio.kafka.common.sasl.jaas.config": scram_jaas(REGISTRY_USER, password),
        "apicurio.kafka.common.ssl.truststore.type": "PEM",
        "apicurio.kafka.common.ssl.truststore.location": str(files.ca_certificate),
    }
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def _java_command(jar: Path, options: dict[str, str]) -> list[str]:
    return [
        str(java_executable()),
        HEAP,
        *(f"-D{key}={value}" for key, value in options.items()),
        "-jar",
        str(jar),
    ]


def management_port(api_port: int) -> int:
    """Where a local registry serves health and metrics: the port after its API's."""
    return api_port + 1


def _ports(api_port: int, setting: str) -> dict[int, str]:
    """The ports a local registry takes, and the setting that moves them both."""
    return {api_port: setting, management_port(api_port): setting}


def _storage_loaded(api_port: int) -> bool:
    """Whether the registry has read its store back from Kafka. It listens before: for a few seconds after a
    restart it answers 404 for schemas it has. Its readiness check is that load (kafkasql's `isReady`)."""
    url = f"http://{HOST}:{management_port(api_port)}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(json.load(response).get("status") == "UP")
    except (OSError, ValueError):
        return False


def _answers(client_config: dict[str, Any]) -> bool:
    client = SchemaRegistryClient({**client_config, "max.retries": 0, "timeout": 2})
    try:
        client.get_subjects()
    except Exception:
        return False
    return True
