"""docker-compose.yml keeps its data and can be reached, checked against what the images do by default: Kafka's
log dirs on its volume, the registry's schemas in Kafka, a stable instance id and a state volume per processor,
Kafka and the registry published on the host's loopback where `oms` looks, and services started once what they
need is healthy. Read as Compose reads it (`docker-compose config`) where Compose is installed, and as the
generated YAML otherwise."""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ops.deploy import COMPOSE_FILE, DEPLOYED, IMAGE
from processors.runtime.identity import instance_id
from tests.dockerfile import instructions
from topology.settings import PROJECT_ROOT, Settings

# The apache/kafka image: its run script sets KAFKA_LOG_DIRS to this when it is unset (`configureDefaults`), a
# folder of the container's own layer, and its Dockerfile declares this folder a volume.
KAFKA_IMAGE_DEFAULT_LOG_DIRS = "/tmp/kraft-combined-logs"
KAFKA_IMAGE_VOLUME = "/var/lib/kafka/data"
# Apicurio Registry's default storage (`apicurio.storage.kind=sql`) is an in-memory database; `kafkasql` keeps the
# schemas in a Kafka topic. It serves its API on Quarkus' HTTP port.
REGISTRY_KAFKA_STORAGE = "kafkasql"
REGISTRY_HTTP_PORT = 8080
LOOPBACK = "127.0.0.1"
HOST_PORT_VARIABLES = ("OMS_LOCAL_KAFKA_PORT", "OMS_LOCAL_REGISTRY_PORT")
MOVED_PORTS = {"OMS_LOCAL_KAFKA_PORT": "19092", "OMS_LOCAL_REGISTRY_PORT": "18081"}


def rendered(environ: Mapping[str, str]) -> dict[str, Any]:
    """The Compose file as Compose reads it given `environ`: `docker-compose config` where it is installed, else
    the generated YAML with its `${VAR:-default}` substituted here."""
    return _rendered(tuple(sorted(environ.items())))


