"""The channel that reaches customers, and a simulator of it that writes each message to a file.

A channel sends once per idempotency key however often it is asked, so that a processor that crashes
between sending and committing never tells a customer the same thing twice.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import os
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from pydantic import BaseModel, ValidationError

from processors.adapters.sqlite_file import SqliteFile
from processors.runtime.deferred import kept_for
from schemas.models import NotificationKind
from topology.settings import Settings, get_settings


class NotificationChannel(Protocol):
    """Tells a customer something about their order; raises `TransientError` when trying again may help."""

    name: str  # what `NotificationSent.channel` says: email, sms, webhook...

    def send(
        self,
        idempotency_key: str,
        recipient: str,
        kind: NotificationKind,
        order_id: str,
        text: str,
    ) -> str:
        """The channel's message id; for a key already sent, the first message's id and nothing sent."""
        ...


class SentNotification(BaseModel):
    """One message the simulated channel sent: one line of its file."""

    message_id: str
    idempotency_key: str
    channel: str
    recipient: str
    kind: NotificationKind
    order_id: str
    text: str
    sent_at: datetime.datetime


def notifications_file(settings: Settings) -> Path:
    return settings.simulators_path / "notifications.jsonl"


class FileNotificationChannel:
    """Simulated email: each message sent is a JSON line appended to a file.

    `deferred`, what is sent is kept in memory and appended when the runtime flushes it, before its commit
    (`processors/runtime/deferred.py`); a key already sent or kept answers with its message id. A message's
    id follows from its key, so two processes that both send one key before either flushes agree on it, and
    the second to flush appends nothing.

    The file is the record of the keys sent; a SQLite index beside it (`<file>.keys.sqlite`) maps each key
    to its message and says how far the file has been indexed, so that memory does not grow with history. A
    send takes the index's write lock and the file's `flock`, indexes what others appended since, and
    appends only for a new key, indexing it in the same transaction; so two processes, or two instances in
    one, never both send for one key, and a crash between the append and the index loses nothing: the next
    send indexes the line.
    """

    name = "email"

    def __init__(self, path: Path | None = None, *, deferred: bool = False) -> None:
        self.path = path or notifications_file(get_settings())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._index = SqliteFile(self.path.with_name(f"{self.path.name}.keys.sqlite"), INDEX_SCHEMA)
        self._kept = kept_for("notifications", self.path, lambda: _KeptMessages(self._append)) if deferred else None

    def send(
        self,
        idempotency_key: str,
        recipient: str,
        kind: NotificationKind,
        order_id: str,
        text: str,
    ) -> str:
        sent = SentNotification(
            message_id=message_id_for(self.name, idempotency_key),
            idempotency_key=idempotency_key,
            channel=self.name,
            recipient=recipient,
            kind=kind,
            order_id=order_id,
            text=text,
            sent_at=datetime.datetime.now(datetime.UTC),
        )
        if self._kept is None:
            return self._append([sent])[0]
        kept = self._kept.messages.get(idempotency_key)
        if kept is not None:
            return kept.message_id
        with self._index.connection() as index:
            known = index.execute("SELECT message_id FROM sent WHERE key = ?", (idempotency_key,)).fetchone()
        if known is not None:
            return str(known[0])
        self._kept.messages[idempotency_key] = sent
        return sent.message_id

    def flush(self) -> None:
        """Append what this process sent since the last flush (`deferred`)."""
        if self._kept is not None:
            self._kept.flush()

    def _append(self, messages: list[SentNotification]) -> list[str]:
        """Append the messages whose keys were never sent, under both locks; each one's message id, the first
        one sent under its key."""
        with self._index.transaction() as index, self.path.open("a+b") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes
            self._catch_up(index, file)
            ids, lines = [], []
            for sent in messages:
                known = index.execute("SELECT message_id FROM sent WHERE key = ?", (sent.idempotency_key,)).fetchone()
                if known is not None:
                    ids.append(str(known[0]))
                    continue
                lines.append(sent.model_dump_json().encode() + b"\n")
                index.execute(
                    "INSERT INTO sent (key, message_id) VALUES (?, ?)", (sent.idempotency_key, sent.message_id)
                )
                ids.append(sent.message_id)
            # Flushed, not fsynced: other processes and a restart after a crash see it; only a power cut
            # could lose it, which is no concern of a simulator.
            file.write(b"".join(lines))
            file.flush()
            index.execute("UPDATE indexed SET up_to = ?", (os.fstat(file.fileno()).st_size,))
            return ids

    def sent(self) -> list[SentNotification]:
        """Every message sent through this file, by any instance, in the order sent."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as file:
            fcntl.flock(file, fcntl.LOCK_SH)
            return [sent for line in file.read().splitlines() if (sent := _parse(line)) is not None]

    def count_by_key(self) -> Counter[str]:
        """How many messages were sent per idempotency key: 1 each, unless deduplication failed."""
        return Counter(sent.idempotency_key for sent in self.sent())

    def _catch_up(self, index: sqlite3.Connection, file: IO[bytes]) -> None:
        """Index the keys appended since the index last looked; the caller holds both locks."""
        status = os.fstat(file.fileno())
        identity = f"{status.st_dev}:{status.st_ino}"
        row = index.execute("SELECT file, up_to FROM indexed").fetchone()
        if row is None or row[0] != identity or status.st_size < row[1]:  # new, replaced or truncated
            index.execute("DELETE FROM sent")
            index.execute("DELETE FROM indexed")
            index.execute("INSERT INTO indexed (file, up_to) VALUES (?, 0)", (identity,))
            up_to = 0
        else:
            up_to = row[1]
        if up_to == status.st_size:
            return
        file.seek(up_to)
        line = b""
        for line in file:  # a line at a time: a file indexed from scratch may hold millions
            sent = _parse(line)
            if sent is not None:
                index.execute(
                    "INSERT OR IGNORE INTO sent (key, message_id) VALUES (?, ?)",
                    (sent.idempotency_key, sent.message_id),
                )
        if line and not line.endswith(b"\n"):
            # A line torn by a crash mid-write was never sent; end it so that the next line stands alone.
            file.write(b"\n")
            file.flush()
        index.execute("UPDATE indexed SET up_to = ?", (os.fstat(file.fileno()).st_size,))


@dataclass(eq=False)  # registered by identity (deferred.defer)
class _KeptMessages:
    """What deferred sends to one file did in this process since the last flush."""

    append: Callable[[list[SentNotification]], list[str]]
    messages: dict[str, SentNotification] = field(default_factory=dict)

    def flush(self) -> None:
        if self.messages:
            self.append(list(self.messages.values()))
            self.messages.clear()


INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, message_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS indexed (file TEXT NOT NULL, up_to INTEGER NOT NULL);
"""


def message_id_for(channel: str, idempotency_key: str) -> str:
    """The same on every process, so that a message's id does not depend on who sent it first."""
    return f"{channel}-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"


def _parse(line: bytes) -> SentNotification | None:
    try:
        return SentNotification.model_validate_json(line)
    except ValidationError:
        return None  # a torn line
