"""When the supervisor restarts a processor that ended, and when it gives up on one that keeps crashing.

Pure: the supervisor passes the clock, the exit status and what it remembers of the processor's earlier exits,
and gets back what to remember now and what to do. Two kinds of exit are told apart:

- an **outage** (`OUTAGE_EXIT_CODE`: a dependency stayed down longer than the process's own retries) is the
  world's fault: restarted with a growing backoff for as long as it lasts, never counted as a crash;
- any other exit the supervisor did not ask for is a **crash**: restarted with a growing backoff until
  `max_crashes` fall within `window_s`, after which the processor is crash-looping and left stopped (every
  restart would die on the same record or the same bad setting, and only an operator can change that).
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.runtime.errors import OUTAGE_EXIT_CODE

CRASH_BACKOFF_S = (1.0, 2.0, 5.0, 10.0)
OUTAGE_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
RAN_A_WHILE_S = 60.0
"""A process that ran this long before an outage ended it starts its outage backoff afresh."""


@dataclass(frozen=True)
class RestartPolicy:
    max_crashes: int = 5
    window_s: float = 300.0


@dataclass(frozen=True)
class ExitHistory:
    """What the supervisor remembers of one processor's earlier exits."""

    crashes: tuple[float, ...] = ()
    """When it crashed (the supervisor's clock), within the policy's window."""
    outages_in_a_row: int = 0


@dataclass(frozen=True)
class Restart:
    delay_s: float
    outage: bool
    """The exit was an outage, not counted as a crash."""


@dataclass(frozen=True)
class GiveUp:
    crashes: int
    window_s: float


Decision = Restart | GiveUp


def is_outage_exit(code: int) -> bool:
    return code == OUTAGE_EXIT_CODE


def after_exit(
    policy: RestartPolicy, history: ExitHistory, code: int, now: float, ran_for_s: float
) -> tuple[ExitHistory, Decision]:
    """What to remember and do when a processor ended with `code` at `now` after running `ran_for_s`."""
    recent = tuple(at for at in history.crashes if now - at < policy.window_s)
    if is_outage_exit(code):
        outages = 1 if ran_for_s >= RAN_A_WHILE_S else history.outages_in_a_row + 1
        return ExitHistory(recent, outages), Restart(_backoff(OUTAGE_BACKOFF_S, outages), outage=True)
    crashes = (*recent, now)
    if len(crashes) >= policy.max_crashes:
        return ExitHistory(crashes), GiveUp(len(crashes), policy.window_s)
    return ExitHistory(crashes), Restart(_backoff(CRASH_BACKOFF_S, len(crashes)), outage=False)


def _backoff(steps: tuple[float, ...], count: int) -> float:
    return steps[min(count, len(steps)) - 1]
