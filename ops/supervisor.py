"""`oms run all`: every processor in its own process, restarted if it dies, stopped together on a signal.

- **Identity.** The supervisor runs as the instance id it is given (`OMS_INSTANCE_ID`), and its children take
  theirs from it (`child_instance_ids`): two supervisors given different ids never share a transactional id,
  a state folder, a log file or a status file. Without one, children are numbered 0, 1, ... as before.
- **Restarts.** A child that crashes or meets an outage is started again after a backoff, for ever; one that
  finished or whose configuration is wrong is left stopped (`ops/restarts.py`). Both, and a child that
  crash-loops, are said in this process's output, in its metrics and in the status file `oms status` reads
  (`ops/runstate.py`).
- **Ownership.** Children die with the supervisor, however it ends (a parent-death signal, Linux), so that a
  `kill -9` of it leaves no processor consuming on its own.
"""

from __future__ import annotations

import ctypes
import datetime
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ops import runstate
from ops.localserver import PlatformError
from ops.restarts import ExitHistory, Restart, RestartPolicy, StayDown, after_exit, crash_looping
from processors.runtime.discovery import announce
from processors.runtime.identity import instance_number
from processors.runtime.metrics import (
    SUPERVISOR_CRASH_LOOPING,
    SUPERVISOR_RESTARTS,
    SUPERVISOR_STOPPED,
    serve_metrics,
)
from topology.settings import Settings

STOP_TIMEOUT_S = 30.0
TICK_S = 0.2
SUPERVISOR_METRICS_PORT = 9399
"""Below the processors' 9400 + place: `oms run all` as a whole."""
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class AlreadyRunning(PlatformError):
    """Another supervisor runs as the same instance id: its children and ours would fence each other."""


@dataclass
class Child:
    name: str
    instance: str
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Added to the inherited environment, e.g. to run another checkout's code (`oms bench --processors-from`)."""
    cwd: Path | None = None
    """Its working directory; None: ours."""
    command: list[str] | None = None
    """What to run; None: `oms run NAME`."""
    started_at: float = 0.0
    restarts: int = 0
    history: ExitHistory = field(default_factory=ExitHistory)
    last_exit: int | None = None
    next: Restart | StayDown | None = None
    """What follows its last exit: a restart at `next_start`, or nothing."""
    next_start: float = 0.0
    crashes_in_window: int = 0
    """How often it crashed within the policy's window, once that makes it crash-looping; else 0."""

    @property
    def label(self) -> str:
        return f"{self.name}#{self.instance}"

    @property
    def stays_down(self) -> bool:
        return isinstance(self.next, StayDown)

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self.command or [sys.executable, "-m", "ops.cli", "run", self.name],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMS_INSTANCE_ID": self.instance, **self.env},
                cwd=self.cwd,
                # Their own session: a Ctrl-C reaches the supervisor alone, which stops them in order.
                start_new_session=True,
                preexec_fn=dies_with_parent(),
            )
        self.started_at = time.monotonic()


