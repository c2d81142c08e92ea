"""`oms dashboard`: a web page on 127.0.0.1 over the tracker's view, updating live.

A thread follows the compacted `oms.tracking.orders` from its beginning (every order's latest timeline);
the HTTP server answers from that copy. The page (`page.html`) polls `/api/fleet` and `/api/orders/<id>`.
Three actions: resume a saga that ended `Failed` (a `RetrySaga`), redrive an order's dead letters (each
original once, see `ops/deadletters.py`), both safe to repeat; and cancel an order, which waits for the saga's
answer (`ops/cancel.py`) and gives it back. Every request gets an answer in JSON, a failure's too.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from ops.cancel import DEFAULT_TIMEOUT_S, cancel_and_wait
from ops.deadletters import matching, redrive
from ops.produce import produce_retry
from ops.tracking import steps, summary
from processors.runtime.clients import end_reader
from processors.runtime.records import utc_now
from processors.sagas.cancellation import Phase
from processors.tracking.timeline import COMPENSATING, DONE, FAULTED, IN_FLIGHT, STATUSES, is_stuck
from schemas.models import OrderTimeline
from schemas.registry import registry_client
from schemas.serde import RecordCodec
from topology.settings import Settings
from topology.topics import TRACKING_ORDERS, WORKFLOW_TOPICS

PAGE = Path(__file__).with_name("page.html")
LISTED = 50  # orders per list on the page, the most recent first
MAX_BODY_BYTES = 4096
MAX_ORDER_ID = 200
MAX_REASON = 500
logger = logging.getLogger(__name__)


@dataclass
class View:
    """The latest timeline of every order, as followed from the compacted topic: unfinished orders decoded (the
    lists show them), completed ones as their Avro bytes (a search decodes one), which costs far less memory."""

    decode: Callable[[bytes], OrderTimeline]
    active: dict[str, OrderTimeline] = field(default_factory=dict)
    completed: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, timeline: OrderTimeline, value: bytes) -> None:
        with self.lock:
            if timeline.status == DONE:
                self.active.pop(timeline.order_id, None)
                self.completed[timeline.order_id] = value
            else:
                self.completed.pop(timeline.order_id, None)
                self.active[timeline.order_id] = timeline

    def get(self, order_id: str) -> OrderTimeline | None:
        with self.lock:
            timeline, value = self.active.get(order_id), self.completed.get(order_id)
        return timeline if timeline is not None or value is None else self.decode(value)

    def fleet(self, stuck_after: datetime.timedelta) -> dict[str, Any]:
        now = utc_now()
        with self.lock:
            timelines, completed = list(self.active.values()), len(self.completed)
        newest_first = sorted(timelines, key=lambda t: t.last_progress_at, reverse=True)
        stuck = [t for t in newest_first if is_stuck(t, now, stuck_after)]
        lists = {
            "in-flight": [t for t in newest_first if t.status == IN_FLIGHT],
            "stuck": stuck,
            "compensating": [t for t in newest_first if t.status == COMPENSATING],
            "faulted": [t for t in newest_first if t.status == FAULTED],
        }
        counts = {status: sum(1 for t in timelines if t.status == status) for status in STATUSES} | {DONE: completed}
        return {
            "now": now.isoformat(),
            "stuck_after_s": stuck_after.total_seconds(),
            "counts": counts | {"stuck": len(stuck), "orders": len(timelines) + completed},
            "lists": {name: [summary(t) for t in found[:LISTED]] for name, found in lists.items()},
        }


class Follower(threading.Thread):
    """Reads `oms.tracking.orders` from the beginning, then keeps reading, for the life of the process."""

    def __init__(self, settings: Settings, view: View) -> None:
        super().__init__(name="view-follower", daemon=True)
        self._settings = settings
        self._view = view

    def run(self) -> None:
        consumer = end_reader(self._settings, "oms-dashboard")
        try:
            topic = consumer.list_topics(TRACKING_ORDERS.name, timeout=10).topics[TRACKING_ORDERS.name]
            consumer.assign([TopicPartition(TRACKING_ORDERS.name, p, OFFSET_BEGINNING) for p in topic.partitions])
            while True:
                for message in consumer.consume(1000, 0.2):
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            logger.warning("reading %s: %s", TRACKING_ORDERS.name, error)
                        continue
                    if message.value() is not None:
                        self._view.put(self._view.decode(message.value()), message.value())
        finally:
            consumer.close()


def handler_for(settings: Settings, view: View) -> type[BaseHTTPRequestHandler]:
    stuck_after = datetime.timedelta(seconds=settings.stuck_after_s)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
            elif path == "/api/fleet":
                self._json(HTTPStatus.OK, view.fleet(stuck_after))
            elif path.startswith("/api/orders/"):
                timeline = view.get(unquote(path.removeprefix("/api/orders/")))
                if timeline is None:
                    self._json(HTTPStatus.NOT_FOUND, {"error": "no such order in the tracker's view"})
                else:
                    stuck = is_stuck(timeline, utc_now(), stuck_after)
                    self._json(HTTPStatus.OK, summary(timeline) | {"stuck": stuck, "steps": steps(timeline)})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing at {path}"})

        def do_POST(self) -> None:
            try:
                self._post()
            except Exception as error:  # the page waits for an answer: it gets one, whatever went wrong
                logger.exception("POST %s", self.path)
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"})

        def _post(self) -> None:
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["api", "orders"] and parts[3] in ("retry", "redrive", "cancel"):
                order_id = unquote(parts[2])
                if parts[3] == "retry":
                    self._retry(order_id)
                elif parts[3] == "cancel":
                    self._cancel(order_id)
                else:
                    self._redrive(order_id, parse_qs(url.query).get("topic"))
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing at {url.path}"})

        def _cancel(self, order_id: str) -> None:
            problem = order_id_problem(order_id)
            if problem is not None:
                self._json(HTTPStatus.BAD_REQUEST, {"error": problem})
                return
            if view.get(order_id) is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such order in the tracker's view"})
                return
            reason = cancel_reason(self._body())
            if isinstance(reason, CancelProblem):
                self._json(HTTPStatus.BAD_REQUEST, {"error": reason.problem})
                return
            command, answer = cancel_and_wait(settings, order_id, reason, DEFAULT_TIMEOUT_S, requested_by="operator")
            if answer is None:
                error = (
                    f"no answer within {DEFAULT_TIMEOUT_S:g}s; the saga may still decide (cancel {command.event_id})"
                )
                self._json(HTTPStatus.GATEWAY_TIMEOUT, {"error": error, "cancel": str(command.event_id)})
                return
            status = HTTPStatus.OK if answer.outcome == "cancelled" else HTTPStatus.CONFLICT
            self._json(status, answer.as_json() | {"cancel": str(command.event_id)})

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(min(length, MAX_BODY_BYTES + 1))

        def _retry(self, order_id: str) -> None:
            timeline = view.get(order_id)
            if timeline is None or timeline.saga != Phase.FAILED:
                self._json(HTTPStatus.CONFLICT, {"error": "only a saga that ended Failed can be retried"})
                return
            command = produce_retry(settings, order_id)
            self._json(HTTPStatus.ACCEPTED, {"retry": str(command.event_id)})

        def _redrive(self, order_id: str, topics: list[str] | None) -> None:
            names = topics or [topic.name for topic in WORKFLOW_TOPICS]
            sent = [letter.original for name in names for letter in redrive(settings, name, matching(key=order_id))]
            self._json(HTTPStatus.OK, {"redriven": sent})

        def _json(self, status: HTTPStatus, body: Any) -> None:
            self._send(status, json.dumps(body, default=str).encode(), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

    return Handler


@dataclass(frozen=True)
class CancelProblem:
    problem: str


def order_id_problem(order_id: str) -> str | None:
    """What is wrong with an order id taken from a URL, if anything."""
    if not order_id.strip():
        return "the order id is blank"
    if len(order_id) > MAX_ORDER_ID:
        return f"the order id is longer than {MAX_ORDER_ID} characters"
    if not order_id.isprintable():
        return "the order id holds characters that cannot be printed"
    return None


def cancel_reason(body: bytes) -> str | CancelProblem:
    """The reason a cancel request's JSON body (`{"reason": "..."}`) gives, or what is wrong with the body."""
    if len(body) > MAX_BODY_BYTES:
        return CancelProblem(f"the request is larger than {MAX_BODY_BYTES} bytes")
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return CancelProblem("the request is not JSON")
    reason = request.get("reason") if isinstance(request, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return CancelProblem("say why the order is cancelled (reason)")
    if len(reason) > MAX_REASON:
        return CancelProblem(f"the reason is longer than {MAX_REASON} characters")
    return reason.strip()


def serve(settings: Settings, port: int) -> ThreadingHTTPServer:
    """Start following the view and serving it on 127.0.0.1:`port` (0: any free port); the server."""
    codec = RecordCodec(registry_client(settings), TRACKING_ORDERS.name)
    view = View(lambda value: codec.decode_as(value, OrderTimeline))
    Follower(settings, view).start()
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(settings, view))
    threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True).start()
    return server
