"""Liveness and readiness (processors/runtime/health.py): what they say, and that they are served."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.runtime.app import make_application
from processors.runtime.health import NO_PARTITIONS, Health, assignment_readiness, beating, report_health, serve
from topology.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_alive_while_the_loop_turns_dead_when_it_stalls() -> None:
    clock = Clock()
    health = Health(stall_after_s=60, clock=clock)
    clock.now += 59
    assert health.alive() is None
    clock.now += 2
    assert health.alive() == "the processing loop has not turned for 61s"
    health.beat()
    assert health.alive() is None


def test_ready_only_when_alive_and_the_check_passes() -> None:
    clock = Clock()
    health = Health(stall_after_s=60, clock=clock)
    assert health.ready() == "starting"
    health.readiness(lambda: None)
    assert health.ready() is None
    clock.now += 120
    assert health.ready() is not None
    health.beat()

    def broken() -> str | None:
        raise RuntimeError("consumer closed")

    health.readiness(broken)
    assert health.ready() == "readiness check failed: consumer closed"


@pytest.fixture
def served() -> Iterator[tuple[Health, str]]:
    health = Health(clock=Clock())
    server = serve("127.0.0.1", 0, health)
    yield health, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_endpoints_answer_next_to_the_metrics(served: tuple[Health, str]) -> None:
    health, url = served
    assert get(f"{url}/healthz") == (200, "ok\n")
    assert get(f"{url}/readyz") == (503, "starting\n")
    health.readiness(lambda: None)
    assert get(f"{url}/readyz") == (200, "ok\n")
    status, metrics = get(f"{url}/metrics")
    assert status == 200 and "python_info" in metrics


def test_a_quix_processor_reports_through_the_steps_its_loop_takes(tmp_path: Path) -> None:
    """The pinned Quix Streams has the private steps `report_health` wraps, and they beat once wrapped."""
    health = Health(clock=Clock())
    app = make_application("oms.health-test", Settings(run_dir=tmp_path))
    turns: list[str] = []
    app._processing_context.commit_checkpoint = lambda *args, **options: turns.append("commit")  # type: ignore[method-assign]
    app._state_manager.do_recovery = lambda: turns.append("recover")  # type: ignore[method-assign]
    report_health(app, health)
    assert health.ready() == "starting"  # not running yet

    for step in (app._processing_context.commit_checkpoint, app._state_manager.do_recovery):
        health._last_beat = -1e9  # a loop that has not turned
        assert health.alive() is not None
        step()
        assert health.alive() is None
    assert turns == ["commit", "recover"]
    assert callable(app._consumer.assignment)


def test_a_plain_client_is_ready_once_its_partitions_are_assigned_and_read_back() -> None:
    """The timers and the tracker read their state back on every assignment: not ready while they do."""
    assert assignment_readiness(set(), set(), "reading timers back") == NO_PARTITIONS
    assert assignment_readiness({0, 1}, {1, 0}, "reading timers back") == "reading timers back: partitions [0, 1]"
    assert assignment_readiness(set(), {2}, "reading its view back") == "reading its view back: partitions [2]"
    assert assignment_readiness({0, 1}, set(), "reading timers back") is None


def test_reading_state_back_counts_as_the_loop_turning() -> None:
    clock = Clock()
    health = Health(stall_after_s=60, clock=clock)
    read = []
    for item in beating(range(3), health):
        clock.now += 50  # each record slow, the whole read longer than the stall limit
        read.append((item, health.alive()))
    assert read == [(0, None), (1, None), (2, None)]
    assert health.alive() is None
    clock.now += 61
    assert health.alive() is not None
