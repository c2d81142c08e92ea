"""A SQLite file that several simulator processes share: their ledger of effects outside Kafka."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Well under the transaction timeout: a file locked for longer is an outage, and the message that met it is
# tried again by its stage (processors/runtime/stage.py), not held until the transaction times out.
BUSY_TIMEOUT_S = 5.0


class SqliteFile:
    """WAL (readers beside one writer, across processes), a kept-open connection per thread, and
    transactions that take the write lock from their start (`BEGIN IMMEDIATE`), so that two processes
    calling with one idempotency key at once see one effect."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = threading.local()
        with self.connection() as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(schema)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        # Kept open: closing the last connection to a WAL database checkpoints it, an fsync that would cost
        # every call. Autocommit mode: transactions are begun explicitly, and reads see the latest commit.
        db: sqlite3.Connection | None = getattr(self._connections, "db", None)
        if db is None:
            db = self._connections.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            # Durable across process crashes, which is what a simulator needs; not across power loss.
            db.execute("PRAGMA synchronous = NORMAL")
        yield db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
