"""The UI thread without Kivy (the headless demo, tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from station.app.services import StationServices

import logging
import queue
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class HeadlessHost:
    """The UI thread without Kivy (the headless demo, tests): whoever calls `run_until` is the
    UI thread; link and MQTT threads `post` to it, as they would to the Kivy clock."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self.services: StationServices | None = None

    def post(self, action: Callable[[], object]) -> None:
        self._queue.put(action)

    def _changed(self) -> None:
        if self.services is not None:
            self.services.after_ui_change()

    def intent(self, name: str, *args: Any) -> None:
        """An MA tap, as StationUI.intent does it."""
        assert self.services is not None
        presenter: Any = self.services.presenter
        target = presenter.biomed if presenter.screen == "biomed" else presenter
        getattr(target, name)(*args)
        self._changed()

    def run_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Run hand-overs (and the presenter's tick once a second) until `done()`; a
        TimeoutError naming `what` if it never is."""
        assert self.services is not None
        deadline = time.monotonic() + timeout_s
        next_tick = time.monotonic() + 1.0
        while not done():
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"{what}: not done after {timeout_s:g} s")
            try:
                action = self._queue.get(timeout=min(0.05, max(0.0, deadline - now)))
            except queue.Empty:
                pass
            else:
                action()
                self._changed()
            if time.monotonic() >= next_tick:
                next_tick += 1.0
                self.services.presenter.tick()
                self._changed()
