"""The image's Dockerfile without a Docker engine: a pinned base, dependencies from the lock in a layer before the
source, the lock in agreement with pyproject.toml, and a health check that asks the processor's `/healthz`."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from packaging.requirements import Requirement

from ops.jvm import LOCAL_EXTRA
from ops.requirements_lock import (
    BASE_DEBIAN,
    LOCK_FILE,
    PYTHON_VERSION,
    LockError,
    canonical,
    image_requirements,
    parse,
)
from processors.runtime.health import Health, serve
from tests.dockerfile import instructions
from topology.settings import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
SOURCE = {"pyproject.toml", "README.md", "ops", "processors", "schemas", "topology"}


def copied(arguments: str) -> list[str]:
    *sources, _ = shlex.split(arguments)
    return sources


def test_the_base_image_is_an_exact_python_patch_release_that_the_lock_suits() -> None:
    base = next(arguments for instruction, arguments in instructions() if instruction == "FROM")
    exact = rf"python:{re.escape(PYTHON_VERSION)}\.\d+-slim-{BASE_DEBIAN}(@sha256:[0-9a-f]{{64}})?"
    assert re.fullmatch(exact, base), f"{base} is not {exact}: the tag floats, or the lock's wheels do not suit it"


def test_the_dependencies_install_from_the_lock_before_any_source_is_copied() -> None:
    steps = instructions()
    first_source = next(
        index
        for index, (instruction, arguments) in enumerate(steps)
        if instruction == "COPY" and SOURCE & set(copied(arguments))
    )
    before = steps[:first_source]
    assert [copied(arguments) for instruction, arguments in before if instruction == "COPY"] == [[LOCK_FILE.name]]
    installs = [arguments for instruction, arguments in before if instruction == "RUN" and "pip" in arguments]
    assert len(installs) == 1
    assert "--require-hashes" in installs[0] and f"-r {LOCK_FILE.name}" in installs[0]
    project_install = next(
        arguments for instruction, arguments in steps[first_source:] if instruction == "RUN" and "pip" in arguments
    )
    # The project alone: nothing resolved past the lock, no extra (the `local` one is not for the image).
    assert "--no-deps" in project_install and "--no-build-isolation" in project_install
    assert "[" not in project_install and LOCAL_EXTRA not in project_install


def test_the_lock_pins_what_pyproject_pins_and_nothing_of_the_local_extra() -> None:
    locked = parse(LOCK_FILE.read_text())
    for requirement in map(Requirement, image_requirements(PYPROJECT)):
        pin = locked.get(canonical(requirement.name))
        assert pin is not None, f"{requirement} is not in {LOCK_FILE.name}: run `make lock`"
        assert requirement.specifier.contains(pin.version), (
            f"{LOCK_FILE.name} has {pin.name}=={pin.version}, pyproject.toml {requirement}: run `make lock`"
        )
    for dependency in PYPROJECT["project"]["optional-dependencies"][LOCAL_EXTRA]:
        assert canonical(Requirement(dependency).name) not in locked


def test_every_lock_entry_is_one_version_with_hashes() -> None:
    for pin in parse(LOCK_FILE.read_text()).values():
        assert pin.hashes and all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in pin.hashes)


@pytest.mark.parametrize(
    "entry",
    ["fastavro>=1.13", "fastavro==1.13.1", "fastavro==1.13.1 --hash=md5:0123"],
    ids=["a range", "no hash", "not sha256"],
)
def test_the_lock_parser_refuses_anything_but_hashed_pins(entry: str) -> None:
    with pytest.raises(LockError):
        parse(entry + "\n")


@contextmanager
def health_server(health: Health) -> Iterator[int]:
    server = serve("127.0.0.1", 0, health)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def run_the_health_check(port: int) -> subprocess.CompletedProcess[str]:
    """The HEALTHCHECK's command as the image runs it (its `python` is the image's venv; here, the tests')."""
    healthcheck = next(arguments for instruction, arguments in instructions() if instruction == "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD ") + len("CMD ") :])
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]],
        env={**os.environ, "OMS_METRICS_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_health_check_passes_while_the_loop_goes_round() -> None:
    with health_server(Health()) as port:
        assert run_the_health_check(port).returncode == 0


def test_the_health_check_fails_once_the_loop_stalls() -> None:
    now = [0.0]
    stalled = Health(stall_after_s=60.0, clock=lambda: now[0])
    now[0] = 61.0
    with health_server(stalled) as port:
        assert run_the_health_check(port).returncode != 0


def test_the_health_check_asks_the_port_the_image_serves_metrics_on() -> None:
    settings = dict(
        assignment.partition("=")[::2]
        for instruction, arguments in instructions()
        if instruction == "ENV"
        for assignment in shlex.split(arguments)
    )
    exposed = [arguments for instruction, arguments in instructions() if instruction == "EXPOSE"]
    assert exposed == [settings["OMS_METRICS_PORT"]]
