"""The dashboard's copy of the tracker's view, and the thread that keeps it current.

The follower reads the compacted `oms.tracking.orders` from its beginning, then keeps reading, for the life of
the process. Nothing a record carries stops it: a record it cannot decode is logged, counted and skipped. An
outage (registry or broker down, see `processors.runtime.errors`) is waited out with backoff, retrying the same
record; any other failure reopens the consumer where it left off. While it cannot read, the view says since when
it is stale, and the page shows it.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from ops.tracking import summary
from processors.runtime.cloudevents import header
from processors.runtime.errors import is_outage
from processors.runtime.records import utc_now
from processors.tracking.timeline import COMPENSATING, DONE, FAULTED, IN_FLIGHT, STATUSES, is_stuck
from processors.tracking.view import STATUS_HEADER
from schemas.models import OrderTimeline

LISTED = 50  # orders per list on the page, the most recent first
PROBE_EVERY_S = 5.0  # how often a quiet follower asks the broker whether it is still there
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
logger = logging.getLogger(__name__)


@dataclass
class Health:
    """Whether the view is current: `stale_since` is when the follower last stopped being able to read."""

    stale_since: datetime.datetime | None = None
    problem: str | None = None
    skipped: int = 0  # records that could not be decoded, ever
    last_skipped: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "stale_since": self.stale_since.isoformat() if self.stale_since else None,
            "problem": self.problem,
            "skipped": self.skipped,
            "last_skipped": self.last_skipped,
        }


@dataclass
class View:
    """The latest timeline of every order, as followed from the compacted topic: unfinished orders decoded (the
    lists show them), completed ones as their Avro bytes (a search decodes one), which costs far less memory."""

    decode: Callable[[bytes], OrderTimeline]
    active: dict[str, OrderTimeline] = field(default_factory=dict)
    completed: dict[str, bytes] = field(default_factory=dict)
    health: Health = field(default_factory=Health)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, timeline: OrderTimeline, value: bytes) -> None:
        with self.lock:
            if timeline.status == DONE:
                self.active.pop(timeline.order_id, None)
                self.completed[timeline.order_id] = value
            else:
                self.completed.pop(timeline.order_id, None)
                self.active[timeline.order_id] = timeline

    def put_completed(self, order_id: str, value: bytes) -> None:
        """A completed order's timeline, kept undecoded (a search decodes it)."""
        with self.lock:
            self.active.pop(order_id, None)
            self.completed[order_id] = value

    def remove(self, order_id: str) -> None:
        with self.lock:
            self.active.pop(order_id, None)
            self.completed.pop(order_id, None)

    def get(self, order_id: str) -> OrderTimeline | None:
        with self.lock:
            timeline, value = self.active.get(order_id), self.completed.get(order_id)
        return timeline if timeline is not None or value is None else self.decode(value)

    def stale(self, problem: str) -> None:
        with self.lock:
            if self.health.stale_since is None:
                self.health.stale_since = utc_now()
            self.health.problem = problem

    def current(self) -> None:
        with self.lock:
            self.health.stale_since = None
            self.health.problem = None

    def skipped(self, where: str, error: Exception) -> None:
        with self.lock:
            self.health.skipped += 1
            self.health.last_skipped = f"{where}: {type(error).__name__}: {error}"[:500]

    def health_json(self) -> dict[str, Any]:
        with self.lock:
            return self.health.as_json()

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
            "view": self.health_json(),
        }


class Delivered(Protocol):
    """The part of a Kafka message the follower uses."""

    def error(self) -> KafkaError | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes]] | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


class Reader(Protocol):
    """The part of a Kafka consumer the follower uses."""

    def list_topics(self, topic: str, timeout: float) -> Any: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def consume(self, num_messages: int, timeout: float) -> Sequence[Delivered]: ...
    def close(self) -> None: ...


def completed_order(message: Delivered) -> str | None:
    """The order id of a record the tracker marked completed in its summary headers; None otherwise."""
    key = message.key()
    if key is None or header(message.headers(), STATUS_HEADER) != DONE:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None