@functools.cache
def _rendered(items: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    environ = dict(items)
    executable = shutil.which("docker-compose")
    if executable is None:
        text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: environ.get(m[1]) or m[2], COMPOSE_FILE.read_text())
        return dict(yaml.safe_load(text))
    clean = {name: value for name, value in os.environ.items() if name not in HOST_PORT_VARIABLES}
    done = subprocess.run(
        [executable, "--project-directory", str(PROJECT_ROOT), "-f", str(COMPOSE_FILE), "config"],
        env={**clean, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(yaml.safe_load(done.stdout))


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(rendered({})["services"])


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of every port a service publishes, short or long syntax."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            *address, host_port, container_port = str(port).split("/")[0].rsplit(":", 2)
            found.append(((address or [""])[0], int(host_port), int(container_port)))
    return found


def named_volume_mounts(service: dict[str, Any], declared: set[str]) -> dict[str, str]:
    """Container path -> named volume, for the service's mounts of declared (named) volumes."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume["target"]
        else:
            source, target = volume.split(":")[:2]
        if source in declared:
            found[target] = source
    return found


def listeners(setting: str) -> dict[str, tuple[str, int]]:
    """Listener name -> (host, port) of a Kafka listeners setting (`NAME://host:port,...`)."""
    found = {}
    for listener in setting.split(","):
        name, _, address = listener.partition("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


def image_settings() -> dict[str, str]:
    return {
        name: value
        for instruction, arguments in instructions()
        if instruction == "ENV"
        for name, _, value in (assignment.partition("=") for assignment in shlex.split(arguments))
    }


def test_kafka_keeps_its_log_dirs_on_its_named_volume(services: dict[str, Any]) -> None:
    declared = set(rendered({})["volumes"])
    kafka = services["kafka"]
    mounts = named_volume_mounts(kafka, declared)
    # The image's own volume is a named one: an anonymous volume is left behind by `down` and a new one made.
    assert KAFKA_IMAGE_VOLUME in mounts
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].split(",")
    assert KAFKA_IMAGE_DEFAULT_LOG_DIRS not in log_dirs
    for log_dir in log_dirs:
        assert any(PurePosixPath(log_dir).is_relative_to(target) for target in mounts), log_dir
    # The storage is formatted once, with this id: the same cluster on the same volume after a recreate.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kafka["environment"]["CLUSTER_ID"])


def test_the_registry_keeps_its_schemas_in_kafka(services: dict[str, Any]) -> None:
    environment = services["registry"]["environment"]
    assert environment["APICURIO_STORAGE_KIND"] == REGISTRY_KAFKA_STORAGE
    kafka = services["kafka"]["environment"]
    host, port = environment["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"].split(":")
    assert (host, int(port)) == listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])["PLAINTEXT"]
    assert services["registry"]["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("environ", [{}, MOVED_PORTS], ids=["default ports", "ports moved by the variables"])
def test_kafka_and_the_registry_are_published_on_the_loopback_where_oms_looks(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in HOST_PORT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    settings = Settings()
    services = rendered(environ)["services"]

    host, port = settings.kafka_bootstrap_servers.split(":")
    kafka = services["kafka"]
    container_port = {(address, host_port): target for address, host_port, target in published(kafka)}[
        (LOOPBACK, int(port))
    ]
    listening = {port: name for name, (_, port) in listeners(kafka["environment"]["KAFKA_LISTENERS"]).items()}
    advertised = listeners(kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    # The broker tells a host client to come back to the address it came to, not to a container's name.
    assert advertised[listening[container_port]] == (host, int(port))

    registry = urlsplit(settings.schema_registry_url)
    assert (LOOPBACK, registry.port, REGISTRY_HTTP_PORT) in published(services["registry"])
    assert registry.hostname == LOOPBACK


def test_every_published_port_is_on_the_loopback_only(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for address, _, _ in published(service):
            assert address == LOOPBACK, f"{name} publishes a port on {address or 'every address'}"


def test_every_processor_keeps_its_instance_id_and_its_state_across_a_recreate(services: dict[str, Any]) -> None:
    declared = set(rendered({})["volumes"])
    run_dir = image_settings()["OMS_RUN_DIR"]
    state_volumes = set()
    for name in DEPLOYED:
        service = services[name]
        environment = {key: str(value) for key, value in service["environment"].items()}
        # A recreated container has a new host name: the id must not come from it.
        ids = {
            instance_id(environment, hostname=functools.partial(str, host)) for host in ("4f1c2a9b8d7e", "0a9b8c7d6e5f")
        }
        assert len(ids) == 1, f"{name}'s instance id follows the container's host name"
        assert environment.get("OMS_RUN_DIR", run_dir) == run_dir
        mounts = named_volume_mounts(service, declared)
        assert run_dir in mounts, f"{name}'s state folder is not on a named volume"
        state_volumes.add(mounts[run_dir])
    assert len(state_volumes) == len(DEPLOYED), "processors share a state volume"


def test_services_start_once_what_they_need_is_healthy(services: dict[str, Any]) -> None:
    image_checks_health = any(instruction == "HEALTHCHECK" for instruction, _ in instructions())
    for name, service in services.items():
        for needed, condition in (service.get("depends_on") or {}).items():
            if condition["condition"] != "service_healthy":
                continue
            check = services[needed].get("healthcheck")
            own_image = services[needed]["image"] == IMAGE and image_checks_health
            assert (check and check.get("test") != ["NONE"] and not check.get("disable")) or (
                own_image and not check
            ), f"{name} waits for {needed} to be healthy, which has no health check"
    assert services["setup"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "registry": {"condition": "service_healthy"},
    }
    for name in DEPLOYED:
        assert services[name]["depends_on"] == {"setup": {"condition": "service_completed_successfully"}}


def test_processors_keep_the_images_health_check_and_the_one_off_setup_drops_it(services: dict[str, Any]) -> None:
    for name in DEPLOYED:
        assert "healthcheck" not in services[name], f"{name} overrides the image's health check"
    setup_check = services["setup"]["healthcheck"]
    assert setup_check.get("disable") or setup_check.get("test") == ["NONE"]


def test_every_service_of_the_oms_image_builds_it_rather_than_pulling_it(services: dict[str, Any]) -> None:
    built = [name for name, service in services.items() if service["image"] == IMAGE]
    assert set(DEPLOYED) | {"setup"} <= set(built)
    for name in built:
        assert services[name].get("build"), f"{name} would pull {IMAGE}, which no registry has"
