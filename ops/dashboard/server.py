"""`oms dashboard`: a web page on `dashboard_host` (127.0.0.1 unless set) over the tracker's view, updating live.

A thread follows the compacted `oms.tracking.orders` (`view.py`); the HTTP server answers from that copy. The
page (`page.html`) polls `/api/fleet` and `/api/orders/<id>`. Three actions: resume a saga that ended `Failed`
(a `RetrySaga`), redrive an order's dead letters (each original once, see `ops/deadletters.py`), both safe to
repeat; and cancel an order, which waits for the saga's answer (`ops/cancel.py`) and gives it back. Only the
dashboard's own page can act (`requests.py`). Every request gets an answer in JSON, a failure's too.

The page builds its DOM from data with `textContent` and attributes only, and the server forbids it anything
else: a Content-Security-Policy runs only the page's own script (by a nonce fresh per response), loads nothing
from elsewhere, and lets no other site frame it.
"""

from __future__ import annotations

import datetime
import json
import logging
import secrets
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ops.cancel import cancel_and_wait, default_wait_s
from ops.dashboard.requests import (
    LOCAL_NAMES,
    WILDCARD_HOSTS,
    Cancel,
    Guard,
    Redrive,
    Refused,
    Retry,
    address,
    body_length,
    parse_action,
    served_names,
)
from ops.dashboard.view import Follower, View
from ops.deadletters import NotADeadLetterTopic, RedriveFenced, matching, redrive
from ops.produce import produce_retry
from ops.tracking import steps, summary
from processors.runtime.clients import end_reader
from processors.runtime.errors import is_outage
from processors.runtime.records import utc_now
from processors.sagas.cancellation import Phase
from processors.tracking.timeline import is_stuck
from schemas.models import OrderTimeline
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.settings import Settings
from topology.topics import TRACKING_ORDERS

PAGE = Path(__file__).with_name("page.html")
logger = logging.getLogger(__name__)


