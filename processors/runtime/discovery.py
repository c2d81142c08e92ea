"""How Prometheus finds every running instance: each process announces where it serves its metrics in a
file-based service discovery file (`<run dir>/prometheus/targets/<service>-<instance>.json`), and withdraws it
when it stops. `ops/prometheus/prometheus.yml` reads them all, whatever the number of instances.

A process killed with `kill -9` cannot withdraw: its file stays and Prometheus reports the target down (the
`OmsProcessDown` alert) until the instance is back, which rewrites the same file.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path


def targets_dir(run_dir: Path) -> Path:
    return run_dir / "prometheus" / "targets"


def announce(run_dir: Path, service: str, instance: str, host: str, port: int) -> Path:
    """Write this process's target file (atomically: Prometheus may read at any moment); removed at exit."""
    folder = targets_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{service}-{instance}.json"
    address = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    target = [{"targets": [f"{address}:{port}"], "labels": {"service": service, "instance_id": instance}}]
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(target))
    partial.replace(path)
    atexit.register(withdraw, path)
    return path


def withdraw(path: Path) -> None:
    path.unlink(missing_ok=True)
