"""Scaled out as a Kubernetes StatefulSet would run it: three instances of every stateful processor, named as
its pods are (`oms-payments-0`, `-1`, `-2`), and one timer service and one fleet watcher. Each turns ready on
`/readyz`; one instance of every processor is killed with SIGKILL while orders flow and is not started again,
so the other two take over its partitions and state; afterwards every order reconciles exactly
(ops/reconciliation.py): one terminal outcome, charged at most once, each piece of news told once."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from ops.chaos import CHAOS_MIX, Background, Observer, close_the_books, seed_stock, stock_for, wait_for_endings
from ops.orders import generate_orders
from ops.produce import CancellationPlan, produce_orders
from processors.runtime.discovery import targets_dir
from processors.services import SERVICES, STREAM_PROCESSORS
from schemas.registry import registry_client
from tests.integration.harness import TEST_SETTINGS, Processes
from topology.admin import wait_for_group
from topology.settings import Settings

# Every stream processor keeps state per key (`ProcessorSpec.state`): all of them run three times.
REPLICATED = tuple(spec.name for spec in STREAM_PROCESSORS)
SINGLE = ("timers", "fleet")
REPLICAS = 3
ORDERS = 30
RATE_PER_S = 6.0
KILL_AFTER_S = 1.5
"""Into the stream of orders (5 s long): every order after it meets the survivors only."""
READY_WITHIN_S = 150.0
# A pod's host name is the only source of its id where a UTS namespace can be made (root, util-linux).
CAN_NAME_HOSTS = os.geteuid() == 0 and shutil.which("unshare") is not None


@dataclass
class Pod:
    service: str
    name: str
    """As a StatefulSet names it: `oms-<service>-<ordinal>`."""
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    by_host_name: bool

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def readiness(self) -> str:
        """`ready`, or why not: the endpoint's answer, or that the process is gone."""
        if self.process.poll() is not None:
            return f"exited {self.process.returncode}: {self.log.read_text(errors='replace')[-2000:]}"
        try:
            answer = httpx.get(f"{self.url}/readyz", timeout=2)
        except httpx.HTTPError as error:
            return f"no answer ({type(error).__name__})"
        return "ready" if answer.status_code == 200 else f"{answer.status_code} {answer.text.strip()}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_pod(settings: Settings, service: str, ordinal: int, by_host_name: bool) -> Pod:
    """`oms run SERVICE` as pod `oms-SERVICE-ORDINAL`: its id from `OMS_INSTANCE_ID`, or (`by_host_name`) from
    a host name of that name and no `OMS_INSTANCE_ID`, as in a StatefulSet pod. Its metrics port is given: an
    id that is no number takes the service's own port."""
    name = f"oms-{service}-{ordinal}"
    port = free_port()
    log = settings.run_dir / "test-logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, **TEST_SETTINGS, "OMS_METRICS_PORT": str(port), "OMS_LOG_LEVEL": "INFO"}
    command = [sys.executable, "-m", "ops.cli", "run", service]
    if by_host_name:
        environment.pop("OMS_INSTANCE_ID", None)
        command = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name, *command]
    else:
        environment["OMS_INSTANCE_ID"] = name
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment)
    return Pod(service, name, port, process, log, by_host_name)


def stop_pod(pod: Pod) -> None:
    if pod.process.poll() is None:
        pod.process.send_signal(signal.SIGTERM)
        try:
            pod.process.wait(60)
        except subprocess.TimeoutExpired:
            pod.process.kill()
            pod.process.wait(10)


