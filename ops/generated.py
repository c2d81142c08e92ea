"""Generated blocks in the docs: text between two marker lines, rewritten from the code it describes."""

from __future__ import annotations

import re
from pathlib import Path


def replace_between(path: Path, begin: str, end: str, block: str) -> bool:
    """Put `block` (markers included) in place of what stands between `begin` and `end` in `path`; True when
    the file changed."""
    text = path.read_text()
    if begin not in text or end not in text:
        raise ValueError(f"{path} has no markers ({begin} ... {end})")
    updated = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.DOTALL)
    if updated != text:
        path.write_text(updated)
    return updated != text