def page_policy(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def handler_for(settings: Settings, view: View, guard: Guard) -> type[BaseHTTPRequestHandler]:
    stuck_after = datetime.timedelta(seconds=settings.stuck_after_s)
    page = PAGE.read_text().replace("{{token}}", guard.token)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(self._get)

        def do_POST(self) -> None:
            self._answer(self._post)

        def do_PUT(self) -> None:
            self._answer(self._not_allowed)

        do_DELETE = do_PATCH = do_PUT

        def _answer(self, respond: Callable[[], None]) -> None:
            try:
                problem = guard.host_refusal(self.headers.get("Host"))
                if problem is not None:
                    self._json(HTTPStatus.FORBIDDEN, {"error": problem})
                else:
                    respond()
            except Exception as error:  # the page waits for an answer: it gets one, whatever went wrong
                logger.exception("%s %s", self.command, self.path)
                status = HTTPStatus.SERVICE_UNAVAILABLE if is_outage(error) else HTTPStatus.INTERNAL_SERVER_ERROR
                self._json(status, {"error": f"{type(error).__name__}: {error}"[:1000]})

        def _not_allowed(self) -> None:
            self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{self.command} is not served here"})

        def _get(self) -> None:
            path = urlparse(self.path).path
            if path in ("/", "/index.html"):
                nonce = secrets.token_urlsafe(16)
                body = page.replace("{{nonce}}", nonce).encode()
                self._send(HTTPStatus.OK, body, "text/html; charset=utf-8", page_policy(nonce))
            elif path == "/api/fleet":
                self._json(HTTPStatus.OK, view.fleet(stuck_after))
            elif path.startswith("/api/orders/"):
                timeline = view.get(unquote(path.removeprefix("/api/orders/")))
                if timeline is None:
                    self._json(
                        HTTPStatus.NOT_FOUND,
                        {"error": "no such order in the tracker's view", "view": view.health_json()},
                    )
                else:
                    stuck = is_stuck(timeline, utc_now(), stuck_after)
                    order = summary(timeline) | {"stuck": stuck, "steps": steps(timeline)}
                    self._json(HTTPStatus.OK, order | {"view": view.health_json()})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing at {path[:100]}"})

        def _post(self) -> None:
            length = body_length(self.headers.get("Content-Length"))
            if isinstance(length, Refused):
                self._json(length.status, {"error": length.reason})
                return
            body = self.rfile.read(length)  # read before any answer, so that closing the socket loses nothing
            refusal = guard.action_refusal(self.headers)
            if refusal is not None:
                self._json(HTTPStatus.FORBIDDEN, {"error": refusal})
                return
            url = urlparse(self.path)
            action = parse_action(url.path, url.query, body)
            match action:
                case Refused(status, reason):
                    self._json(status, {"error": reason})
                case Retry(order_id):
                    self._retry(order_id)
                case Redrive(order_id, topics):
                    self._redrive(order_id, topics)
                case Cancel(order_id, reason):
                    self._cancel(order_id, reason)

        def _redrive(self, order_id: str, topics: tuple[str, ...]) -> None:
            try:
                sent = [
                    letter.original for name in topics for letter in redrive(settings, name, matching(key=order_id))
                ]
            except NotADeadLetterTopic as error:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            except RedriveFenced as error:  # another redrive of the same topic took over; this one sent nothing
                self._json(HTTPStatus.CONFLICT, {"error": str(error)})
            else:
                self._json(HTTPStatus.OK, {"redriven": sent})

        def _retry(self, order_id: str) -> None:
            timeline = view.get(order_id)
            if timeline is None or timeline.saga != Phase.FAILED:
                self._json(HTTPStatus.CONFLICT, {"error": "only a saga that ended Failed can be retried"})
                return
            command = produce_retry(settings, order_id)
            self._json(HTTPStatus.ACCEPTED, {"retry": str(command.event_id)})

        def _cancel(self, order_id: str, reason: str) -> None:
            if view.get(order_id) is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such order in the tracker's view"})
                return
            wait_s = default_wait_s(settings)
            command, answer = cancel_and_wait(settings, order_id, reason, wait_s, requested_by="operator")
            if answer is None:
                error = f"no answer within {wait_s:g}s; the saga may still decide (cancel {command.event_id})"
                self._json(HTTPStatus.GATEWAY_TIMEOUT, {"error": error, "cancel": str(command.event_id)})
                return
            status = HTTPStatus.OK if answer.outcome == "cancelled" else HTTPStatus.CONFLICT
            self._json(status, answer.as_json() | {"cancel": str(command.event_id)})

        def _json(self, status: HTTPStatus, body: Any) -> None:
            self._send(status, json.dumps(body, default=str).encode(), "application/json", DATA_POLICY)

        def _send(self, status: HTTPStatus, body: bytes, content_type: str, policy: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", policy)
            for name, value in SAFETY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

    return Handler


class Dashboard(ThreadingHTTPServer):
    """The HTTP server, and the follower that keeps its view; `shutdown` stops both."""

    follower: Follower
    view: View

    def shutdown(self) -> None:
        self.follower.stop()
        super().shutdown()
        self.server_close()

    @property
    def url(self) -> str:
        """Where a browser on this machine finds the page."""
        host = str(self.server_address[0])
        return f"http://{address(LOCAL_NAMES[0] if host in WILDCARD_HOSTS else host, self.server_address[1])}/"


class Dashboard6(Dashboard):
    address_family = socket.AF_INET6


def serve(settings: Settings, port: int, topic: str = TRACKING_ORDERS.name) -> Dashboard:
    """Start following the view on `topic` and serving it on `settings.dashboard_host`:`port` (0: any free
    port); the server."""
    codec = RecordCodec(registry_client(settings), TRACKING_ORDERS.name)
    view = View(lambda value: codec.decode_as(value, OrderTimeline))
    host = settings.dashboard_host
    server = (Dashboard6 if ":" in host else Dashboard)((host, port), BaseHTTPRequestHandler)
    names = served_names(host, (socket.gethostname(), socket.getfqdn()))
    guard = Guard(secrets.token_urlsafe(32), server.server_address[1], names)
    server.RequestHandlerClass = handler_for(settings, view, guard)
    server.view = view
    server.follower = Follower(topic, lambda: end_reader(settings, "oms-dashboard"), view)
    server.follower.start()
    threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True).start()
    return server
