"""`oms run all` as an operator meets it: children named after the id it is given, none left running after a
`kill -9` of it, and a crash-looping child still restarted and named by `oms status`.

The processors here point at a port where no broker listens: they start and keep trying to connect, which is
all these tests need of them, and they never join the shared broker's groups."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.supervisor import child_instance_ids
from processors.services import instances_run, services_run
from topology.settings import Settings

RUN_ALL = services_run(colocated=True)

NO_BROKER = "127.0.0.1:1"


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OMS_RUN_DIR": str(tmp_path),
        "OMS_KAFKA_BOOTSTRAP_SERVERS": NO_BROKER,
        "OMS_METRICS_PORT": "0",
        "OMS_SUPERVISOR_METRICS_PORT": "0",
        "OMS_INSTANCE_ID": f"sv-{uuid.uuid4().hex[:8]}",
        "OMS_ENGINE_INSTANCES": "2",
    }


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[Any]]]:
    """Processes a test starts; killed afterwards, whatever happened."""
    processes: list[subprocess.Popen[Any]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(condition: Callable[[], object], timeout_s: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s}s: {what}")
        time.sleep(0.1)


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [state, ppid, ...]; None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def is_running(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def children_of(parent: int) -> dict[int, tuple[str, str]]:
    """Its running children: pid -> (the `oms run` processor, OMS_INSTANCE_ID)."""
    found: dict[int, tuple[str, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not is_running(pid := int(entry.name)):
            continue
        fields = stat_fields(pid)
        if fields is None or int(fields[1]) != parent:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = dict(
                item.decode().split("=", 1) for item in (entry / "environ").read_bytes().split(b"\0") if b"=" in item
            )
        except OSError:
            continue
        if b"run" in argv:
            found[pid] = (argv[argv.index(b"run") + 1].decode(), environ.get("OMS_INSTANCE_ID", ""))
    return found


def test_run_all_names_its_children_after_its_id_and_a_kill_9_of_it_leaves_none_running(
    environment: dict[str, str], tmp_path: Path, started: list[subprocess.Popen[Any]]
) -> None:
    given = environment["OMS_INSTANCE_ID"]
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "run", "all"], env=environment, stdout=subprocess.DEVNULL
    )
    started.append(supervisor)
    expected = [
        (name, child)
        for name in RUN_ALL
        for child in child_instance_ids(given, instances_run(name, 1, Settings(engine_instances=2)))
    ]
    wait_for(lambda: len(children_of(supervisor.pid)) == len(expected), what="every processor started")
    children = children_of(supervisor.pid)

    assert sorted(children.values()) == sorted(expected)
    assert ("orders", f"{given}-1") in expected, "the engine runs an instance per core, two here"
    assert {path.name for path in (tmp_path / "logs").iterdir()} == {f"{name}-{child}.log" for name, child in expected}

    twin = subprocess.run(
        [sys.executable, "-m", "ops.cli", "run", "all"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert twin.returncode == 2 and f"already runs as instance {given!r}" in twin.stderr

    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()

    try:
        wait_for(lambda: not any(map(is_running, children)), timeout_s=10, what="its children gone with it")
    finally:
        for pid in filter(is_running, children):
            os.kill(pid, signal.SIGKILL)


# A supervisor over two cheap children: one that crashes at once, one that runs; two crashes within a minute
# make a crash loop.
SUPERVISE_A_CRASHING_CHILD = """
import sys
from pathlib import Path
from typing import Any
from ops import runstate
from ops.restarts import RestartPolicy
from ops.supervisor import Child, Supervisor

run_dir, instance, metrics_port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
crashes = Child("crashy", instance, run_dir / "crashy.log", command=[sys.executable, "-c", "raise SystemExit(1)"])
runs = Child("steady", instance, run_dir / "steady.log", command=[sys.executable, "-c", "import time; time.sleep(60)"])
policy = RestartPolicy(max_crashes=2, window_s=60)
state_file = runstate.state_file(run_dir, instance)
sys.exit(Supervisor([crashes, runs], instance, policy, state_file, metrics_port).run())
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def oms_status(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", "status"], env=environment, capture_output=True, text=True, timeout=60
    )


def test_a_crash_looping_child_is_restarted_and_oms_status_names_it_and_fails(
    environment: dict[str, str], tmp_path: Path, started: list[subprocess.Popen[Any]]
) -> None:
    given = environment["OMS_INSTANCE_ID"]
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISE_A_CRASHING_CHILD, str(tmp_path), given, str(metrics_port := free_port())],
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(supervisor)
    looping = oms_status(environment)
    deadline = time.monotonic() + 30
    while looping.returncode != 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        looping = oms_status(environment)

    assert looping.returncode == 3, looping.stdout
    assert f"crashy#{given}" in looping.stdout and "CRASH-LOOP" in looping.stdout
    assert f"steady#{given}" in looping.stdout
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert 'oms_supervisor_crash_looping{processor="crashy"} 1.0' in metrics

    def restarts() -> float:
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        crashy = 'oms_supervisor_restarts_total{processor="crashy",reason="crash"}'
        return float(next(line for line in metrics.splitlines() if line.startswith(crashy)).split()[-1])

    before = restarts()
    wait_for(lambda: restarts() > before, 30, "crashy restarted once more while crash-looping")

    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(30) == 0
    assert supervisor.stdout is not None
    assert f"crashy#{given} crashed 2 times within 60s: crash-looping" in supervisor.stdout.read()
    assert oms_status(environment).returncode != 3, "a supervisor that stopped cleanly looks after nothing"
