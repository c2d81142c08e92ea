"""Run processors as real `oms run` processes and watch what they publish, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.chaos import Fleet, restart_platform
from ops.replay import committed
from ops.tables import assign_from_now
from processors.services import SERVICES
from schemas.models import AvroRecord
from schemas.serde import RecordCodec
from topology.admin import wait_for_group
from topology.settings import Settings

# A cancellation of an order that never comes is refused after this wait (60 s by default): shorter here, so
# that the tests of unknown orders finish soon.
TEST_SETTINGS = {"OMS_CANCEL_WAITS_FOR_ORDER_S": "5"}


@dataclass
class Processes:
    """Processor instances started as subprocesses, so that a test can kill one with SIGKILL."""

    log_dir: Path
    running: dict[tuple[str, str], subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, instance: str = "0") -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}-{instance}.log").open("ab") as log:
            self.running[(name, instance)] = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", "run", name],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **TEST_SETTINGS, "OMS_INSTANCE_ID": instance, "OMS_LOG_LEVEL": "INFO"},
            )

    def kill(self, name: str, instance: str = "0") -> None:
        """SIGKILL: no commit, no clean shutdown, as a crash would."""
        process = self.running.pop((name, instance))
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop(self, name: str, instance: str = "0") -> int:
        process = self.running.pop((name, instance))
        process.send_signal(signal.SIGTERM)
        return process.wait(60)

    def stop_all(self) -> None:
        for name, instance in list(self.running):
            self.stop(name, instance)


def fleet_of(pipeline: Processes) -> Fleet:
    """The session's processors (instance 0 of each) as a fleet to kill and revive."""

    def start(name: str) -> subprocess.Popen[bytes]:
        pipeline.start(name)
        return pipeline.running[(name, "0")]

    return Fleet(start, {name: process for (name, instance), process in pipeline.running.items() if instance == "0"})


def restore(settings: Settings, admin: AdminClient, fleet: Fleet) -> None:
    """The broker and registry answer again and every processor runs again, whatever happened; one that keeps
    crashing (a defect other tests name) is told of, not waited for."""
    restart_platform(settings)
    fleet.revive()
    for name in fleet.processes:
        try:
            wait_for_group(admin, SERVICES[name].group, members=1, timeout_s=60)
        except TimeoutError as error:
            print(f"not back after the test: {error}")


@dataclass(frozen=True)
class Seen:
    topic: str
    key: str | None
    value: bytes | None
    headers: dict[str, bytes]
    record: AvroRecord | None  # None for the raw topics (dead letters)

    @property
    def record_type(self) -> str | None:
        return type(self.record).__name__ if self.record is not None else None


class Watcher:
    """Reads the records published on some topics from the moment it is created on."""

    def __init__(
        self, settings: Settings, registry: SchemaRegistryClient, topics: Iterable[str], raw: Iterable[str] = ()
    ) -> None:
        """`topics` are decoded into records; `raw` ones (dead letters) are kept as bytes."""
        self._consumer = Consumer({**settings.kafka_config(), "group.id": "test-watcher", "enable.auto.commit": False})
        self._codecs = {topic: RecordCodec(registry, topic) for topic in topics}
        assign_from_now(self._consumer, [*self._codecs, *raw])
        self.seen: list[Seen] = []

    def poll(self, seconds: float = 0.2) -> None:
        for message in self._consumer.consume(1000, seconds):
            if message.error():
                raise RuntimeError(message.error())
            key = message.key().decode(errors="replace") if message.key() is not None else None
            codec = self._codecs.get(message.topic())
            record = codec.decode(message.value()) if codec is not None else None
            self.seen.append(Seen(message.topic(), key, message.value(), dict(message.headers() or []), record))

    def wait_until(self, condition: Callable[[list[Seen]], bool], timeout_s: float = 60, what: str = "") -> list[Seen]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if condition(self.seen):
                return self.seen
        raise TimeoutError(f"not seen within {timeout_s}s: {what or condition}; saw {len(self.seen)} records")

    def for_order(self, order_id: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.key == order_id]

    def close(self) -> None:
        self._consumer.close()


def wait_until_handled(
    watcher: Watcher, admin: AdminClient, group: str, topic: str, ends: dict[int, int], timeout_s: float = 60
) -> None:
    """`group` has committed past every record of a produce whose `ProduceReport.ends` is `ends`: it has
    handled them, and whatever they were going to cause has been published."""

    def handled(_: list[Seen]) -> bool:
        done = {tp.partition: tp.offset for tp in committed(admin, group) if tp.topic == topic}
        return all(done.get(partition, 0) >= end for partition, end in ends.items())

    watcher.wait_until(handled, timeout_s=timeout_s, what=f"{group} past what was produced to {topic}")
