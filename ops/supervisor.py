"""`oms run all`: every processor in its own process, restarted if it dies, stopped together on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0)
STOP_TIMEOUT_S = 30.0


@dataclass
class Child:
    name: str
    instance: str
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    env: dict[str, str] = field(default_factory=dict)
    """Added to the inherited environment, e.g. to run another checkout's code (`oms bench --processors-from`)."""
    cwd: Path | None = None
    """Its working directory; None: ours."""

    @property
    def label(self) -> str:
        return f"{self.name}#{self.instance}"

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", "run", self.name],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMS_INSTANCE_ID": self.instance, **self.env},
                cwd=self.cwd,
                # Their own session: a Ctrl-C reaches the supervisor alone, which stops them in order.
                start_new_session=True,
            )
        self.started_at = time.monotonic()


class Supervisor:
    def __init__(self, names: Sequence[str], instances: int, log_dir: Path) -> None:
        self.children = [
            Child(name, str(index), log_dir / f"{name}-{index}.log") for name in names for index in range(instances)
        ]
        self._stopping = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        """Start every processor and keep them running until SIGINT or SIGTERM."""
        self.start()
        while not self.stopping:
            self.tick()
            time.sleep(0.2)
        return self.stop_all()

    def start(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in self.children:
            child.start()
            pid = child.process.pid if child.process else "?"
            print(f"started {child.label} (pid {pid}), log {child.log_file}")

    @property
    def stopping(self) -> bool:
        return self._stopping

    def tick(self) -> None:
        """Restart processors that died, after a backoff."""
        if not self._stopping:
            self._restart_the_dead()

    def _restart_the_dead(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.process is None:
                if now >= child.next_start:
                    child.start()
                    print(f"restarted {child.label} (pid {child.process.pid if child.process else '?'})")
                continue
            code = child.process.poll()
            if code is None:
                continue
            if now - child.started_at > 60:
                child.restarts = 0  # it ran a good while: start the backoff afresh
            delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
            child.restarts += 1
            child.process = None
            child.next_start = now + delay
            print(f"{child.label} exited with {code}; restarting in {delay:.0f}s (see {child.log_file})")

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
        print(f"stopped {len(running)} processor(s)")
        return 0
