"""The tracker's working copy of its partitions of the view: every timeline on local disk; in memory, decoded,
the ones changed since the last save and as many of the most recently used as fit in `DECODED_BYTES`.

The compacted `oms.tracking.orders` stays the truth: the file is rebuilt from it on every assignment, so it
can be deleted at any time. A timeline not decoded in memory is read back from disk when its next event
comes, so the tracker's memory is bounded by `DECODED_BYTES`, not by the orders in flight (a backlog puts
10,000 in flight at once: a delivered order's timeline takes 16 KB as pydantic makes it, 7 KB as kept here,
1 KB as Avro). Reading one back costs a decode (about 100 µs), paid only by an order whose next event comes
after the timelines of others have filled the room.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from processors.runtime.errors import is_outage
from processors.tracking.timeline import DONE, sharing_fields_sets
from schemas.models import OrderTimeline

SCHEMA = """
CREATE TABLE IF NOT EXISTS timelines (
    order_id TEXT PRIMARY KEY,
    partition INTEGER NOT NULL,
    status TEXT NOT NULL,
    saga TEXT,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS timelines_by_partition ON timelines (partition);
"""

STATUS_HEADER, SAGA_HEADER = "oms-status", "oms-saga"
# The timelines kept decoded, in bytes as `footprint` estimates them: 2,200 delivered orders' or 12,000 just
# placed, so that a run at full speed (`oms bench` places thousands of orders at once) seldom waits for a
# decode.
DECODED_BYTES = 16_000_000

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    """A record of the compacted topic: its body, and the summary its headers carry (so that a rebuild
    decodes only the unfinished timelines)."""

    order_id: str
    value: bytes | None
    partition: int
    status: str | None = None
    saga: str | None = None


class Progress(NamedTuple):
    """Where an order stands whose timeline the store holds on disk only: enough for the fleet's gauges
    (`is_stuck`) and to let it go once finished."""

    order_id: str
    status: str
    last_progress_at: datetime.datetime

    @classmethod
    def of(cls, timeline: OrderTimeline) -> Progress:
        return cls(timeline.order_id, timeline.status, timeline.last_progress_at)


def footprint(timeline: OrderTimeline) -> int:
    """About the bytes a decoded timeline takes (measured with tracemalloc, its fields sets shared): 1.3 KB
    for an order just placed, 7.2 KB for one delivered."""
    return 800 + 450 * len(timeline.steps) + 90 * len(timeline.seen)


def summary_headers(timeline: OrderTimeline) -> tuple[tuple[str, bytes], ...]:
    return ((STATUS_HEADER, timeline.status.encode()), (SAGA_HEADER, (timeline.saga or "").encode()))


Encode = Callable[[OrderTimeline], bytes]
Decode = Callable[[bytes], OrderTimeline]


class TimelineStore:
    """Holds the unfinished timelines of its partitions, and the finished ones until `evict`: each decoded
    while unsaved or among the most recently used that fit in `decoded_bytes`, otherwise on disk (with its
    `Progress` in memory) until `get` reads it back."""

    def __init__(self, path: Path, encode: Encode, decode: Decode, decoded_bytes: int = DECODED_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # a cache of the compacted topic, refilled on assignment
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = OFF")  # rebuilt from Kafka after any crash
        self._db.executescript(SCHEMA)
        self._encode = encode
        self._decode: Decode = lambda value: sharing_fields_sets(decode(value))
        self._budget = decoded_bytes
        self._bytes = 0
        """The footprint of the timelines decoded."""
        self._partition_of: dict[str, int] = {}
        """Every order held."""
        self._unsaved: dict[str, OrderTimeline] = {}
        self._recent: OrderedDict[str, OrderTimeline] = OrderedDict()
        """Saved and decoded, least recently used first."""
        self._away: dict[str, Progress] = {}
        """Saved and not decoded."""

    def get(self, order_id: str) -> OrderTimeline | None:
        timeline = self._unsaved.get(order_id)
        if timeline is not None:
            return timeline
        timeline = self._recent.get(order_id)
        if timeline is not None:
            self._recent.move_to_end(order_id)
            return timeline
        row = self._db.execute("SELECT value FROM timelines WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else self._decode(row[0])

    def put(self, timeline: OrderTimeline, partition: int) -> None:
        """Changed, not yet saved: kept decoded until `save`."""
        order_id = timeline.order_id
        before = self._unsaved.get(order_id) or self._recent.pop(order_id, None)
        if before is not None:
            self._bytes -= footprint(before)
        self._away.pop(order_id, None)
        self._unsaved[order_id] = timeline
        self._bytes += footprint(timeline)
        self._partition_of[order_id] = partition
        if self._bytes > self._budget:
            self._trim()

    def save(self, order_ids: Iterable[str], encoded: dict[str, bytes] | None = None) -> None:
        """Write the timelines to disk; they stay decoded while among the most recently used."""
        rows = []
        for order_id in order_ids:
            timeline = self._unsaved.get(order_id) or self._recent[order_id]
            value = (encoded or {}).get(order_id) or self._encode(timeline)
            rows.append((order_id, self._partition_of[order_id], timeline.status, timeline.saga, value))
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO timelines VALUES (?, ?, ?, ?, ?)", rows)
        self._db.execute("COMMIT")
        for order_id, *_ in rows:
            saved = self._unsaved.pop(order_id, None)
            if saved is not None:
                self._recent[order_id] = saved
        self._trim()

    def crowded(self) -> bool:
        """The timelines changed and not saved alone take more than it keeps decoded: time to save them."""
        return self._bytes > self._budget

    def decoded(self) -> int:
        """How many timelines it keeps decoded."""
        return len(self._unsaved) + len(self._recent)

    def _trim(self) -> None:
        """The least recently used saved timelines leave memory while those decoded take more than it keeps
        (the unsaved stay: they are not on disk yet)."""
        while self._recent and self._bytes > self._budget:
            order_id, timeline = self._recent.popitem(last=False)
            self._bytes -= footprint(timeline)
            self._away[order_id] = Progress.of(timeline)

    def evict(self, idle_before: datetime.datetime) -> int:
        """Finished, saved timelines without an event since `idle_before` are no longer held (a late
        notification usually comes within seconds, and finds its timeline decoded); how many."""
        saved: Iterable[tuple[str, OrderTimeline | Progress]] = chain(self._recent.items(), self._away.items())
        idle = [
            order_id
            for order_id, timeline in saved
            if timeline.status == DONE and timeline.last_progress_at < idle_before
        ]
        for order_id in idle:
            self._forget(order_id)
        return len(idle)

    def _forget(self, order_id: str) -> None:
        del self._partition_of[order_id]
        decoded = self._unsaved.pop(order_id, None) or self._recent.pop(order_id, None)
        if decoded is not None:
            self._bytes -= footprint(decoded)
        self._away.pop(order_id, None)

    def rebuild(self, partitions: set[int], records: Iterable[Stored]) -> int:
        """Refill `partitions` from the compacted topic's records, read in offset order so that the latest of
        each key wins; the unfinished are held again (as many decoded as there is room for). How many."""
        self.drop_partitions(partitions)
        self._db.execute("BEGIN")
        for stored in records:
            if stored.value is None:
                self._db.execute("DELETE FROM timelines WHERE order_id = ?", (stored.order_id,))
                continue
            status, saga = stored.status, stored.saga
            if status is None:  # written without the summary headers: read the body
                timeline = self._readable(stored.order_id, stored.value)
                if timeline is None:
                    continue
                status, saga = timeline.status, timeline.saga
            self._db.execute(
                "INSERT OR REPLACE INTO timelines VALUES (?, ?, ?, ?, ?)",
                (stored.order_id, stored.partition, status, saga, stored.value),
            )
        self._db.execute("COMMIT")
        marks = ",".join("?" * len(partitions))
        unfinished = self._db.execute(
            f"SELECT order_id, value, partition FROM timelines WHERE status != ? AND partition IN ({marks})",
            (DONE, *partitions),
        )
        unreadable = []
        for order_id, value, partition in unfinished:  # one at a time: a long history leaves many
            timeline = self._readable(order_id, value)
            if timeline is None:
                unreadable.append((order_id,))
                continue
            self._partition_of[order_id] = partition
            if self._bytes + footprint(timeline) <= self._budget:
                self._recent[order_id] = timeline
                self._bytes += footprint(timeline)
            else:
                self._away[order_id] = Progress.of(timeline)
        self._db.executemany("DELETE FROM timelines WHERE order_id = ?", unreadable)
        (count,) = self._db.execute(
            f"SELECT count(*) FROM timelines WHERE partition IN ({marks})", tuple(partitions)
        ).fetchone()
        return int(count)

    def _readable(self, order_id: str, value: bytes) -> OrderTimeline | None:
        """The timeline a record of the view holds; None for one the tracker did not write (unreadable, or
        another order's), which a rebuild passes over: the order's next event starts its timeline again."""
        try:
            timeline = self._decode(value)
        except Exception as error:
            if is_outage(error):
                raise
            logger.warning("the view's record of %r is passed over: %s", order_id, error)
            return None
        if timeline.order_id != order_id:
            logger.warning("the view's record of %r is passed over: it holds order %r", order_id, timeline.order_id)
            return None
        return timeline

    def drop_partitions(self, partitions: set[int]) -> None:
        marks = ",".join("?" * len(partitions))
        self._db.execute(f"DELETE FROM timelines WHERE partition IN ({marks})", tuple(partitions))
        for order_id in [o for o, p in self._partition_of.items() if p in partitions]:
            self._forget(order_id)

    def unfinished(self) -> list[OrderTimeline | Progress]:
        """Where the orders not completed stand (all of them are held)."""
        decoded = [t for t in chain(self._unsaved.values(), self._recent.values()) if t.status != DONE]
        return [*decoded, *(progress for progress in self._away.values() if progress.status != DONE)]

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Orders by status and sagas by state, over every saved timeline."""
        statuses = Counter(dict(self._db.execute("SELECT status, count(*) FROM timelines GROUP BY status")))
        sagas = Counter(
            dict(self._db.execute("SELECT saga, count(*) FROM timelines WHERE saga IS NOT NULL GROUP BY saga"))
        )
        return statuses, sagas
