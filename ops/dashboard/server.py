"""`oms dashboard`: a web page on `dashboard_host` (127.0.0.1 unless set) over the tracker's view, updating live.

A thread follows the compacted `oms.tracking.orders` (`view.py`); the HTTP server answers from that copy. The
page (`page.html`) polls `/api/fleet` and `/api/orders/<id>`. Three actions: resume a saga that ended `Failed`
(a `RetrySaga`), redrive an order's dead letters (each original once, see `ops/deadletters.py`), both safe to
repeat; and cancel an order, which waits for the saga's answer (`ops/cancel.py`) and gives it back. Every
request gets an answer in JSON, a failure's too.

Every request must name one of the dashboard's host names (`requests.py`) and come from someone it knows
(`access.py`): a client on loopback, a browser logged in with the dashboard's token (`/login`), an API client
with it as a bearer token, or a user an authenticating proxy vouches for. Only they get the page, and with it
their action token; only the dashboard's own page, or a bearer client, can act, and every action is audited
with who asked (`actions.py`). A connection that does not send its request within
`dashboard_request_timeout_s` is closed.

The page builds its DOM from data with `textContent` and attributes only, and the server forbids it anything
else: a Content-Security-Policy runs only the page's own script (by a nonce fresh per response), loads nothing
from elsewhere, and lets no other site frame it.
"""

from __future__ import annotations

import datetime
import html
import json
import logging
import re
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from ops.dashboard.access import (
    Access,
    AccessPolicy,
    Caller,
    Unknown,
    ended_session_cookie,
    session_cookie,
    session_of,
)
from ops.dashboard.actions import AUDIT, KafkaOperations, Operations, audit, audit_log, requested_by
from ops.dashboard.requests import (
    LOCAL_NAMES,
    WILDCARD_HOSTS,
    Cancel,
    Guard,
    Redrive,
    Refused,
    Retry,
    address,
    allowed_hosts,
    body_length,
    parse_action,
    served_names,
)
from ops.dashboard.view import Follower, View
from ops.deadletters import NotADeadLetterTopic, RedriveFenced
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
LOGIN_PAGE = Path(__file__).with_name("login.html")
PAGES = ("/", "/index.html")
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
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def filled(template: str, values: Mapping[str, str]) -> str:
    """`template` with each `{{name}}` replaced by `values[name]`, in one pass: a value is never read again."""
    return _PLACEHOLDER.sub(lambda found: values[found.group(1)], template)


