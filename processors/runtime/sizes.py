"""How big a message is to the broker, and the bound every message a processor produces stays under.

A message over the broker's limit fails in the producer, after the decision that made it: the transaction
aborts and the processor restarts into the same input for ever. Checked before it leaves, an oversized
output is its input's fault (a dead letter), and a dead letter is cut down to fit (`deadletters.bounded`).
"""

from __future__ import annotations

from processors.runtime.records import Headers, Outgoing


class MessageTooLarge(ValueError):
    """A message would be bigger than a producer may send."""


def headers_bytes(headers: Headers) -> int:
    return sum(len(name) + len(value or b"") for name, value in headers)


def message_bytes(message: Outgoing) -> int:
    """Key, value and headers: what counts against the producer's and the broker's `message.max.bytes`."""
    return len(message.key or b"") + len(message.value or b"") + headers_bytes(message.headers)


def check_size(message: Outgoing, limit: int) -> None:
    size = message_bytes(message)
    if size > limit:
        raise MessageTooLarge(
            f"a message for {message.topic} would be {size} bytes, over the {limit} a message may have"
        )