def wait_until_ready(pods: list[Pod], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = {pod.name: why for pod in pods if (why := pod.readiness()) != "ready"}
        exited = any(why.startswith("exited") for why in waiting.values())
        if not waiting or exited or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not waiting, f"not ready within {timeout_s:.0f}s: {waiting}"


def instance_of(pod: Pod) -> str:
    """The instance id the pod should have taken: its name when given as `OMS_INSTANCE_ID`, else the ordinal
    of its host name."""
    return pod.name.rsplit("-", 1)[1] if pod.by_host_name else pod.name


@pytest.fixture
def pods(settings: Settings, admin: AdminClient, processes: Processes, declared: None) -> Iterator[list[Pod]]:
    """Every pod started, and the session's own processors (instance 0 of each) stopped meanwhile, so that
    the machine runs one fleet at a time; afterwards they run again."""
    paused = list(processes.running)
    for name, instance in paused:
        processes.stop(name, instance)
    started: list[Pod] = []
    try:
        for service in REPLICATED:
            for ordinal in range(REPLICAS):
                started.append(start_pod(settings, service, ordinal, by_host_name=CAN_NAME_HOSTS and ordinal == 2))
        started.extend(start_pod(settings, service, 0, by_host_name=False) for service in SINGLE)
        yield started
    finally:
        for pod in started:
            stop_pod(pod)
        for pod in started:  # a pod killed with SIGKILL could not withdraw its Prometheus target
            (targets_dir(settings.run_dir) / f"{pod.service}-{instance_of(pod)}.json").unlink(missing_ok=True)
        for name, instance in paused:
            processes.start(name, instance)
        for name in {name for name, _ in paused}:
            wait_for_group(admin, SERVICES[name].group, members=1)


def test_three_pod_named_instances_of_each_processor_turn_ready_and_lose_no_order_when_one_is_killed(
    settings: Settings, admin: AdminClient, pods: list[Pod]
) -> None:
    wait_until_ready(pods, READY_WITHIN_S)
    announced = {path.name for path in targets_dir(settings.run_dir).glob("*.json")}
    for pod in pods:  # each took the id it was meant to, and serves where it says
        assert f"{pod.service}-{instance_of(pod)}.json" in announced, pod.name
    for service in REPLICATED:
        members = admin.describe_consumer_groups([SERVICES[service].group])[SERVICES[service].group].result(10)
        assert len(members.members) == REPLICAS, f"{service}: {len(members.members)} members"
    timers = next(pod for pod in pods if pod.service == "timers")
    assert "oms_timers_pending " in httpx.get(f"{timers.url}/metrics", timeout=5).text

    orders = generate_orders(ORDERS, seed=12, prefix=f"pods-{uuid.uuid4().hex[:6]}", mix=CHAOS_MIX)
    cancellations = CancellationPlan(share=0.2, seed=12, within_s=3.0)
    cancels = dict.fromkeys(cancellations.cancelled([order.order_id for order in orders]), 1)
    observer = Observer(settings, registry_client(settings))
    started_ms = int(time.time() * 1000)
    try:
        seeded = stock_for(orders)
        seed_stock(settings, observer, seeded)
        records = [order.record for order in orders]
        producing = Background(
            lambda: produce_orders(settings, records, RATE_PER_S, progress=False, cancellations=cancellations)
        )
        kill_at = time.monotonic() + KILL_AFTER_S
        while time.monotonic() < kill_at:
            observer.poll()
        victims = [pod for pod in pods if pod.service in REPLICATED and pod.name.endswith("-1")]
        for pod in victims:
            pod.process.send_signal(signal.SIGKILL)
        for pod in victims:
            pod.process.wait(30)
        while producing.running:
            observer.poll()
        producing.result()
        unfinished = wait_for_endings(observer, [order.order_id for order in orders], cancels, 120)
        # The dead letters of what this test produced: a reader still catching up on an earlier test's poison
        # may dead-letter it meanwhile, and that is no fault of these orders.
        reconciliation = close_the_books(
            settings,
            observer,
            orders,
            cancels,
            seeded,
            counted=lambda letter: int(letter.says("dlq.original.timestamp") or 0) >= started_ms,
        )
    finally:
        observer.close()

    report = reconciliation.report()
    print(report)
    assert unfinished == set(), f"{len(unfinished)} orders never ended, e.g. {sorted(unfinished)[:3]}\n{report}"
    assert reconciliation.ok, report
    assert reconciliation.counts["orders"] == ORDERS
    survivors = [pod for pod in pods if pod not in victims]
    assert all(pod.readiness() == "ready" for pod in survivors), {pod.name: pod.readiness() for pod in survivors}
