"""What the MA, lobby and biomed workflows share: the clock they are given, their two errors,
and the transition-table state machine each of them is.

A workflow's whole behaviour is its table of (state, event) -> state; an intent the table does
not allow raises `IllegalTransitionError` naming what is allowed. An intent the table allows
but a safety rule forbids raises `RefusedError` with a reason and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from station.errors import StationError

# Time comes from a clock passed in; no workflow reads the wall clock or sleeps.
Clock = Callable[[], datetime]

StateT = TypeVar("StateT", bound=StrEnum)
EventT = TypeVar("EventT", bound=StrEnum)


class IllegalTransitionError(StationError):
    """An intent the workflow's transition table does not allow in the current state."""

    def __init__(
        self, state: StrEnum, event: StrEnum, table: Mapping[tuple[Any, Any], object]
    ) -> None:
        self.state, self.event = state, event
        allowed = sorted(e.value for (s, e) in table if s == state)
        super().__init__(
            f"cannot {event.value} while {state.value}; allowed here: {', '.join(allowed)}"
        )


class RefusedError(StationError):
    """A safety rule said no; nothing was changed."""

    def __init__(self, reason: StrEnum, message: str, details: tuple[str, ...] = ()) -> None:
        self.reason, self.message, self.details = reason, message, details
        super().__init__(f"{reason.value}: {message}" + "".join(f"; {d}" for d in details))


def next_state(
    table: Mapping[tuple[StateT, EventT], StateT], state: StateT, event: EventT
) -> StateT:
    """Where `event` takes the workflow from `state`; raises if the table does not allow it."""
    target = table.get((state, event))
    if target is None:
        raise IllegalTransitionError(state, event, table)
    return target


def check_allowed(
    table: Mapping[tuple[StateT, EventT], StateT], state: StateT, event: EventT
) -> None:
    """Raises unless the table allows `event` in `state` (checked before any other work)."""
    next_state(table, state, event)
