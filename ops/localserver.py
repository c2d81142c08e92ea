"""Run a server as a background process owned by a pid file: start once, report, stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class PlatformError(RuntimeError):
    """Something stops the local platform from starting or stopping; the message says what to do."""


@dataclass(frozen=True)
class ServerStatus:
    name: str
    pid: int | None
    answering: bool
    address: str
    log_file: Path
    note: str = ""

    @property
    def running(self) -> bool:
        return self.pid is not None


@dataclass
class LocalServer:
    name: str
    host: str
    port: int
    run_dir: Path
    # Identifies our process in /proc/<pid>/cmdline, so a recycled pid is never mistaken for it.
    cmdline_marker: str
    build_command: Callable[[], list[str]]
    is_ready: Callable[[], bool]
    start_timeout_s: float = 120.0
    environment: dict[str, str] = field(default_factory=dict)
    # The setting (its variable) that chooses each port the server listens on: `port` and any other (a
    # controller's), so that a port taken by someone else names what to change.
    port_settings: dict[int, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ports(self) -> list[int]:
        """Every port the server listens on, its address's first."""
        return [self.port, *(port for port in self.port_settings if port != self.port)]

    def _port_advice(self, port: int, advice: str) -> str:
        """`advice` naming the setting that chooses `port`, or nothing when no setting does."""
        setting = self.port_settings.get(port)
        return advice.format(setting) if setting else ""

    def running_pid(self) -> int | None:
        """The pid of our live process, or None (a stale pid file is not a live process)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None
        return pid if self.cmdline_marker in cmdline else None

    def status(self) -> ServerStatus:
        pid = self.running_pid()
        note = ""
        if pid is None and self.pid_file.exists():
            note = f"stale pid file {self.pid_file}"
        elif pid is None and port_is_open(self.host, self.port):
            note = f"port {self.port} is taken by a process that is not ours" + self._port_advice(
                self.port, " ({} chooses another)"
            )
        return ServerStatus(self.name, pid, pid is not None and self.is_ready(), self.address, self.log_file, note)

    def start(self) -> str:
        """Start the server unless it runs already; wait until it answers. Returns what happened."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        pid = self.running_pid()
        if pid is not None:
            self._wait_until_ready(pid)
            return f"{self.name} already running (pid {pid}) on {self.address}"
        notes = []
        if self.pid_file.exists():
            self.pid_file.unlink()
            notes.append("removed a stale pid file")
        for port in self.ports:
            if port_is_open(self.host, port):
                raise PlatformError(
                    f"cannot start {self.name}: port {port} on {self.host} is taken by another process "
                    f"that {self.pid_file} does not name. Stop that process (e.g. `ss -ltnp | grep {port}`) "
                    "and run again" + self._port_advice(port, ", or set {} to a free port") + "."
                )
        command = self.build_command()
        started = time.monotonic()
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=self.run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.environment},
            )
        self.pid_file.write_text(f"{process.pid}\n")
        self._wait_until_ready(process.pid, process)
        took = time.monotonic() - started
        notes.insert(0, f"{self.name} started (pid {process.pid}) on {self.address} in {took:.1f}s")
        return "; ".join(notes)

    def stop(self, timeout_s: float = 30.0) -> str:
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return f"{self.name} is not running"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not _wait_for(lambda: not _alive(pid), timeout_s):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_for(lambda: not _alive(pid), 10.0)
        self.pid_file.unlink(missing_ok=True)
        # The port is free once the process is gone, so that a start right after this one succeeds.
        _wait_for(lambda: not port_is_open(self.host, self.port), 10.0)
        return f"{self.name} stopped (pid {pid})"

    def _wait_until_ready(self, pid: int, process: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            exited = process.poll() is not None if process is not None else not _alive(pid)
            if exited:
                self.pid_file.unlink(missing_ok=True)
                raise PlatformError(
                    f"{self.name} exited while starting; last lines of {self.log_file}:\n" + self.log_tail()
                )
            if self.is_ready():
                return
            time.sleep(0.5)
        raise PlatformError(
            f"{self.name} (pid {pid}) did not answer on {self.address} within {self.start_timeout_s:.0f}s; "
            f"it is left running for inspection. Last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def port_is_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()
