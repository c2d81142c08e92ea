"""When the supervisor restarts a processor that ended, and when it leaves one stopped.

Pure: the supervisor passes the clock, the exit status and what it remembers of the processor's earlier exits,
and gets back what to remember now and what to do. Three kinds of exit are told apart:

- an **outage** (`OUTAGE_EXIT_CODE`: a dependency stayed down longer than the process's own retries) is the
  world's fault: restarted with a growing backoff for as long as it lasts, never counted as a crash;
- an exit that a restart would only repeat, **finished** (0) or a **configuration error** (`CONFIG_EXIT_CODE`, or
  2, a command the program refused): left stopped, with its reason;
- any other exit the supervisor did not ask for, a `kill -9` included, is a **crash**: restarted for ever, with
  a backoff that doubles from `CRASH_BACKOFF_S` up to `CRASH_BACKOFF_CAP_S` while the crashes come one after
  the other, as Kubernetes restarts a container. A processor is **crash-looping** while `max_crashes` fall
  within `window_s`: `oms status` and an alert say so, since only an operator can change what kills it, but
  the supervisor never gives up on it (what killed it may pass: a disk, a bad deploy rolled back).
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.runtime.errors import CONFIG_EXIT_CODE, OUTAGE_EXIT_CODE

CRASH_BACKOFF_S = 1.0
CRASH_BACKOFF_CAP_S = 60.0
OUTAGE_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
RAN_A_WHILE_S = 60.0
"""A process that ran this long before it ended starts its backoff afresh."""
USAGE_EXIT_CODE = 2
"""`oms` refused its command line (argparse, an unknown processor): the same command would be refused again."""


@dataclass(frozen=True)
class RestartPolicy:
    max_crashes: int = 5
    window_s: float = 300.0


@dataclass(frozen=True)
class ExitHistory:
    """What the supervisor remembers of one processor's earlier exits."""

    crashes: tuple[float, ...] = ()
    """When it crashed (the supervisor's clock), within the policy's window."""
    crashes_in_a_row: int = 0
    outages_in_a_row: int = 0


@dataclass(frozen=True)
class Restart:
    delay_s: float
    outage: bool
    """The exit was an outage, not counted as a crash."""


@dataclass(frozen=True)
class StayDown:
    reason: str
    """Why a restart would not help, in a few words."""


Decision = Restart | StayDown


def is_outage_exit(code: int) -> bool:
    return code == OUTAGE_EXIT_CODE


def after_exit(
    policy: RestartPolicy, history: ExitHistory, code: int, now: float, ran_for_s: float
) -> tuple[ExitHistory, Decision]:
    """What to remember and do when a processor ended with `code` at `now` after running `ran_for_s`."""
    recent = tuple(at for at in history.crashes if now - at < policy.window_s)
    if code == 0:
        return ExitHistory(recent), StayDown("it finished (exit 0)")
    if code in (CONFIG_EXIT_CODE, USAGE_EXIT_CODE):
        return ExitHistory(recent), StayDown(f"a configuration error (exit {code}), which a restart would meet again")
    fresh = ran_for_s >= RAN_A_WHILE_S
    if is_outage_exit(code):
        outages = 1 if fresh else history.outages_in_a_row + 1
        delay = OUTAGE_BACKOFF_S[min(outages, len(OUTAGE_BACKOFF_S)) - 1]
        return ExitHistory(recent, history.crashes_in_a_row, outages), Restart(delay, outage=True)
    in_a_row = 1 if fresh else history.crashes_in_a_row + 1
    delay = min(CRASH_BACKOFF_CAP_S, CRASH_BACKOFF_S * 2 ** min(in_a_row - 1, 30))
    return ExitHistory((*recent, now), in_a_row, history.outages_in_a_row), Restart(delay, outage=False)


def crash_looping(policy: RestartPolicy, history: ExitHistory, now: float) -> int:
    """How many times it crashed within the window, when that is `max_crashes` or more; else 0."""
    crashes = sum(1 for at in history.crashes if now - at < policy.window_s)
    return crashes if crashes >= policy.max_crashes else 0
