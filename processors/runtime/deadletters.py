"""Dead letters: what a processor cannot use goes to `<topic>.dlq` with its original bytes and the error.

A dead letter must itself fit in a message: an input near the broker's limit plus the `dlq.*` headers, or an
input with an enormous header, is cut down (`bounded`), and says so in `dlq.truncated`; the pointer to the
original (topic, partition, offset) is always kept, so the full message can still be found where it came in.
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.runtime.records import Headers, Outgoing
from processors.runtime.sizes import headers_bytes, message_bytes
from schemas.models import AvroRecord
from topology.settings import MAX_MESSAGE_BYTES
from topology.topics import HEADERS

MAX_MESSAGE_CHARS = 2000
DLQ_PREFIX = "dlq."
TRUNCATED_HEADER = "dlq.truncated"
# Room kept for `dlq.truncated` itself, whose text is cut to fit it.
TRUNCATION_NOTE_BYTES = 1024
# An original header this big is no header of the contract (a routing slip is at most 16 KB): it goes first.
KEPT_HEADER_BYTES = max(spec.max_bytes for spec in HEADERS)


@dataclass(frozen=True)
class Received:
    """A message as it arrived, before anything was made of it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    record: AvroRecord | None = None
    """What `value` encodes, when the message was handed over in memory rather than read from Kafka."""


def dead_letter(received: Received, error: BaseException, processor: str, limit: int = MAX_MESSAGE_BYTES) -> Outgoing:
    """The original key, value and headers, plus headers that say where it came from and what went wrong;
    cut down to `limit` bytes if it would be bigger."""
    message = str(error) or repr(error)
    error_headers = (
        ("dlq.original.topic", received.topic.encode()),
        ("dlq.original.partition", str(received.partition).encode()),
        ("dlq.original.offset", str(received.offset).encode()),
        ("dlq.original.timestamp", str(received.timestamp).encode()),
        ("dlq.error.class", f"{type(error).__module__}.{type(error).__qualname__}".encode()),
        ("dlq.error.message", message[:MAX_MESSAGE_CHARS].encode()),
        ("dlq.processor", processor.encode()),
    )
    letter = Outgoing(
        topic=f"{received.topic}.dlq",
        key=received.key,
        value=received.value,
        # `dlq.*` headers are ours to write: one that came with the message would pass for ours.
        headers=tuple(item for item in received.headers if not item[0].startswith(DLQ_PREFIX)) + error_headers,
    )
    return bounded(letter, limit)


def bounded(letter: Outgoing, limit: int) -> Outgoing:
    """`letter`, or as much of it as fits in `limit` bytes: first the original's oversized headers go (largest
    first), then the value is cut, then the other original headers go, then the key is cut. The `dlq.*`
    headers stay, and `dlq.truncated` says what was cut."""
    if message_bytes(letter) <= limit:
        return letter
    ours = tuple(item for item in letter.headers if item[0].startswith(DLQ_PREFIX))
    originals = [item for item in letter.headers if not item[0].startswith(DLQ_PREFIX)]
    key, value = letter.key or b"", letter.value or b""
    budget = limit - TRUNCATION_NOTE_BYTES - headers_bytes(ours)
    cuts: list[str] = []

    def over() -> int:
        return len(key) + len(value) + headers_bytes(tuple(originals)) - budget

    def drop_headers(larger_than: int) -> None:
        for item in sorted(originals, key=lambda item: len(item[1] or b""), reverse=True):
            if over() <= 0 or len(item[1] or b"") <= larger_than:
                return
            originals.remove(item)
            cuts.append(f"header {item[0]}: {len(item[1] or b'')} bytes, dropped")

    drop_headers(KEPT_HEADER_BYTES)
    if over() > 0 and value:
        kept = max(0, len(value) - over())
        cuts.append(f"value: {len(value)} bytes, the first {kept} kept")
        value = value[:kept]
    drop_headers(0)
    if over() > 0 and key:
        kept = max(0, len(key) - over())
        cuts.append(f"key: {len(key)} bytes, the first {kept} kept")
        key = key[:kept]
    note = "; ".join(cuts).encode()[: TRUNCATION_NOTE_BYTES - len(TRUNCATED_HEADER)]
    return Outgoing(
        topic=letter.topic,
        key=key if letter.key is not None else None,
        value=value if letter.value is not None else None,
        headers=(*originals, *ours, (TRUNCATED_HEADER, note)),
        timestamp_ms=letter.timestamp_ms,
    )
