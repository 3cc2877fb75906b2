"""`station ui`: the touchscreen for one mode (exam, lobby, biomed) on simulated devices."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from station.cli.common import add_command, fail

EXAMPLES = """\
  station ui                                   # exam-mode rooming on simulated devices
  station ui --mode lobby                      # patient self check-in kiosk (en/es/vi)
  station ui --language es                     # the MA's screens in Spanish
  station ui --mode biomed                     # device binding and tests (demo PIN 2468)
  station ui --mode exam --screenshot exam.png # no display: render the first screen to a PNG
  station ui --audit                           # layout audit of every screen state (JSON lines)"""

HOW_TO_VIEW = """\
station: no display here (DISPLAY / WAYLAND_DISPLAY unset and no Pi console).
  - on the Pi: run it on the touchscreen console (the station service does this), or
  - over SSH: `ssh -X` to forward the window, or
  - headless: `station ui --screenshot screen.png` renders offscreen to a PNG, and
    `station demo --headless` prints what each rooming would send."""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "ui",
        summary="open the touchscreen UI (exam, lobby or biomed) on simulated devices",
        description="Opens the station's screens with obviously fake patients (ZZTEST) and "
        "simulated devices whose readings are marked mode=demo. Demo badge BADGE-DEMO or "
        "PIN 1234 signs the MA in; the lobby's staff PIN is 0000; biomed's PIN is 2468.",
        examples=EXAMPLES,
    )
    parser.add_argument("--mode", choices=("exam", "lobby", "biomed"), default="exam")
    parser.add_argument(
        "--language",
        default="en",
        help="the station's language, as `[display] language` sets it (station/locale; in "
        "the lobby, the one each patient starts in)",
    )
    parser.add_argument(
        "--size", default="800x480", help="window size, WIDTHxHEIGHT (default 800x480)"
    )
    parser.add_argument(
        "--screenshot",
        metavar="PNG",
        help="render offscreen, save the first screen to this file and exit",
    )
    parser.add_argument(
        "--audit",
        action="store_true",
        help="render every state of every screen offscreen and check the layout: one JSON "
        "line per state, then a summary; exit 1 on any violation",
    )
    parser.set_defaults(func=run)


def has_display() -> bool:
    """A screen to open a window on (X, Wayland, a real SDL driver, or the Pi's KMS console)."""
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or (driver and driver not in ("offscreen", "dummy"))
        or Path("/dev/dri/card0").exists()
    )


def _quiet_clipboard() -> None:
    # The station never copies or pastes; without xclip/xsel Kivy tried each provider and
    # logged their tracebacks as CRITICAL. The SDL2 one needs nothing extra.
    os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")


def open_ui(mode: str, width: int = 800, height: int = 480, language: str = "en") -> int:
    """Run the App for one mode on simulated devices until the window is closed."""
    _quiet_clipboard()
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    # A touchscreen station has no keyboard: the docked on-screen one for every text field
    # (the complaint's free text, the PINs, the lobby's fields; a USB keyboard still works),
    # the screen moved so the field being typed stays above it (station/ui/keyboard.py).
    from station.ui.keyboard import use_docked_keyboard

    use_docked_keyboard()
    from station.app.demo_ui import demo_station_ui
    from station.ui.app import StationApp, StationUI
    from station.ui.ports import EspeakSpeaker
    from station.ui.probe import probe_path

    def factory() -> StationUI:
        # The lobby reads each screen aloud (espeak-ng on the Pi; silent if it is missing).
        return demo_station_ui(mode, speaker=EspeakSpeaker(), language=language)

    StationApp(factory, probe=probe_path()).run()
    return 0


def _offscreen(width: int, height: int) -> None:
    _quiet_clipboard()
    os.environ["SDL_VIDEODRIVER"] = "offscreen"
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "maxfps", "0")
    Config.set("input", "mouse", "")
    from kivy.base import EventLoop

    EventLoop.ensure_window()


def audit() -> int:
    """The layout audit over every state (station.app.ui_audit): JSON lines on stdout."""
    _offscreen(800, 480)
    # Kivy routes sys.stderr into its logger (silent with KIVY_NO_CONSOLELOG): what fails is
    # told on the process's own stderr, never a silent exit 1.
    err = sys.__stderr__ or sys.stderr
    try:
        from station.app.ui_audit import run_audit

        return run_audit(
            lambda line: print(line, flush=True), lambda text: print(text, file=err, flush=True)
        )
    except Exception as exc:
        import traceback

        print(f"station ui --audit: {type(exc).__name__}: {exc}", file=err)
        traceback.print_exception(exc, file=err)
        return 1


def screenshot(mode: str, width: int, height: int, path: str, language: str = "en") -> int:
    """Render the mode's first screen offscreen (no display needed) and save it as a PNG."""
    target = Path(path)
    if not target.parent.is_dir():
        return fail(f"--screenshot {path}: the folder {target.parent} does not exist")
    os.environ["SDL_VIDEODRIVER"] = "offscreen"
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from station.app.demo_ui import build_presenter, offline_outbox
    from station.ui.app import StationUI

    EventLoop.ensure_window()
    ui = StationUI(mode, build_presenter(mode, outbox=offline_outbox(), language=language))
    Window.add_widget(ui.root)
    for _ in range(4):
        EventLoop.idle()
    ui.root.export_to_png(path)
    if not target.is_file():
        return fail(f"--screenshot {path}: nothing was written (is the folder writable?)")
    print(f"station: wrote {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        width, height = (int(part) for part in args.size.lower().split("x"))
    except ValueError:
        return fail(f"--size {args.size!r}: expected WIDTHxHEIGHT, like 800x480")
    from station.locale import CODES, STAFF_CODES

    if args.language not in CODES:
        return fail(f"--language {args.language!r}: expected one of {', '.join(CODES)}")
    if args.mode != "lobby" and args.language not in STAFF_CODES:
        return fail(
            f"--language {args.language}: only the lobby's screens are in it; the {args.mode} "
            f"screens are in {', '.join(STAFF_CODES)}"
        )
    if args.audit:
        return audit()
    if args.screenshot:
        return screenshot(args.mode, width, height, args.screenshot, args.language)
    if not has_display():
        print(HOW_TO_VIEW, file=sys.stderr)
        return 2
    return open_ui(args.mode, width, height, args.language)
