"""A saga's behaviour as data: a table of guarded transitions (state x trigger -> target, action), and its
rendering as a Mermaid state diagram, so that the picture in `docs/` is the code's own.

The table knows nothing of Kafka or records. A trigger is a name; a guard is a named test of whatever
context the saga passes in; a target is a state, `SAME` (stay, e.g. to act again) or `CHOICE`: a
pseudo-state whose branches are tried in order and the first whose guard holds decides where to go. A
saga whose next state follows from the facts it has seen (rather than from the message that arrived) needs
one choice instead of a transition per fact: duplicate and out-of-order messages then change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Context = TypeVar("Context")

SAME = "="
CHOICE = "?"


@dataclass(frozen=True)
class Guard(Generic[Context]):
    """A named condition; the name is what the diagram shows."""

    name: str
    holds: Callable[[Context], bool]


def always() -> Guard[Context]:
    return Guard("", lambda _context: True)


Reason = Callable[[Context], str]


@dataclass(frozen=True)
class Transition(Generic[Context]):
    sources: tuple[str, ...]
    trigger: str
    target: str
    guard: Guard[Context] = field(default_factory=always)
    action: str = ""
    """What is done on the way, besides the target's entry (e.g. "repeat step"); shown in the diagram."""
    reason: Reason[Context] | None = None
    """Why, when the target is a failure or a rejection."""
    code: str = ""
    """The reason, machine-readable."""


@dataclass(frozen=True)
class Branch(Generic[Context]):
    guard: Guard[Context]
    target: str
    reason: Reason[Context] | None = None
    code: str = ""


@dataclass(frozen=True)
class Step:
    """What one trigger does: from `source` to `target` (maybe the same), doing `action` on the way."""

    source: str
    target: str
    trigger: str
    action: str
    reason: str | None
    code: str = ""

    @property
    def moved(self) -> bool:
        return self.source != self.target


@dataclass(frozen=True)
class StateMachine(Generic[Context]):
    name: str
    initial: str
    final: tuple[str, ...]
    transitions: tuple[Transition[Context], ...]
    choice: tuple[Branch[Context], ...]
    choice_name: str = "choice"

    def fire(self, state: str, trigger: str, context: Context) -> Step | None:
        """The first transition from `state` on `trigger` whose guard holds, or None: the trigger means nothing
        in this state (a duplicate, a late reply) and is ignored."""
        for transition in self.transitions:
            if state in transition.sources and transition.trigger == trigger and transition.guard.holds(context):
                return self._step(state, transition, context)
        return None

    def choose(self, context: Context) -> Branch[Context]:
        for branch in self.choice:
            if branch.guard.holds(context):
                return branch
        raise LookupError(f"{self.name}: no branch of {self.choice_name} holds")

    def _step(self, state: str, transition: Transition[Context], context: Context) -> Step:
        target, reason, code = transition.target, transition.reason, transition.code
        if target == SAME:
            target = state
        elif target == CHOICE:
            branch = self.choose(context)
            target, reason, code = branch.target, branch.reason, branch.code
        return Step(state, target, transition.trigger, transition.action, reason(context) if reason else None, code)

    def states(self) -> list[str]:
        seen = [self.initial]
        for target in [t.target for t in self.transitions] + [b.target for b in self.choice]:
            if target not in (SAME, CHOICE, *seen):
                seen.append(target)
        for transition in self.transitions:
            seen.extend(source for source in transition.sources if source not in seen)
        return seen

    def mermaid(self) -> str:
        """The table as a Mermaid `stateDiagram-v2`."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}", f"    state {self.choice_name} <<choice>>"]
        for transition in self.transitions:
            for source in transition.sources:
                target = {SAME: source, CHOICE: self.choice_name}.get(transition.target, transition.target)
                lines.append(
                    f"    {source} --> {target}: {label(transition.trigger, transition.guard, transition.action)}"
                )
        for branch in self.choice:
            lines.append(f"    {self.choice_name} --> {branch.target}: {branch.guard.name or 'otherwise'}")
        lines.extend(f"    {state} --> [*]" for state in self.final)
        return "\n".join(lines) + "\n"


def label(trigger: str, guard: Guard[Context], action: str) -> str:
    text = ", ".join(part for part in (trigger, guard.name) if part)
    return f"{text} / {action}" if action else text
