"""Unexpected errors on the Kivy thread: said on the screen, logged without patient data, and the
kiosk keeps running (#20: the lobby died on a KeyError when the schedule changed mid check-in).

An exception's message and its frames' locals can hold patient data (`KeyError: 'APT-1'`, a
name in a ValueError), so the log line carries only its type and where it was raised (file,
line, function). The screens' reaction is the presenters' `fault()`: the lobby wipes the
check-in and asks the patient to see the front desk; the exam station says so on screen and
keeps the rooming.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from kivy.base import ExceptionHandler, ExceptionManager

log = logging.getLogger("station.ui")

# Faults closer together than this, this many times, stop the redraws a fault asks for (a
# screen that fails to draw would otherwise fail again every frame, flooding the journal).
BURST_S = 10.0
BURST_LIMIT = 5


def where_raised(exc: BaseException) -> str:
    """`module.py:123 in function` for each frame, innermost last; no message, no values."""
    frames = traceback.extract_tb(exc.__traceback__)
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in reversed(frames))


def log_fault(exc: BaseException, during: str, screen: str) -> None:
    log.error(
        "unexpected %s during %s on the %s screen (message withheld: it may hold patient "
        "data) at %s",
        type(exc).__name__,
        during,
        screen,
        where_raised(exc) or "?",
    )


class FaultBurst:
    """Counts faults: past BURST_LIMIT within BURST_S they are neither logged nor redrawn
    after (a screen that fails to draw would fail every frame), until they stop coming."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._times: list[float] = []

    def add(self) -> int:
        """One more fault: how many came within BURST_S, this one included."""
        now = self._now()
        self._times = [t for t in self._times if now - t < BURST_S] + [now]
        return len(self._times)


class KioskExceptionHandler(ExceptionHandler):  # type: ignore[misc]
    """For the App's main loop: anything that reaches Kivy's ExceptionManager (a binding, a
    Clock callback that is not the controller's) goes to `on_fault` and the loop goes on.
    Ctrl-C and SystemExit still stop the process."""

    def __init__(self, on_fault: Callable[[BaseException, str], None]) -> None:
        super().__init__()
        self._on_fault = on_fault

    def handle_exception(self, inst: BaseException) -> int:
        if not isinstance(inst, Exception):
            return int(ExceptionManager.RAISE)
        try:
            self._on_fault(inst, "the main loop")
        except Exception as second:  # the handler itself must never raise
            log_fault(second, "handling a fault", "?")
        return int(ExceptionManager.PASS)
