"""The channel that reaches customers, and a simulator of it that writes each message to a file.

A channel sends once per idempotency key however often it is asked, so that a processor that crashes
between sending and committing never tells a customer the same thing twice.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import IO, Protocol

from pydantic import BaseModel, ValidationError

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
    return settings.run_dir / "simulators" / "notifications.jsonl"


class FileNotificationChannel:
    """Simulated email: each message sent is a JSON line appended to a file.

    The file is also the record of the keys sent. A send takes an exclusive `flock` on it, reads what
    others appended since its last look, and appends only for a new key; so two processes, or two
    instances in one, never both send for one key, and a restart forgets nothing.
    """

    name = "email"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or notifications_file(get_settings())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._message_ids: dict[str, str] = {}  # idempotency key -> message id, for the file read so far
        self._file_identity: tuple[int, int] | None = None
        self._read_up_to = 0

    def send(
        self,
        idempotency_key: str,
        recipient: str,
        kind: NotificationKind,
        order_id: str,
        text: str,
    ) -> str:
        with self.path.open("a+b") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes
            self._catch_up(file)
            message_id = self._message_ids.get(idempotency_key)
            if message_id is not None:
                return message_id
            sent = SentNotification(
                message_id=f"{self.name}-{uuid.uuid4()}",
                idempotency_key=idempotency_key,
                channel=self.name,
                recipient=recipient,
                kind=kind,
                order_id=order_id,
                text=text,
                sent_at=datetime.datetime.now(datetime.UTC),
            )
            # Flushed, not fsynced: other processes and a restart after a crash see it; only a power cut
            # could lose it, which is no concern of a simulator.
            file.write(sent.model_dump_json().encode() + b"\n")
            file.flush()
            self._message_ids[idempotency_key] = sent.message_id
            self._read_up_to = os.fstat(file.fileno()).st_size
            return sent.message_id

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

    def _catch_up(self, file: IO[bytes]) -> None:
        """Learn the keys appended since this instance last looked; the caller holds the lock."""
        status = os.fstat(file.fileno())
        identity = (status.st_dev, status.st_ino)
        if identity != self._file_identity or status.st_size < self._read_up_to:  # replaced or truncated
            self._message_ids.clear()
            self._file_identity = identity
            self._read_up_to = 0
        file.seek(self._read_up_to)
        appended = file.read()
        if appended and not appended.endswith(b"\n"):
            # A line torn by a crash mid-write was never sent; end it so that the next line stands alone.
            file.write(b"\n")
            file.flush()
        for line in appended.splitlines():
            sent = _parse(line)
            if sent is not None:
                self._message_ids.setdefault(sent.idempotency_key, sent.message_id)
        self._read_up_to = os.fstat(file.fileno()).st_size


def _parse(line: bytes) -> SentNotification | None:
    try:
        return SentNotification.model_validate_json(line)
    except ValidationError:
        return None  # a torn line
