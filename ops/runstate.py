"""What a running `oms run all` is doing, in a small file `oms status` reads.

Each supervisor writes `<run_dir>/supervisors/<its instance id>.json` whenever one of its processors starts,
ends, is left stopped, or begins or ends crash-looping, and removes it when it stops cleanly. The file names
the supervisor's pid and that process's start time, so that a file left by a supervisor that was killed is
recognised as stale rather than believed; a live supervisor's file also stops a second `oms run all` from
starting with the same instance id.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RUNNING, RESTARTING, STOPPED = "running", "restarting", "stopped"


@dataclass(frozen=True)
class ChildState:
    processor: str
    instance: str
    state: str
    """running, restarting (after a crash or an outage) or stopped (it finished, or its configuration is wrong)."""
    pid: int | None
    restarts: int
    last_exit: int | None
    detail: str
    """One line for an operator, e.g. "exited 1 (crash 3 in a row); restarts at 10:42:07 UTC"."""
    log_file: str
    crash_looping: bool = False
    """It crashed the policy's number of times within its window; it is still restarted."""

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

    def needing_an_operator(self) -> list[ChildState]:
        """Those left stopped or crash-looping: what keeps them down is not going to pass by itself."""
        return [child for child in self.children if child.state == STOPPED or child.crash_looping]


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
    stopped = sum(1 for child in state.children if child.state == STOPPED)
    looping = sum(1 for child in state.children if child.crash_looping)
    troubles = [f"{stopped} left stopped" if stopped else "", f"{looping} crash-looping" if looping else ""]
    summary = ", ".join(trouble for trouble in troubles if trouble) or "all kept running"
    lines = [f"{'processors':<9} {'up':<9} `oms run all` as instance {state.instance!r}, pid {state.pid}: {summary}"]
    for child in state.children:
        pid = f"pid {child.pid}" if child.pid else "no process"
        shown = "CRASH-LOOP" if child.crash_looping else child.state.upper() if child.state == STOPPED else child.state
        lines.append(f"  {child.label:<22} {shown:<10} {pid:<11} restarts {child.restarts:<3} {child.detail}".rstrip())
        if child.state != RUNNING:
            lines.append(f"  {'':<22} log: {child.log_file}")
    return lines


def processors_report(run_dir: Path) -> tuple[list[str], bool]:
    """What `oms status` prints for every supervisor of `run_dir`, and whether a live one has a processor that
    needs an operator (a stale file's children are not running, but nothing there looks after them either)."""
    lines: list[str] = []
    troubled = False
    for path, state in read_all(run_dir):
        alive = is_alive(state)
        troubled |= alive and bool(state.needing_an_operator())
        lines.extend(report_lines(path, state, alive))
    return lines, troubled
