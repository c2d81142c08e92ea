"""docker-compose.yml brought up for real, where a Docker engine runs: `oms` on the host reaches Kafka and the
registry through the published ports, and topics, schemas, changelogs and a processor's state folder are all
still there after `down` and `up` again. Without an engine (this project's build machine has none) it skips and
says so; tests/unit/test_compose.py checks the file there.

It publishes Kafka and the registry on free ports (`OMS_LOCAL_KAFKA_PORT`, `OMS_LOCAL_REGISTRY_PORT`), so that it
runs beside the local platform that `make test` starts, and removes its containers and volumes afterwards. The
first run pulls Kafka and the registry and builds the image: minutes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops.deploy import COMPOSE_FILE
from ops.image import METRICS_PORT, RUN_DIR
from schemas.registry import declared_subjects, registry_client
from topology.admin import admin_client
from topology.settings import PROJECT_ROOT, Settings, local_bootstrap_servers, local_registry_url
from topology.topics import ALL_TOPICS

PROCESSOR = "sagas"  # a stateful one: a state folder and changelogs to keep
HEALTHY_WITHIN_S = 900.0
REGISTRY_JOURNAL = "kafkasql-journal"


def engine_missing() -> str | None:
    """Why no Docker engine can be used here, or None."""
    docker = shutil.which("docker")
    if docker is None:
        return "no `docker` command"
    info = subprocess.run(
        [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60
    )
    if info.returncode != 0:
        said = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Docker engine answers ({said})"
    return None


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.fail("a Docker engine runs but neither `docker compose` nor `docker-compose` is installed")
    return [legacy]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    command: list[str]
    environment: dict[str, str]
    settings: Settings

    def run(self, *arguments: str, timeout_s: float = 1200.0) -> str:
        done = subprocess.run(
            [*self.command, *arguments], env=self.environment, capture_output=True, text=True, timeout=timeout_s
        )
        assert done.returncode == 0, f"compose {' '.join(arguments)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def up(self) -> None:
        """Start the processor and what it depends on; wait until the image's health check passes and the
        processor is ready (partitions assigned, state restored)."""
        self.run("up", "--detach", "--build", PROCESSOR)
        container = self.run("ps", "--quiet", PROCESSOR).strip()
        self.wait_until(lambda: self.health(container) == "healthy", "healthy (the image's HEALTHCHECK)")
        self.wait_until(self.ready, "ready (its /readyz)")

    def health(self, container: str) -> str:
        inspected = subprocess.run(
            ["docker", "inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", container],
            capture_output=True,
            text=True,
            timeout=60,
        )
        status = inspected.stdout.strip()
        assert status != "unhealthy", self.run("logs", "--tail", "60", PROCESSOR)
        return status

    def ready(self) -> bool:
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{METRICS_PORT}/readyz', timeout=4)"
        done = subprocess.run(
            [*self.command, "exec", "-T", PROCESSOR, "python", "-c", probe],
            env=self.environment,
            capture_output=True,
            timeout=60,
        )
        return done.returncode == 0

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{PROCESSOR} not {what} within {HEALTHY_WITHIN_S:.0f}s:\n{self.run('logs', '--tail', '60')}"
                )
            time.sleep(2.0)

    def topics(self) -> set[str]:
        return set(admin_client(self.settings).list_topics(timeout=30).topics)

    def schema_ids(self) -> dict[str, int]:
        client = registry_client(self.settings)
        return {subject: client.get_latest_version(subject).schema_id for subject in client.get_subjects()}

    def state_folders(self) -> list[str]:
        listed = self.run("exec", "-T", PROCESSOR, "ls", f"{RUN_DIR}/state/oms.{PROCESSOR}")
        return sorted(listed.split())

    def oms(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """The host's `oms`, given only the ports Compose published (as a user would set them)."""
        return subprocess.run(
            [str(Path(sys.executable).with_name("oms")), *arguments],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def stack() -> Iterator[Stack]:
    missing = engine_missing()
    if missing:
        pytest.skip(f"{missing}: docker-compose.yml is brought up only where a Docker engine runs")
    kafka_port, registry_port = free_port(), free_port()
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("OMS_KAFKA_BOOTSTRAP_SERVERS", "OMS_SCHEMA_REGISTRY_URL")
    }
    environment |= {"OMS_LOCAL_KAFKA_PORT": str(kafka_port), "OMS_LOCAL_REGISTRY_PORT": str(registry_port)}
    project = f"omstest{uuid.uuid4().hex[:8]}"
    command = [*compose_command(), "--project-name", project, "--project-directory", str(PROJECT_ROOT)]
    ports = Settings(local_kafka_port=kafka_port, local_registry_port=registry_port)
    settings = ports.model_copy(
        update={
            "kafka_bootstrap_servers": local_bootstrap_servers(ports),
            "schema_registry_url": local_registry_url(ports),
        }
    )
    compose = Stack([*command, "--file", str(COMPOSE_FILE)], environment, settings)
    try:
        yield compose
    finally:
        compose.run("down", "--volumes", "--remove-orphans", timeout_s=300.0)


@pytest.mark.timeout(3600)
def test_topics_schemas_changelogs_and_state_survive_down_and_up(stack: Stack) -> None:
    stack.up()

    listed = stack.oms("topics", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    topics = stack.topics()
    assert {topic.name for topic in ALL_TOPICS} <= topics
    assert REGISTRY_JOURNAL in topics, "the registry does not keep its schemas in Kafka"
    changelogs = {topic for topic in topics if topic.startswith(f"changelog__oms.{PROCESSOR}")}
    assert changelogs
    schema_ids = stack.schema_ids()
    assert {subject.name for subject in declared_subjects()} <= set(schema_ids)
    assert stack.state_folders() == ["0"]

    stack.run("down", timeout_s=300.0)  # containers and network gone, volumes kept
    stack.up()

    assert stack.topics() >= {topic.name for topic in ALL_TOPICS} | changelogs | {REGISTRY_JOURNAL}
    assert stack.schema_ids() == schema_ids
    # The recreated container is the same instance: no second state folder, no new transactional id.
    assert stack.state_folders() == ["0"]
    checked = stack.oms("schemas", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