def backoffs(first_s: float = FIRST_BACKOFF_S) -> Iterator[float]:
    delay = first_s
    while True:
        yield delay
        delay = min(delay * 2, MAX_BACKOFF_S)


class Follower(threading.Thread):
    """Keeps `view` following `topic` through consumers that `open_reader` makes, until `stop`."""

    def __init__(
        self, topic: str, open_reader: Callable[[], Reader], view: View, first_backoff_s: float = FIRST_BACKOFF_S
    ) -> None:
        super().__init__(name="view-follower", daemon=True)
        self._topic = topic
        self._open_reader = open_reader
        self._view = view
        self._next: dict[int, int] = {}  # partition -> the offset to read next, once anything was read
        self._stopped = threading.Event()
        self._first_backoff_s = first_backoff_s
        self._backoff = backoffs(first_backoff_s)
        self._troubled = True  # until it first reads: a view not yet loaded is not current

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        try:
            while not self._stopped.is_set():
                try:
                    self._follow()
                except Exception as error:
                    # Whatever broke, the reader is reopened where it left off; the view says it is stale meanwhile.
                    self._failed(error, "following the view")
        finally:
            if not self._stopped.is_set():
                self._view.stale("the follower stopped")

    def _follow(self) -> None:
        reader = self._open_reader()
        try:
            metadata = reader.list_topics(self._topic, timeout=10).topics[self._topic]
            if metadata.error is not None:
                raise KafkaException(metadata.error)
            reader.assign(
                [TopicPartition(self._topic, p, self._next.get(p, OFFSET_BEGINNING)) for p in metadata.partitions]
            )
            self._recovered()
            probe_at = time.monotonic() + PROBE_EVERY_S
            while not self._stopped.is_set():
                for message in reader.consume(1000, 0.2):
                    self._take(message)
                if time.monotonic() >= probe_at:
                    reader.list_topics(self._topic, timeout=5)  # raises when the broker is gone
                    self._recovered()
                    probe_at = time.monotonic() + PROBE_EVERY_S
        finally:
            reader.close()

    def _take(self, message: Delivered) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                logger.warning("reading %s: %s", self._topic, error)
            return
        partition, offset = message.partition() or 0, message.offset() or 0
        value = message.value()
        if value is None:
            key = message.key()
            if key is not None:
                self._view.remove(key.decode(errors="replace"))
        elif (order_id := completed_order(message)) is not None:
            # Most of a long view is completed orders, and decoding a timeline costs a few hundred
            # microseconds: their bytes are kept as they are, so the page is current in seconds, not minutes.
            self._view.put_completed(order_id, value)
        else:
            self._put(value, f"{self._topic}/{partition}/{offset}")
        self._next[partition] = offset + 1

    def _put(self, value: bytes, where: str) -> None:
        """Decode and keep one timeline; an outage is waited out and the same value tried again."""
        while not self._stopped.is_set():
            try:
                self._view.put(self._view.decode(value), value)
                self._recovered()
                return
            except Exception as failure:
                if is_outage(failure):
                    self._failed(failure, f"decoding {where}")
                    continue
                logger.warning("skipped %s, which cannot be decoded: %s: %s", where, type(failure).__name__, failure)
                self._view.skipped(where, failure)
                return

    def _failed(self, error: Exception, doing: str) -> None:
        self._troubled = True
        problem = f"{doing}: {'outage' if is_outage(error) else 'failure'}: {type(error).__name__}: {error}"[:500]
        self._view.stale(problem)
        delay = next(self._backoff)
        if is_outage(error):
            logger.warning("%s; retrying in %.1fs", problem, delay)
        else:
            logger.exception("%s; retrying in %.1fs", problem, delay)
        self._stopped.wait(delay)

    def _recovered(self) -> None:
        if self._troubled:
            self._troubled = False
            self._backoff = backoffs(self._first_backoff_s)
            self._view.current()
