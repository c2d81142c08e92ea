"""Text from records reaches the terminal escaped: an id cannot move the cursor, retitle the window or
reorder what is shown."""

from __future__ import annotations

from typing import Any

import pytest

from ops import reachability, tracking
from ops.cli import main
from ops.terminal import escaped
from processors.tracking.timeline import fold
from tests.factories import a_valid_order

# Sets the window title, then turns what follows right-to-left.
HOSTILE_ID = "o-1\x1b]0;owned\x07\u202eevil"


def test_control_and_bidirectional_characters_are_shown_escaped() -> None:
    assert escaped(HOSTILE_ID) == "o-1\\x1b]0;owned\\x07\\u202eevil"
    assert escaped("\r\x9b\u2066\x7f") == "\\x0d\\x9b\\u2066\\x7f"


def test_plain_text_tabs_newlines_and_letters_of_any_script_are_left_alone() -> None:
    text = "order Zürich-東京 שלום\tpaid\n"
    assert escaped(text) == text


def test_oms_track_prints_a_hostile_order_id_escaped(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    timeline = fold(None, a_valid_order(HOSTILE_ID))
    monkeypatch.setattr(tracking, "read_timeline", lambda settings, order_id: timeline)
    monkeypatch.setattr(reachability, "require", lambda settings, needs: None)  # no broker here

    assert main(["track", HOSTILE_ID]) == 0

    out = capsys.readouterr().out
    assert escaped(HOSTILE_ID) in out
    assert "\x1b" not in out and "\u202e" not in out


def test_errors_naming_a_hostile_id_are_escaped_too(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr(tracking, "read_timeline", lambda settings, order_id: None)
    monkeypatch.setattr(reachability, "require", lambda settings, needs: None)  # no broker here

    assert main(["track", HOSTILE_ID]) == 1

    err = capsys.readouterr().err
    assert escaped(HOSTILE_ID) in err and "\x1b" not in err