def dies_with_parent() -> Callable[[], None] | None:
    """Run in the child before it executes its command: the kernel kills it when this process ends, however
    it ends. SIGKILL rather than SIGTERM: with its supervisor gone nobody would finish a stop that hangs, and
    exactly-once makes a killed processor as safe as any crash. The kernel sends it when the *thread* that
    started the child ends, so children are started from the main thread. Without prctl (not Linux): None."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    # Resolved here, before the fork: the child only calls it.
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)  # the parent ended before the signal was armed: none will come

    return arm


def child_instance_ids(given: str | None, instances: int) -> list[str]:
    """The children's ids: the supervisor's own when it runs one of each processor, `<given>-<n>` for several;
    without an id given, 0, 1, ... (the numbered instances whose metrics ports are known)."""
    if given is None:
        return [str(index) for index in range(instances)]
    if instances == 1:
        return [given]
    return [f"{given}-{index}" for index in range(instances)]


def supervisor_metrics_port(settings: Settings, instance: str) -> int | None:
    """`OMS_SUPERVISOR_METRICS_PORT` when set (0: none); else 9399, plus 100 per numbered instance."""
    if settings.supervisor_metrics_port is not None:
        return settings.supervisor_metrics_port or None
    return SUPERVISOR_METRICS_PORT + 100 * (instance_number(instance) or 0)


class Supervisor:
    def __init__(
        self,
        children: Sequence[Child],
        instance: str = "0",
        policy: RestartPolicy | None = None,
        state_file: Path | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        run_dir: Path | None = None,
    ) -> None:
        self.children = list(children)
        self.instance = instance
        self.policy = policy or RestartPolicy()
        self.state_file = state_file
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.run_dir = run_dir  # where it announces its metrics to Prometheus, if anywhere
        self._stopping = False

    @classmethod
    def for_processors(
        cls,
        names: Sequence[str],
        instances: int,
        settings: Settings,
        given: str | None = None,
        count: Callable[[str, int], int] | None = None,
    ) -> Supervisor:
        """`names`, `instances` of each (or `count(name, instances)`), as the instance id `given` (default:
        `OMS_INSTANCE_ID`, if set)."""
        given = given if given is not None else os.environ.get("OMS_INSTANCE_ID")
        instance = given if given is not None else "0"
        log_dir = settings.run_dir / "logs"
        return cls(
            [
                Child(name, child, log_dir / f"{name}-{child}.log")
                for name in names
                for child in child_instance_ids(given, count(name, instances) if count else instances)
            ],
            instance=instance,
            policy=RestartPolicy(settings.supervisor_max_crashes, settings.supervisor_crash_window_s),
            state_file=runstate.state_file(settings.run_dir, instance),
            metrics_port=supervisor_metrics_port(settings, instance),
            metrics_host=settings.metrics_host,
            run_dir=settings.run_dir,
        )

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        """Start every processor and keep them running until SIGINT or SIGTERM."""
        self.start()
        while not self.stopping:
            self.tick()
            time.sleep(TICK_S)
        return self.stop_all()

    def start(self) -> None:
        self._refuse_a_twin()
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        served = serve_metrics(self.metrics_host, self.metrics_port)
        if served and self.metrics_port is not None and self.run_dir is not None:
            announce(self.run_dir, "supervisor", self.instance, self.metrics_host, self.metrics_port)
        for child in self.children:
            # Every series exists from the start, so that rates and alerts see a zero before the first restart.
            SUPERVISOR_CRASH_LOOPING.labels(child.name).set(0)
            SUPERVISOR_STOPPED.labels(child.name).set(0)
            for reason in ("crash", "outage"):
                SUPERVISOR_RESTARTS.labels(child.name, reason)
        for child in self.children:
            child.start()
            pid = child.process.pid if child.process else "?"
            print(f"started {child.label} (pid {pid}), log {child.log_file}")
        self._write_state()

    def _refuse_a_twin(self) -> None:
        if self.state_file is None:
            return
        other = runstate.read(self.state_file)
        if other is not None and other.pid != os.getpid() and runstate.is_alive(other):
            raise AlreadyRunning(
                f"`oms run all` already runs as instance {self.instance!r} (pid {other.pid}, {self.state_file}); "
                "their processors would fence each other. Give this one another OMS_INSTANCE_ID."
            )

    @property
    def stopping(self) -> bool:
        return self._stopping

    def tick(self) -> None:
        """Restart processors that ended, after a backoff, unless a restart would not help; tell which
        crash-loop."""
        if self._stopping:
            return
        now = time.monotonic()
        changed = False
        for child in self.children:
            changed |= self._looping(child, now)
            if child.stays_down:
                continue
            if child.process is None:
                if now >= child.next_start:
                    self._restart(child)
                    changed = True
            elif child.process.poll() is not None:
                self._ended(child, now)
                changed = True
        if changed:
            self._write_state()

    def _ended(self, child: Child, now: float) -> None:
        assert child.process is not None
        code = child.process.returncode
        child.process = None
        child.last_exit = code
        child.history, child.next = after_exit(self.policy, child.history, code, now, now - child.started_at)
        if isinstance(child.next, StayDown):
            SUPERVISOR_STOPPED.labels(child.name).inc()
            print(f"{child.label} left stopped: {child.next.reason}. {last_words(child.log_file)}")
            return
        self._looping(child, now)
        child.next_start = now + child.next.delay_s
        why = "an outage outlasted its retries, not counted as a crash" if child.next.outage else "a crash"
        delay = child.next.delay_s
        print(f"{child.label} exited with {code} ({why}); restarting in {delay:.0f}s (see {child.log_file})")

    def _looping(self, child: Child, now: float) -> bool:
        """Whether the child's crash-looping changed: it began, or its crashes left the window."""
        crashes = crash_looping(self.policy, child.history, now)
        if bool(crashes) == bool(child.crashes_in_window):
            child.crashes_in_window = crashes
            return False
        child.crashes_in_window = crashes
        SUPERVISOR_CRASH_LOOPING.labels(child.name).inc(1 if crashes else -1)
        if crashes:
            print(
                f"{child.label} crashed {crashes} times within {self.policy.window_s:.0f}s: crash-looping; "
                f"still restarted, with backoff (see {child.log_file})"
            )
        else:
            print(f"{child.label} no longer crash-looping")
        return True

    def _restart(self, child: Child) -> None:
        reason = "outage" if isinstance(child.next, Restart) and child.next.outage else "crash"
        child.start()
        child.restarts += 1
        SUPERVISOR_RESTARTS.labels(child.name, reason).inc()
        print(f"restarted {child.label} (pid {child.process.pid if child.process else '?'})")

    def stop_all(self) -> int:
        running = [child for child in self.children if child.process and child.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                print(f"{child.label} did not stop within {STOP_TIMEOUT_S:.0f}s and was killed")
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)
        print(f"stopped {len(running)} processor(s)")
        return 0

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        state = runstate.SupervisorState(
            self.instance, os.getpid(), runstate.start_time(os.getpid()), tuple(map(self._child_state, self.children))
        )
        runstate.write(self.state_file, state)

    def _child_state(self, child: Child) -> runstate.ChildState:
        code = child.last_exit
        if isinstance(child.next, StayDown):
            state = runstate.STOPPED
            detail = f"{child.next.reason}; not restarted"
        elif child.process is None and isinstance(child.next, Restart):
            state = runstate.RESTARTING
            at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
                seconds=max(0.0, child.next_start - time.monotonic())
            )
            why = "an outage" if child.next.outage else f"crash {child.history.crashes_in_a_row} in a row"
            detail = f"exited {code} ({why}); restarts at {at:%H:%M:%S} UTC"
        else:
            state = runstate.RUNNING
            detail = f"last exit {code}" if code is not None else ""
        if child.crashes_in_window:
            detail = f"crashed {child.crashes_in_window} times within {self.policy.window_s:.0f}s; {detail}"
        pid = child.process.pid if child.process else None
        return runstate.ChildState(
            child.name,
            child.instance,
            state,
            pid,
            child.restarts,
            code,
            detail,
            str(child.log_file),
            crash_looping=bool(child.crashes_in_window),
        )


def last_words(log_file: Path) -> str:
    """The last line the process wrote, which says why it ended (an `oms` error is one line)."""
    try:
        with log_file.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
            lines = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return f"Its last words: {lines[-1].strip()[:300]}" if lines else f"See {log_file}."
