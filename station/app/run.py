"""`station run` under Kivy: the services with the screens on top, sd_notify READY, the
watchdog fed from the Kivy clock, a clean SIGTERM shutdown."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from station.app.credentials import Credentials, credentials_path, load_credentials
from station.app.services import StationServices
from station.config import Settings, StationMode
from station.errors import ConfigError
from station.logs import RecentErrors, Redactor
from station.sdnotify import Notifier, Watchdog

log = logging.getLogger(__name__)


def start_logging(
    stream: TextIO | None = None, recent: RecentErrors | None = None
) -> tuple[Redactor, Callable[[], None]]:
    """The station's logging, scrubbed by one Redactor that the services teach today's
    patients to (schedule, typed text). Returns it and the undo. `recent` keeps the last
    warnings and errors for the diagnostics bundle."""
    from station.logs import setup_logging

    redactor = Redactor()
    return redactor, setup_logging(redactor, stream=stream, recent=recent or RecentErrors())


def run_station(settings: Settings, config_file: Path | None = None) -> int:
    """`station run`: services + Kivy screens until SIGTERM or the window closes."""
    recent = RecentErrors()
    redactor, undo_logging = start_logging(recent=recent)
    try:
        credentials = load_credentials(credentials_path(config_file))
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)  # noqa: T201 - the operator's terminal
        print("station: refusing to start without credentials", file=sys.stderr)  # noqa: T201
        undo_logging()
        return 2
    try:
        return _run_with_kivy(settings, credentials, redactor, recent)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)  # noqa: T201
        print("station: refusing to start", file=sys.stderr)  # noqa: T201
        return 2
    finally:
        undo_logging()


def _run_with_kivy(
    settings: Settings, credentials: Credentials, redactor: Redactor, recent: RecentErrors
) -> int:
    from station.ui.ports import EspeakSpeaker

    ui_box: list[Any] = []  # the StationUI, once Kivy has built it
    pending: list[Callable[[], object]] = []

    def post(action: Callable[[], object]) -> None:
        # Before the window exists, messages (the retained schedule) wait for it.
        if ui_box:
            ui_box[0].deliver(action)
        else:
            pending.append(action)

    speaker = EspeakSpeaker() if settings.station.mode == StationMode.LOBBY else None
    services = StationServices(
        settings,
        post=post,
        credentials=credentials,
        redactor=redactor,
        speaker=speaker,
        recent_errors=recent,
    )
    # Services first: a refusal (plain TCP, bad outbox key) comes before Kivy takes over
    # stderr and before any window opens.
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")  # read at `import kivy`: no xclip tracebacks
    from kivy.config import Config

    Config.set("graphics", "rotation", str(settings.display.rotation))
    # Every mode types somewhere (complaint text, PINs, the lobby's fields) on a touchscreen:
    # the docked keyboard, the screen moved so the field stays visible (station/ui/keyboard.py).
    from station.ui.keyboard import use_docked_keyboard

    use_docked_keyboard()
    from kivy.clock import Clock

    from station.ui.app import StationApp, StationUI

    notifier = Notifier.from_environment()
    watchdog = Watchdog.from_environment(notifier)

    def factory() -> StationUI:
        ui = StationUI(
            settings.station.mode.value, services.presenter, on_change=services.after_ui_change
        )
        ui_box.append(ui)
        for action in pending:
            ui.deliver(action)
        pending.clear()
        return ui

    app = StationApp(factory)

    def on_sigterm(_signum: int, _frame: object) -> None:
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    signal.signal(signal.SIGTERM, on_sigterm)
    services.start()
    notifier.ready(f"{settings.station.mode.value} station {settings.station.station_id}")
    every = watchdog.feed_every_s
    if every is not None:
        Clock.schedule_interval(lambda _dt: watchdog.tick(time.monotonic()), every / 2)
    try:
        app.run()
    finally:
        notifier.stopping()
        services.stop()
    return 0
