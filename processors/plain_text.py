"""Text that came in a command, made fit to show people: visible, and no longer than it may be.

A command's strings reach people through our texts (a customer's email, a partner's rejection reasons, an
operator's terminal). Control, escape and bidirectional-formatting characters in them are shown as escapes
(`\\x1b`, `\\u202e`), so that no text of ours can move a cursor, colour a terminal or reverse what a customer
reads; and text is cut, with an ellipsis, to the length declared for where it goes.
"""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"
# Control (Cc), format (Cf: bidi overrides, zero-width), surrogate, private-use and unassigned characters, and the
# line and paragraph separators: none is a character a person can see.
_UNSEEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def visible(text: str) -> str:
    """`text` with every character a person cannot see shown as its escape: `\\x1b`, `\\u202e`, `\\U000e0001`."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape(char) if unicodedata.category(char) in _UNSEEN else char for char in text)


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit - 1` characters and an ellipsis when it is longer than `limit`."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def shown(text: str, limit: int) -> str:
    """`text` visible, then cut to `limit` characters (an escape counts as the characters it shows)."""
    return cut(visible(text), limit)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
