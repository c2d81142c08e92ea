"""The tracker's working copy of its partitions of the view: every timeline on local disk, the unfinished ones
(and those changed since the last flush) also in memory.

The compacted `oms.tracking.orders` stays the truth: the file is rebuilt from it on every assignment, so it
can be deleted at any time. Keeping finished orders on disk bounds the tracker's memory by the orders in
flight rather than by every order retained.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from processors.runtime.errors import is_outage
from processors.tracking.timeline import DONE
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


def summary_headers(timeline: OrderTimeline) -> tuple[tuple[str, bytes], ...]:
    return ((STATUS_HEADER, timeline.status.encode()), (SAGA_HEADER, (timeline.saga or "").encode()))


Encode = Callable[[OrderTimeline], bytes]
Decode = Callable[[bytes], OrderTimeline]


class TimelineStore:
    def __init__(self, path: Path, encode: Encode, decode: Decode) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # a cache of the compacted topic, refilled on assignment
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = OFF")  # rebuilt from Kafka after any crash
        self._db.executescript(SCHEMA)
        self._encode, self._decode = encode, decode
        self._memory: dict[str, OrderTimeline] = {}
        self._partition_of: dict[str, int] = {}
        self._unsaved: set[str] = set()

    def get(self, order_id: str) -> OrderTimeline | None:
        held = self._memory.get(order_id)
        if held is not None:
            return held
        row = self._db.execute("SELECT value FROM timelines WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else self._decode(row[0])

    def put(self, timeline: OrderTimeline, partition: int) -> None:
        """Changed, not yet saved: held in memory until `save`."""
        self._memory[timeline.order_id] = timeline
        self._partition_of[timeline.order_id] = partition
        self._unsaved.add(timeline.order_id)

    def save(self, order_ids: Iterable[str], encoded: dict[str, bytes] | None = None) -> None:
        """Write the timelines to disk (they stay in memory until `evict`)."""
        rows = []
        for order_id in order_ids:
            timeline = self._memory[order_id]
            value = (encoded or {}).get(order_id) or self._encode(timeline)
            rows.append((order_id, self._partition_of[order_id], timeline.status, timeline.saga, value))
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO timelines VALUES (?, ?, ?, ?, ?)", rows)
        self._db.execute("COMMIT")
        self._unsaved.difference_update(row[0] for row in rows)

    def evict(self, idle_before: datetime.datetime) -> int:
        """Finished, saved timelines without an event since `idle_before` leave memory (a late notification
        usually comes within seconds, and finds its timeline there); how many."""
        idle = [
            order_id
            for order_id, timeline in self._memory.items()
            if timeline.status == DONE and order_id not in self._unsaved and timeline.last_progress_at < idle_before
        ]
        for order_id in idle:
            del self._memory[order_id]
            del self._partition_of[order_id]
        return len(idle)

    def rebuild(self, partitions: set[int], records: Iterable[Stored]) -> int:
        """Refill `partitions` from the compacted topic's records, read in offset order so that the latest of
        each key wins; the unfinished come back into memory. How many."""
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
        ).fetchall()
        for order_id, value, partition in unfinished:
            timeline = self._readable(order_id, value)
            if timeline is None:
                self._db.execute("DELETE FROM timelines WHERE order_id = ?", (order_id,))
                continue
            self._memory[timeline.order_id] = timeline
            self._partition_of[timeline.order_id] = partition
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
            del self._memory[order_id]
            del self._partition_of[order_id]
            self._unsaved.discard(order_id)

    def unfinished(self) -> list[OrderTimeline]:
        """The orders not completed (all of them are in memory)."""
        return [timeline for timeline in self._memory.values() if timeline.status != DONE]

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Orders by status and sagas by state, over every saved timeline."""
        statuses = Counter(dict(self._db.execute("SELECT status, count(*) FROM timelines GROUP BY status")))
        sagas = Counter(
            dict(self._db.execute("SELECT saga, count(*) FROM timelines WHERE saga IS NOT NULL GROUP BY saga"))
        )
        return statuses, sagas
