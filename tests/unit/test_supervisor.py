"""The supervisor's restart policy (pure), its children's ids, its status file, and its children's ownership,
with cheap child commands instead of processors: no broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from ops import runstate
from ops.restarts import CRASH_BACKOFF_S, OUTAGE_BACKOFF_S, ExitHistory, GiveUp, Restart, RestartPolicy, after_exit
from ops.supervisor import AlreadyRunning, Child, Supervisor, child_instance_ids
from processors.runtime.errors import OUTAGE_EXIT_CODE
from processors.runtime.metrics import SUPERVISOR_GIVEN_UP, SUPERVISOR_RESTARTS

POLICY = RestartPolicy(max_crashes=5, window_s=300)
BRIEFLY_S = 1.0


def exits(codes_at: list[tuple[float, int]], policy: RestartPolicy = POLICY) -> list[Restart | GiveUp]:
    """The decision after each exit (time, code) of one processor that ran BRIEFLY_S each time."""
    history = ExitHistory()
    decisions: list[Restart | GiveUp] = []
    for now, code in codes_at:
        history, decision = after_exit(policy, history, code, now, ran_for_s=BRIEFLY_S)
        decisions.append(decision)
    return decisions


def test_the_fifth_crash_within_five_minutes_gives_up() -> None:
    decisions = exits([(at, 1) for at in (0, 10, 20, 30, 40)])

    assert decisions[:4] == [Restart(delay, outage=False) for delay in CRASH_BACKOFF_S]
    assert decisions[4] == GiveUp(crashes=5, window_s=300)


def test_crashes_spread_wider_than_the_window_are_restarted_for_ever() -> None:
    decisions = exits([(at * 100.0, 1) for at in range(20)])

    assert all(isinstance(decision, Restart) for decision in decisions)


def test_crashes_that_left_the_window_no_longer_count() -> None:
    decisions = exits([(0, 1), (1, 1), (2, 1), (3, 1), (400, 1), (401, 1)])

    assert decisions[-1] == Restart(CRASH_BACKOFF_S[1], outage=False), "only 400 and 401 are within 300s of 401"


def test_any_unasked_exit_but_an_outage_is_a_crash_signals_and_zero_included() -> None:
    decisions = exits([(0, 1), (1, -signal.SIGKILL), (2, 0), (3, 2)], RestartPolicy(max_crashes=4, window_s=60))

    assert decisions[-1] == GiveUp(crashes=4, window_s=60)


def test_outage_exits_are_restarted_with_backoff_and_never_counted_as_crashes() -> None:
    decisions = exits([(at, OUTAGE_EXIT_CODE) for at in range(50)])

    assert decisions[: len(OUTAGE_BACKOFF_S)] == [Restart(delay, outage=True) for delay in OUTAGE_BACKOFF_S]
    assert decisions[-1] == Restart(OUTAGE_BACKOFF_S[-1], outage=True)


def test_outages_between_crashes_neither_count_nor_forgive_them() -> None:
    crash, outage = 1, OUTAGE_EXIT_CODE
    decisions = exits([(0, crash), (1, outage), (2, crash), (3, outage), (4, outage), (5, crash)], RestartPolicy(3, 60))

    assert [type(decision) for decision in decisions] == [Restart] * 5 + [GiveUp]


def test_an_outage_after_a_long_run_starts_its_backoff_afresh() -> None:
    history = ExitHistory()
    for now in range(3):
        history, _ = after_exit(POLICY, history, OUTAGE_EXIT_CODE, now, ran_for_s=BRIEFLY_S)

    _, decision = after_exit(POLICY, history, OUTAGE_EXIT_CODE, 500, ran_for_s=400)

    assert decision == Restart(OUTAGE_BACKOFF_S[0], outage=True)


def test_children_take_their_ids_from_the_supervisors() -> None:
    assert child_instance_ids(None, 1) == ["0"]
    assert child_instance_ids(None, 3) == ["0", "1", "2"]
    assert child_instance_ids("oms-1", 1) == ["oms-1"]
    assert child_instance_ids("oms-1", 2) == ["oms-1-0", "oms-1-1"]


def test_two_supervisors_given_different_ids_share_no_file(tmp_path: Path) -> None:
    from topology.settings import Settings

    settings = Settings(run_dir=tmp_path, supervisor_metrics_port=0)
    first = Supervisor.for_processors(["intake", "tracker"], 2, settings, given="a")
    second = Supervisor.for_processors(["intake", "tracker"], 2, settings, given="b")

    def files(supervisor: Supervisor) -> set[Path | None]:
        return {supervisor.state_file, *(child.log_file for child in supervisor.children)}

    assert not files(first) & files(second)
    assert {child.instance for child in first.children} == {"a-0", "a-1"}
    assert first.children[0].log_file == tmp_path / "logs" / "intake-a-0.log"


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def supervisor_of(tmp_path: Path, *commands: tuple[str, list[str]], policy: RestartPolicy) -> Supervisor:
    children = [Child(name, "t", tmp_path / f"{name}.log", command=command) for name, command in commands]
    return Supervisor(children, instance="t", policy=policy, state_file=runstate.state_file(tmp_path, "t"))


def tick_until(supervisor: Supervisor, condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        supervisor.tick()
        time.sleep(0.05)


def test_a_crash_looping_child_is_given_up_in_the_status_file_and_metrics(tmp_path: Path) -> None:
    supervisor = supervisor_of(
        tmp_path,
        ("crashy", python("raise SystemExit(1)")),
        ("steady", python("import time; time.sleep(60)")),
        policy=RestartPolicy(max_crashes=2, window_s=60),
    )
    supervisor.start()
    try:
        tick_until(supervisor, lambda: supervisor.children[0].given_up)
        crashy, steady = supervisor.children

        state = runstate.read(runstate.state_file(tmp_path, "t"))
        assert state is not None and runstate.is_alive(state)
        assert [(child.label, child.last_exit) for child in state.given_up()] == [("crashy#t", 1)]
        assert crashy.process is None and steady.process is not None and steady.process.poll() is None
        assert SUPERVISOR_GIVEN_UP.labels("crashy")._value.get() == 1
        assert SUPERVISOR_RESTARTS.labels("crashy", "crash")._value.get() == 1

        lines, given_up = runstate.processors_report(tmp_path)
        assert given_up
        assert any("crashy#t" in line and "GIVEN UP" in line and "crash-looping" in line for line in lines)
    finally:
        supervisor.stop_all()
    assert not runstate.state_file(tmp_path, "t").exists()
    assert runstate.processors_report(tmp_path) == ([], False)


def test_a_child_ending_for_an_outage_is_restarted_not_given_up(tmp_path: Path) -> None:
    supervisor = supervisor_of(
        tmp_path, ("flaky", python(f"raise SystemExit({OUTAGE_EXIT_CODE})")), policy=RestartPolicy(1, 60)
    )
    before = SUPERVISOR_RESTARTS.labels("flaky", "outage")._value.get()
    supervisor.start()
    try:
        tick_until(supervisor, lambda: SUPERVISOR_RESTARTS.labels("flaky", "outage")._value.get() > before)

        assert not supervisor.children[0].given_up
        assert supervisor.children[0].history.crashes == ()
    finally:
        supervisor.stop_all()


def test_a_second_supervisor_with_the_same_id_refuses_to_start_unless_the_first_is_gone(tmp_path: Path) -> None:
    other = subprocess.Popen(python("import time; time.sleep(60)"))
    try:
        state = runstate.SupervisorState("t", other.pid, runstate.start_time(other.pid), ())
        runstate.write(runstate.state_file(tmp_path, "t"), state)

        with pytest.raises(AlreadyRunning, match="another OMS_INSTANCE_ID"):
            supervisor_of(tmp_path, policy=POLICY).start()
    finally:
        other.kill()
        other.wait()
    supervisor = supervisor_of(tmp_path, policy=POLICY)
    supervisor.start()
    supervisor.stop_all()


def test_a_state_file_is_stale_once_its_pid_is_another_process(tmp_path: Path) -> None:
    started = runstate.start_time(os.getpid())
    assert started is not None

    assert runstate.is_alive(runstate.SupervisorState("t", os.getpid(), started, ()))
    assert not runstate.is_alive(runstate.SupervisorState("t", os.getpid(), started - 1, ()))


def is_running(pid: int) -> bool:
    """A zombie (ended, not yet reaped by whoever inherited it) is not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


PARENT = """
import sys, time
from pathlib import Path
from ops.supervisor import Child
child = Child("sleeper", "t", Path(sys.argv[1]), command=["sleep", "60"])
child.start()
print(child.process.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_child_dies_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen([*python(PARENT), str(tmp_path / "sleeper.log")], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert is_running(child)

    parent.kill()
    parent.wait()

    deadline = time.monotonic() + 10
    while is_running(child):
        if time.monotonic() > deadline:
            os.kill(child, signal.SIGKILL)
            pytest.fail(f"child {child} outlived its killed parent")
        time.sleep(0.05)


def test_a_supervisor_announces_its_metrics_to_prometheus(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port free right now, for its metrics
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    supervisor = Supervisor([], instance="t", metrics_port=port, run_dir=tmp_path)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        supervisor.start()
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])

    target = json.loads((tmp_path / "prometheus" / "targets" / "supervisor-t.json").read_text())
    assert target == [{"targets": [f"127.0.0.1:{port}"], "labels": {"service": "supervisor", "instance_id": "t"}}]
    assert b"oms_supervisor_given_up" in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read()
