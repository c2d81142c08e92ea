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
from ops.restarts import (
    CRASH_BACKOFF_CAP_S,
    OUTAGE_BACKOFF_S,
    ExitHistory,
    Restart,
    RestartPolicy,
    StayDown,
    after_exit,
    crash_looping,
)
from ops.supervisor import AlreadyRunning, Child, Supervisor, child_instance_ids
from processors.runtime.errors import CONFIG_EXIT_CODE, OUTAGE_EXIT_CODE
from processors.runtime.metrics import SUPERVISOR_CRASH_LOOPING, SUPERVISOR_RESTARTS, SUPERVISOR_STOPPED

POLICY = RestartPolicy(max_crashes=5, window_s=300)
BRIEFLY_S = 1.0


def exits(codes_at: list[tuple[float, int]], policy: RestartPolicy = POLICY) -> list[Restart | StayDown]:
    """The decision after each exit (time, code) of one processor that ran BRIEFLY_S each time."""
    return [decision for _, decision in histories(codes_at, policy)]


def histories(
    codes_at: list[tuple[float, int]], policy: RestartPolicy = POLICY
) -> list[tuple[ExitHistory, Restart | StayDown]]:
    history = ExitHistory()
    decisions: list[tuple[ExitHistory, Restart | StayDown]] = []
    for now, code in codes_at:
        history, decision = after_exit(policy, history, code, now, ran_for_s=BRIEFLY_S)
        decisions.append((history, decision))
    return decisions


def test_crashes_are_restarted_for_ever_with_a_backoff_that_doubles_up_to_its_cap() -> None:
    decisions = exits([(at, 1) for at in range(12)])

    assert decisions[:4] == [Restart(delay, outage=False) for delay in (1.0, 2.0, 4.0, 8.0)]
    assert decisions[-1] == Restart(CRASH_BACKOFF_CAP_S, outage=False)
    assert all(isinstance(decision, Restart) for decision in decisions)


def test_a_kill_is_a_crash() -> None:
    assert exits([(0, -signal.SIGKILL)]) == [Restart(1.0, outage=False)]


def test_a_crash_after_a_long_run_starts_its_backoff_afresh() -> None:
    history = ExitHistory()
    for now in range(5):
        history, _ = after_exit(POLICY, history, 1, now, ran_for_s=BRIEFLY_S)

    _, decision = after_exit(POLICY, history, 1, 500, ran_for_s=400)

    assert decision == Restart(1.0, outage=False)


def test_the_fifth_crash_within_five_minutes_makes_it_crash_looping_until_they_leave_the_window() -> None:
    (*_, (fourth, _), (fifth, _)) = histories([(at, 1) for at in (0, 10, 20, 30, 40)])

    assert crash_looping(POLICY, fourth, 40) == 0
    assert crash_looping(POLICY, fifth, 40) == 5
    assert crash_looping(POLICY, fifth, 305) == 0, "the crash at 0 left the window: four are not five"


def test_crashes_spread_wider_than_the_window_never_make_it_crash_looping() -> None:
    for history, decision in histories([(at * 100.0, 1) for at in range(20)]):
        assert isinstance(decision, Restart)
        assert crash_looping(POLICY, history, max(history.crashes)) == 0


def test_a_processor_that_finished_or_whose_configuration_is_wrong_stays_down_with_its_reason() -> None:
    finished, configured, refused = exits([(0, 0), (1, CONFIG_EXIT_CODE), (2, 2)])

    assert isinstance(finished, StayDown) and "finished" in finished.reason
    assert isinstance(configured, StayDown) and "configuration" in configured.reason
    assert isinstance(refused, StayDown) and "configuration" in refused.reason


def test_outage_exits_are_restarted_with_backoff_and_never_counted_as_crashes() -> None:
    decided = histories([(at, OUTAGE_EXIT_CODE) for at in range(50)])

    assert [decision for _, decision in decided[: len(OUTAGE_BACKOFF_S)]] == [
        Restart(delay, outage=True) for delay in OUTAGE_BACKOFF_S
    ]
    assert decided[-1] == (ExitHistory(outages_in_a_row=50), Restart(OUTAGE_BACKOFF_S[-1], outage=True))


