"""Progress bars of long commands: drawn on a terminal's stderr, nothing at all anywhere else."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from ops.progress import Bars, bars_for


def terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=120), screen


def test_bars_on_a_terminal_show_each_phase_and_its_count() -> None:
    console, screen = terminal()

    with Bars(True, console=console) as bars:
        producing = bars.bar("producing to oms.orders.commands", total=10)
        for _ in range(10):
            producing.advance()
        waiting = bars.bar("full speed: waiting for outcomes", total=10)
        waiting.update(7)
        settling = bars.bar("waiting for shipments to settle")
        settling.done()

    drawn = screen.getvalue()
    assert "producing to oms.orders.commands" in drawn and "10/10" in drawn
    assert "full speed: waiting for outcomes" in drawn and "7/10" in drawn
    assert "waiting for shipments to settle" in drawn
    assert "\x1b[" in drawn, "drawn in place, with a terminal's control sequences"


def test_a_description_is_shown_as_it_is_not_read_as_markup() -> None:
    console, screen = terminal()

    with Bars(True, console=console) as bars:
        bars.bar("replaying test.topic[0]", total=1).done()

    assert "replaying test.topic[0]" in screen.getvalue()


def test_bars_are_not_drawn_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with Bars() as bars:  # pytest's captured stderr is no terminal
        bar = bars.bar("producing", total=3)
        bar.advance()
        bar.update(3)
        bar.done()

    assert not bars.shown and not bar.drawn
    assert capsys.readouterr() == ("", "")


def test_a_function_given_the_callers_bars_draws_on_them_and_leaves_them_running() -> None:
    console, screen = terminal()

    with Bars(True, console=console) as outer:
        with bars_for(outer) as inner:
            assert inner is outer
            inner.bar("draining", total=2).update(2)
        outer.bar("after", total=1).done()

    drawn = screen.getvalue()
    assert "draining" in drawn and "after" in drawn


def test_a_function_asked_for_no_progress_draws_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with bars_for(False) as bars:
        bars.bar("producing", total=1).advance()

    assert not bars.shown
    assert capsys.readouterr() == ("", "")