def handler_for(
    settings: Settings, view: View, guard: Guard, access: Access, operations: Operations
) -> type[BaseHTTPRequestHandler]:
    stuck_after = datetime.timedelta(seconds=settings.stuck_after_s)
    page, login_page = PAGE.read_text(), LOGIN_PAGE.read_text()

    class Handler(BaseHTTPRequestHandler):
        # A client that stops sending its request (or reading the answer) frees its thread after this long.
        timeout = settings.dashboard_request_timeout_s

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

        def _caller(self, path: str) -> Caller | None:
            """Who asks; None when nobody the dashboard knows, who has then been answered (sent to log in)."""
            found = access.caller(self.client_address[0], self.headers)
            if isinstance(found, Caller):
                return found
            if self.command == "POST":
                AUDIT.info("refused %s %s from %s: %s", self.command, path[:200], self.client_address[0], found.reason)
            if self.command == "GET" and path in PAGES and found.can_log_in:
                self._redirect("/login")
            else:
                self._unknown(found)
            return None

        def _unknown(self, found: Unknown) -> None:
            status = HTTPStatus.UNAUTHORIZED if found.can_log_in else HTTPStatus.FORBIDDEN
            challenge = {"WWW-Authenticate": 'Bearer realm="oms dashboard"'} if found.can_log_in else {}
            self._json(status, {"error": found.reason}, challenge)

        def _get(self) -> None:
            path = urlparse(self.path).path
            if path == "/login":
                self._login_page(HTTPStatus.OK, "")
                return
            caller = self._caller(path)
            if caller is None:
                return
            if path in PAGES:
                nonce = secrets.token_urlsafe(16)
                values = {
                    "nonce": nonce,
                    "token": access.action_token(caller),
                    "user": html.escape(caller.user),
                    "logout_hidden": "" if caller.via == "session" else " hidden",
                }
                self._page(HTTPStatus.OK, filled(page, values), nonce)
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
            url = urlparse(self.path)
            if url.path == "/login":
                self._log_in(body)
                return
            if url.path == "/logout":
                self._log_out()
                return
            caller = self._caller(url.path)
            if caller is None:
                return
            token = access.action_token(caller) if caller.acts_from_a_browser else None
            refusal = guard.action_refusal(self.headers, token)
            if refusal is not None:
                audit(caller, url.path[:200], "-", HTTPStatus.FORBIDDEN, refusal)
                self._json(HTTPStatus.FORBIDDEN, {"error": refusal})
                return
            action = parse_action(url.path, url.query, body)
            match action:
                case Refused(status, reason):
                    self._json(status, {"error": reason})
                case Retry(order_id):
                    self._retry(caller, order_id)
                case Redrive(order_id, topics):
                    self._redrive(caller, order_id, topics)
                case Cancel(order_id, reason):
                    self._cancel(caller, order_id, reason)

        def _login_page(self, status: HTTPStatus, problem: str) -> None:
            if not access.login_form:
                problem = access.stranger().reason
            nonce = secrets.token_urlsafe(16)
            values = {
                "nonce": nonce,
                "problem": html.escape(problem),
                "form_hidden": "" if access.login_form else " hidden",
            }
            self._page(status, filled(login_page, values), nonce)

        def _page(self, status: HTTPStatus, text: str, nonce: str) -> None:
            # A form posted with no referrer at all carries `Origin: null`: the login and logout forms carry
            # their origin, which the server checks, by a referrer for this origin alone.
            headers = {"Referrer-Policy": "same-origin"}
            self._send(status, text.encode(), "text/html; charset=utf-8", page_policy(nonce), headers)

        def _log_in(self, body: bytes) -> None:
            peer = self.client_address[0]
            if not access.login_form:
                self._login_page(HTTPStatus.FORBIDDEN, "")
                return
            refusal = self._foreign_origin()
            if refusal is not None:
                self._login_page(HTTPStatus.FORBIDDEN, refusal)
                return
            form = parse_qs(body.decode(errors="replace"), max_num_fields=10)
            name, offered = (form.get(field, [""])[0] for field in ("name", "token"))
            session = access.log_in(offered, name)
            user = None if session is None else access.sessions.user(session)
            if session is None or user is None:
                AUDIT.warning("failed login from %s", peer)
                self._login_page(HTTPStatus.UNAUTHORIZED, "That is not the dashboard's token.")
                return
            AUDIT.info("%s logged in from %s", user, peer)
            cookie = session_cookie(session, access.policy.session_s, self._secure())
            self._redirect("/", {"Set-Cookie": cookie})

        def _log_out(self) -> None:
            refusal = self._foreign_origin()
            if refusal is not None:
                self._json(HTTPStatus.FORBIDDEN, {"error": refusal})
                return
            session = session_of(self.headers.get("Cookie"))
            if session is not None:
                user = access.sessions.user(session)
                access.sessions.close(session)
                if user is not None:
                    AUDIT.info("%s logged out", user)
            self._redirect("/login", {"Set-Cookie": ended_session_cookie(self._secure())})

        def _foreign_origin(self) -> str | None:
            """Why a form posted here does not come from this dashboard's pages, if it does not."""
            origin, host = self.headers.get("Origin"), self.headers.get("Host")
            if origin not in (f"http://{host}", f"https://{host}"):
                return f"the request comes from another origin ({(origin or 'none')[:100]})"
            return None

        def _secure(self) -> bool:
            """Whether the browser reached the dashboard over HTTPS (an ingress that ends TLS says so): a client
            that claims it only makes its own cookie stricter."""
            return (self.headers.get("X-Forwarded-Proto") or "").lower() == "https"

        def _redrive(self, caller: Caller, order_id: str, topics: tuple[str, ...]) -> None:
            try:
                sent = operations.redrive(order_id, topics)
            except NotADeadLetterTopic as error:
                self._acted(caller, "redrive", order_id, HTTPStatus.BAD_REQUEST, {"error": str(error)})
            except RedriveFenced as error:  # another redrive of the same topic took over; this one sent nothing
                self._acted(caller, "redrive", order_id, HTTPStatus.CONFLICT, {"error": str(error)})
            else:
                self._acted(caller, "redrive", order_id, HTTPStatus.OK, {"redriven": sent})

        def _retry(self, caller: Caller, order_id: str) -> None:
            timeline = view.get(order_id)
            if timeline is None or timeline.saga != Phase.FAILED:
                error = "only a saga that ended Failed can be retried"
                self._acted(caller, "retry", order_id, HTTPStatus.CONFLICT, {"error": error})
                return
            command = operations.retry(order_id, requested_by(caller))
            self._acted(caller, "retry", order_id, HTTPStatus.ACCEPTED, {"retry": str(command.event_id)})

        def _cancel(self, caller: Caller, order_id: str, reason: str) -> None:
            if view.get(order_id) is None:
                error = "no such order in the tracker's view"
                self._acted(caller, "cancel", order_id, HTTPStatus.NOT_FOUND, {"error": error})
                return
            command, answer, wait_s = operations.cancel(order_id, reason, requested_by(caller))
            if answer is None:
                error = f"no answer within {wait_s:g}s; the saga may still decide (cancel {command.event_id})"
                body = {"error": error, "cancel": str(command.event_id)}
                self._acted(caller, "cancel", order_id, HTTPStatus.GATEWAY_TIMEOUT, body)
                return
            status = HTTPStatus.OK if answer.outcome == "cancelled" else HTTPStatus.CONFLICT
            self._acted(caller, "cancel", order_id, status, answer.as_json() | {"cancel": str(command.event_id)})

        def _acted(self, caller: Caller, action: str, order_id: str, status: HTTPStatus, body: dict[str, Any]) -> None:
            """Answer an action, and audit who asked for it and what came of it."""
            outcome = body.get("error") or json.dumps({k: v for k, v in body.items() if k != "refunds"}, default=str)
            audit(caller, action, order_id, status, str(outcome))
            self._json(status, body)

        def _json(self, status: HTTPStatus, body: Any, headers: Mapping[str, str] | None = None) -> None:
            self._send(status, json.dumps(body, default=str).encode(), "application/json", DATA_POLICY, headers)

        def _redirect(self, location: str, headers: Mapping[str, str] | None = None) -> None:
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", DATA_POLICY, {"Location": location, **(headers or {})})

        def _send(
            self,
            status: HTTPStatus,
            body: bytes,
            content_type: str,
            policy: str,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", policy)
            for name, value in (SAFETY_HEADERS | dict(headers or {})).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

    return Handler


class Dashboard(ThreadingHTTPServer):
    """The HTTP server, and the follower that keeps its view; `shutdown` stops both."""

    follower: Follower | None = None
    view: View
    access: Access

    def shutdown(self) -> None:
        if self.follower is not None:
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


def http_server(settings: Settings, view: View, port: int, operations: Operations) -> Dashboard:
    """A server of `view` on `settings.dashboard_host`:`port` (0: any free port) whose actions are `operations`,
    not yet serving."""
    access = Access(AccessPolicy.of(settings))  # before binding: a token that cannot be used stops it here
    host = settings.dashboard_host
    server = (Dashboard6 if ":" in host else Dashboard)((host, port), BaseHTTPRequestHandler)
    names = served_names(host, (socket.gethostname(), socket.getfqdn()))
    guard = Guard(server.server_address[1], names, allowed_hosts(settings.dashboard_allowed_hosts))
    server.RequestHandlerClass = handler_for(settings, view, guard, access, operations)
    server.view, server.access = view, access
    return server


def serve(settings: Settings, port: int, topic: str = TRACKING_ORDERS.name) -> Dashboard:
    """Start following the view on `topic` and serving it on `settings.dashboard_host`:`port` (0: any free
    port); the server."""
    codec = RecordCodec(registry_client(settings), TRACKING_ORDERS.name)
    view = View(lambda value: codec.decode_as(value, OrderTimeline))
    server = http_server(settings, view, port, KafkaOperations(settings))
    audit_log(settings)
    server.follower = Follower(topic, lambda: end_reader(settings, "oms-dashboard"), view)
    server.follower.start()
    threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True).start()
    return server