def test_outages_between_crashes_neither_count_nor_forgive_them() -> None:
    crash, outage = 1, OUTAGE_EXIT_CODE
    decided = histories([(0, crash), (1, outage), (2, crash), (3, outage), (4, outage), (5, crash)])

    history, decision = decided[-1]
    assert decision == Restart(4.0, outage=False), "the third crash in a row"
    assert crash_looping(RestartPolicy(3, 60), history, 5) == 3


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


def test_a_crash_looping_child_is_restarted_and_named_in_the_status_file_and_metrics(tmp_path: Path) -> None:
    supervisor = supervisor_of(
        tmp_path,
        ("crashy", python("raise SystemExit(1)")),
        ("steady", python("import time; time.sleep(60)")),
        policy=RestartPolicy(max_crashes=2, window_s=60),
    )
    supervisor.start()
    try:
        tick_until(supervisor, lambda: supervisor.children[0].crashes_in_window > 0)
        crashy, steady = supervisor.children

        state = runstate.read(runstate.state_file(tmp_path, "t"))
        assert state is not None and runstate.is_alive(state)
        assert [(child.label, child.last_exit) for child in state.needing_an_operator()] == [("crashy#t", 1)]
        assert not crashy.stays_down and isinstance(crashy.next, Restart)
        assert steady.process is not None and steady.process.poll() is None
        assert SUPERVISOR_CRASH_LOOPING.labels("crashy")._value.get() == 1

        lines, troubled = runstate.processors_report(tmp_path)
        assert troubled
        assert any("crashy#t" in line and "CRASH-LOOP" in line and "crashed 2 times" in line for line in lines)
        tick_until(supervisor, lambda: SUPERVISOR_RESTARTS.labels("crashy", "crash")._value.get() >= 2)
    finally:
        supervisor.stop_all()
    assert not runstate.state_file(tmp_path, "t").exists()
    assert runstate.processors_report(tmp_path) == ([], False)


def test_a_child_whose_configuration_is_wrong_stays_down_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    says = "print('oms: settings that do not parse: OMS_X', file=sys.stderr)"
    wrong = f"import sys; {says}; sys.exit({CONFIG_EXIT_CODE})"
    supervisor = supervisor_of(tmp_path, ("misconfigured", python(wrong)), policy=POLICY)
    before = SUPERVISOR_RESTARTS.labels("misconfigured", "crash")._value.get()
    supervisor.start()
    try:
        tick_until(supervisor, lambda: supervisor.children[0].stays_down)
        for _ in range(5):
            supervisor.tick()

        assert supervisor.children[0].process is None
        assert SUPERVISOR_RESTARTS.labels("misconfigured", "crash")._value.get() == before
        assert SUPERVISOR_STOPPED.labels("misconfigured")._value.get() == 1
        assert "misconfigured#t left stopped: a configuration error" in capsys.readouterr().out
        assert "oms: settings that do not parse: OMS_X" in (tmp_path / "misconfigured.log").read_text()
        lines, troubled = runstate.processors_report(tmp_path)
        assert troubled and any("misconfigured#t" in line and "STOPPED" in line for line in lines)
    finally:
        supervisor.stop_all()


def test_a_child_ending_for_an_outage_is_restarted_not_counted_as_a_crash(tmp_path: Path) -> None:
    supervisor = supervisor_of(
        tmp_path, ("flaky", python(f"raise SystemExit({OUTAGE_EXIT_CODE})")), policy=RestartPolicy(1, 60)
    )
    before = SUPERVISOR_RESTARTS.labels("flaky", "outage")._value.get()
    supervisor.start()
    try:
        tick_until(supervisor, lambda: SUPERVISOR_RESTARTS.labels("flaky", "outage")._value.get() > before)

        assert supervisor.children[0].crashes_in_window == 0
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
    assert b"oms_supervisor_crash_looping" in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read()
