"""`oms timers [ORDER]`: the durable timers still pending on `oms.timers`, soonest first, and how late any is."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ops.tables import read_table
from ops.terminal import escaped, raw
from schemas.models import TimerScheduled
from schemas.registry import registry_client
from schemas.serde import RecordCodec, UndecodableRecord
from topology.settings import Settings
from topology.topics import TIMERS


def pending_timers(settings: Settings, order_id: str | None = None) -> tuple[list[TimerScheduled], int]:
    """Every timer scheduled and neither fired nor cancelled (the compacted topic's live keys), soonest first;
    and how many entries are not timers at all (the timer service dead-letters those)."""
    codec = RecordCodec(registry_client(settings), TIMERS.name)
    timers, unreadable = [], 0
    for row in read_table(settings, TIMERS.name).values():
        try:
            timers.append(codec.decode_as(row.value, TimerScheduled))
        except UndecodableRecord:
            unreadable += 1
    return sorted((t for t in timers if order_id in (None, t.order_id)), key=lambda timer: timer.due_at), unreadable


def timer_row(timer: TimerScheduled) -> dict[str, object]:
    """A pending timer as `oms timers --json` gives it."""
    return {
        "order_id": timer.order_id,
        "purpose": timer.purpose,
        "attempt": timer.attempt,
        "due_at": timer.due_at.isoformat(),
        "timer_id": timer.timer_id,
    }


def timers_table(timers: Iterable[TimerScheduled], now: datetime.datetime) -> Table:
    table = Table("order", "purpose", "attempt", "due", "in", "timer id", box=None, header_style="bold")
    for timer in timers:
        left = (timer.due_at - now).total_seconds()
        due_in = f"{left:.0f}s" if left >= 0 else f"[red]late by {-left:.0f}s[/red]"
        table.add_row(
            shown(timer.order_id),
            shown(timer.purpose),
            str(timer.attempt),
            timer.due_at.isoformat(),
            due_in,
            shown(timer.timer_id),
        )
    return table


def shown(text: str) -> Text:
    """Text from a record as a cell: escaped, and never read as rich markup."""
    return Text(escaped(text))


def print_timers(timers: list[TimerScheduled], unreadable: int, now: datetime.datetime) -> None:
    # Piped: whole ids, not cut to 80 columns.
    console = Console(file=raw(sys.stdout), width=None if sys.stdout.isatty() else 200)
    if unreadable:
        console.print(f"{unreadable} entries of {TIMERS.name} are not timers (see {TIMERS.dead_letter_topic.name})")
    if not timers:
        console.print("no timer pending")
        return
    console.print(timers_table(timers, now))
    late = sum(1 for timer in timers if timer.due_at < now)
    console.print(f"{len(timers)} pending, {late} late")
