"""The local platform as one unit: Kafka first, then the registry that stores its schemas in Kafka."""

from __future__ import annotations

from ops.jvm import java_executable
from ops.kafka import kafka_server
from ops.localserver import LocalServer, ServerStatus
from ops.registry import local_registry_client, registry_server
from schemas.registry import COMPATIBILITY_LEVEL, ensure_compatibility_level
from topology.settings import Settings


def servers(settings: Settings) -> list[LocalServer]:
    """In start order."""
    return [kafka_server(settings), registry_server(settings)]


def up(settings: Settings) -> list[str]:
    """Start what is not running, wait until it answers, and set the registry's default compatibility (the
    level of any subject that sets none; `oms schemas register` sets it on each declared subject too).
    Java first: without it neither server starts, and their jars are not worth fetching."""
    java_executable()
    messages = [server.start() for server in servers(settings)]
    ensure_compatibility_level(local_registry_client(settings))
    messages.append(f"registry default compatibility: {COMPATIBILITY_LEVEL}")
    return messages


def down(settings: Settings) -> list[str]:
    return [server.stop() for server in reversed(servers(settings))]


def status(settings: Settings) -> list[ServerStatus]:
    return [server.status() for server in servers(settings)]
