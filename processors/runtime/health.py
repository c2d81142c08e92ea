"""Whether a process is alive and ready, for whoever runs it (Kubernetes probes, a supervisor, an operator).

- alive (`/healthz`): its processing loop went round within the last `stall_after_s`. A loop stuck in a call
  that never returns is dead even though the process runs: restart it.
- ready (`/readyz`): it has partitions assigned and their state restored, so it is doing its share.

Both are served next to `/metrics` on the process's metrics port (`serve`). The loop reports by calling
`HEALTH.beat()`; what "ready" means is given once by `HEALTH.readiness(check)`: a check that returns None
when ready, or why not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from quixstreams import Application

logger = logging.getLogger(__name__)

STALL_AFTER_S = 60.0
NO_PARTITIONS = "no partitions assigned (more instances than partitions, or a rebalance)"
T = TypeVar("T")
Readiness = Callable[[], str | None]
"""None when ready; otherwise why not, in words."""


class Health:
    def __init__(self, stall_after_s: float = STALL_AFTER_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._stall_after_s = stall_after_s
        self._clock = clock
        self._last_beat = clock()
        self._readiness: Readiness = lambda: "starting"

    def beat(self) -> None:
        """The processing loop went round."""
        self._last_beat = self._clock()

    def readiness(self, check: Readiness) -> None:
        self._readiness = check

    def alive(self) -> str | None:
        """None when alive; otherwise why not."""
        silent = self._clock() - self._last_beat
        return None if silent < self._stall_after_s else f"the processing loop has not turned for {silent:.0f}s"

    def ready(self) -> str | None:
        """None when ready; otherwise why not."""
        try:
            return self.alive() or self._readiness()
        except Exception as error:  # a check that fails says "not ready", it does not break the endpoint
            return f"readiness check failed: {error}"


HEALTH = Health()


def report_health(app: Application, health: Health = HEALTH) -> None:
    """Make a Quix Streams app beat on every turn of its loop (recovering state counts), and be ready once it
    has partitions and nothing left to restore.

    Like `commits.commit_when_caught_up`, it wraps the steps the pinned version's run loop calls on every
    turn (`commit_checkpoint`, `do_recovery`): Quix Streams 3.28 has no public hook for either."""
    context = app._processing_context
    state_manager = app._state_manager
    commit_checkpoint, do_recovery = context.commit_checkpoint, state_manager.do_recovery

    def committing(*args: Any, **options: Any) -> None:
        health.beat()
        commit_checkpoint(*args, **options)

    def recovering() -> None:
        health.beat()
        do_recovery()

    context.commit_checkpoint = committing  # type: ignore[method-assign]
    state_manager.do_recovery = recovering  # type: ignore[method-assign]
    health.readiness(lambda: _quix_readiness(app))


def _quix_readiness(app: Application) -> str | None:
    if not app._run_tracker.running:
        return "starting"
    if not app._consumer.assignment():
        return NO_PARTITIONS
    if app._state_manager.recovery_required:
        return "restoring state from the changelogs"
    return None


def assignment_readiness(assigned: Collection[int], restoring: Collection[int], restoring_what: str) -> str | None:
    """Readiness of a plain Kafka client that reads its state back on every assignment (the timers):
    ready once it has partitions and none of them is still being read back."""
    if restoring:
        return f"{restoring_what}: partitions {sorted(restoring)}"
    return None if assigned else NO_PARTITIONS


def beating(items: Iterable[T], health: Health = HEALTH) -> Iterator[T]:
    """`items`, beating on each: a long read (state read back inside a rebalance callback) is not a stall."""
    for item in items:
        health.beat()
        yield item


def serve(host: str, port: int, health: Health = HEALTH) -> WSGIServer:
    """Serve `/metrics`, `/healthz` and `/readyz` on `host`:`port` from a daemon thread."""
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            problem = health.alive() if path == "/healthz" else health.ready()
            status = "200 OK" if problem is None else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [f"{problem or 'ok'}\n".encode()]
        return metrics(environ, start_response)

    server = make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-and-health", daemon=True).start()
    return server


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes come every few seconds: no access log."""
