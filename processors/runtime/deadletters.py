"""Dead letters: what a processor cannot use goes to `<topic>.dlq` with its original bytes and the error."""

from __future__ import annotations

from dataclasses import dataclass

from processors.runtime.records import Headers, Outgoing

MAX_MESSAGE_CHARS = 2000


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


def dead_letter(received: Received, error: BaseException, processor: str) -> Outgoing:
    """The original key, value and headers, plus headers that say where it came from and what went wrong."""
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
    return Outgoing(
        topic=f"{received.topic}.dlq",
        key=received.key,
        value=received.value,
        headers=received.headers + error_headers,
    )
