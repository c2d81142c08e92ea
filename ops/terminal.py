"""What `oms` prints comes from records anyone can produce: an order id may hold terminal escape sequences
(which can rewrite the screen, set the window title, hide lines) or bidirectional-formatting characters
(which reorder what is shown). Printed text shows such characters as escapes, the way `repr` would.

Rich draws colours and progress bars with escape sequences of its own: it writes to the stream beneath
(`raw`), and what it draws from records is passed through `escaped` first.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# C0 controls but tab and newline, DEL, C1 controls, and Unicode's bidirectional formatting characters.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escaped(text: str) -> str:
    """`text` with every character that could move the cursor, restyle or reorder the terminal escaped."""
    return UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


class EscapingStream:
    """A text stream that writes `escaped` text to the stream it wraps."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(escaped(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def raw(stream: TextIO) -> TextIO:
    """The stream beneath an `EscapingStream`, for writers that escape what they take from records."""
    return stream.raw if isinstance(stream, EscapingStream) else stream


@contextmanager
def escaped_output() -> Iterator[None]:
    """While entered, `sys.stdout` and `sys.stderr` escape what is written to them."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = EscapingStream(raw(stdout))
    sys.stderr = EscapingStream(raw(stderr))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr
