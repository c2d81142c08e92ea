"""`oms up`'s broker listens where OMS_LOCAL_KAFKA_PORT and OMS_LOCAL_CONTROLLER_PORT say, also after a move.

A broker of its own, in a temporary folder beside the shared one (a few seconds, under the shared lock)."""

from __future__ import annotations

import socket
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from ops.kafka import kafka_server
from topology.settings import Settings


def free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def on_ports(settings: Settings, run_dir: Path) -> Settings:
    kafka_port, controller_port = free_ports(2)
    return Settings(
        run_dir=run_dir,
        cache_dir=settings.cache_dir,
        local_kafka_port=kafka_port,
        local_controller_port=controller_port,
    )


def test_the_local_broker_serves_on_its_ports_and_moves_with_them(settings: Settings, tmp_path: Path) -> None:
    first = on_ports(settings, tmp_path)
    broker = kafka_server(first)
    try:
        assert f"on 127.0.0.1:{first.local_kafka_port}" in broker.start()
        admin = AdminClient(first.kafka_config())
        admin.create_topics([NewTopic("moved", 1, 1)])["moved"].result(timeout=30)
    finally:
        broker.stop()

    # The same storage, started on other ports: a user who found 9092 taken and set another.
    moved = on_ports(settings, tmp_path)
    broker = kafka_server(moved)
    try:
        assert f"on 127.0.0.1:{moved.local_kafka_port}" in broker.start()
        admin = AdminClient(moved.kafka_config())
        assert "moved" in admin.list_topics(timeout=10).topics
        admin.create_topics([NewTopic("after", 1, 1)])["after"].result(timeout=30)  # the controller answers
    finally:
        broker.stop()
