"""What a running `oms run all` is doing, in a small file `oms status` reads.

Each supervisor writes `<run_dir>/supervisors/<its instance id>.json` whenever one of its processors starts,
ends or is given up on, and removes it when it stops cleanly. The file names the supervisor's pid and that
process's start time, so that a file left by a supervisor that was killed is recognised as stale rather than
believed; a live supervisor's file also stops a second `oms run all` from starting with the same instance id.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RUNNING, RESTARTING, GIVEN_UP = "running", "restarting", "given-up"


@dataclass(frozen=True)
class ChildState:
    processor: str
    instance: str
    state: str
    """running, restarting (after a crash or an outage) or given-up (crash-looping, left stopped)."""
    pid: int | None
    restarts: int
    last_exit: int | None
    detail: str
    """One line for an operator, e.g. "crashed 5 times within 300s; last exit 1"."""
    log_file: str

    @property
    def label(self) -> str:
        return f"{self.processor}#{self.instance}"


@dataclass(frozen=True)
class SupervisorState:
    instance: str
    pid: int
    started: int | None
    """The process's start time (`/proc/<pid>/stat`), telling it from a later process given the same pid."""
    children: tuple[ChildState, ...]

    def given_up(self) -> list[ChildState]:
        return [child for child in self.children if child.state == GIVEN_UP]


def state_file(run_dir: Path, instance: str) -> Path:
    return run_dir / "supervisors" / f"{instance}.json"


def write(path: Path, state: SupervisorState) -> None:
    """Replace `path` at once, so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(asdict(state), indent=1) + "\n")
    partial.replace(path)


def read(path: Path) -> SupervisorState | None:
    try:
        data = json.loads(path.read_text())
        children = tuple(ChildState(**child) for child in data.pop("children"))
        return SupervisorState(**data, children=children)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def read_all(run_dir: Path) -> list[tuple[Path, SupervisorState]]:
    found = ((path, read(path)) for path in sorted((run_dir / "supervisors").glob("*.json")))
    return [(path, state) for path, state in found if state is not None]


def is_alive(state: SupervisorState) -> bool:
    """Whether the supervisor that wrote `state` still runs (not another process that got its pid since)."""
    started = start_time(state.pid)
    if started is None:
        return False
    return state.started is None or started == state.started


def start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot; None when no such process runs. Where there is no
    /proc, any start time: only whether the pid exists."""
    if not Path("/proc/self/stat").exists():
        return _exists(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces; starttime is field 22.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _exists(pid: int) -> int | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return 0


def report_lines(path: Path, state: SupervisorState, alive: bool) -> list[str]:
    """What `oms status` prints for one supervisor."""
    if not alive:
        return [f"{'processors':<9} {'stopped':<9} stale {path}: its supervisor (pid {state.pid}) is gone"]
    given_up = len(state.given_up())
    summary = f"{given_up} given up (crash-looping)" if given_up else "all kept running"
    lines = [f"{'processors':<9} {'up':<9} `oms run all` as instance {state.instance!r}, pid {state.pid}: {summary}"]
    for child in state.children:
        pid = f"pid {child.pid}" if child.pid else "no process"
        shown = "GIVEN UP" if child.state == GIVEN_UP else child.state
        lines.append(f"  {child.label:<22} {shown:<10} {pid:<11} restarts {child.restarts:<3} {child.detail}".rstrip())
        if child.state != RUNNING:
            lines.append(f"  {'':<22} log: {child.log_file}")
    return lines


def processors_report(run_dir: Path) -> tuple[list[str], bool]:
    """What `oms status` prints for every supervisor of `run_dir`, and whether a live one gave up on a processor
    (a stale file's children are not running, but neither is anything there to give up on them)."""
    lines: list[str] = []
    given_up = False
    for path, state in read_all(run_dir):
        alive = is_alive(state)
        given_up |= alive and bool(state.given_up())
        lines.extend(report_lines(path, state, alive))
    return lines, given_up
