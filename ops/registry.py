"""The local schema registry: Apicurio Registry 3 keeping its schemas in Kafka, Confluent API on 8081."""

from __future__ import annotations

from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.jvm import java_executable
from ops.kafka import BROKER_PORT
from ops.kafka import HOST as KAFKA_HOST
from ops.localserver import LocalServer
from ops.maven import registry_app
from topology.settings import Settings

HOST = "127.0.0.1"
PORT = 8081
CONFLUENT_API = f"http://{HOST}:{PORT}/apis/ccompat/v7"
HEAP = "-Xmx384m"


def registry_server(settings: Settings) -> LocalServer:
    return LocalServer(
        name="registry",
        host=HOST,
        port=PORT,
        run_dir=settings.run_dir / "registry",
        cmdline_marker="quarkus-run.jar",
        build_command=lambda: _command(settings),
        is_ready=_answers,
        start_timeout_s=180.0,
    )


def _command(settings: Settings) -> list[str]:
    jar = registry_app(settings.cache_dir)
    options = {
        "quarkus.http.host": HOST,
        "quarkus.http.port": str(PORT),
        "quarkus.http.access-log.enabled": "false",
        "quarkus.management.enabled": "false",
        # Schemas live in a Kafka topic (the `kafkasql-journal`), so they survive restarts as Kafka does.
        "apicurio.storage.kind": "kafkasql",
        "apicurio.kafkasql.bootstrap.servers": f"{KAFKA_HOST}:{BROKER_PORT}",
    }
    return [
        str(java_executable()),
        HEAP,
        *(f"-D{key}={value}" for key, value in options.items()),
        "-jar",
        str(jar),
    ]


def _answers() -> bool:
    client = SchemaRegistryClient({"url": CONFLUENT_API, "max.retries": 0, "timeout": 2})
    try:
        client.get_subjects()
    except Exception:
        return False
    return True
