"""`station ui` in its own process (Kivy's window belongs to one process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ui


def station(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1"}
    return subprocess.run(
        [sys.executable, "-m", "station", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("mode", ["exam", "lobby", "biomed"])
def test_screenshot_renders_the_first_screen_of_each_mode(mode: str, tmp_path: Path) -> None:
    out = tmp_path / f"{mode}.png"
    result = station("ui", "--mode", mode, "--size", "1280x800", "--screenshot", str(out))
    assert (result.returncode, result.stdout) == (0, f"station: wrote {out}\n")
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    # IHDR width and height: the window size asked for.
    assert (int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")) == (
        1280,
        800,
    )


def test_bad_size_is_a_clear_error() -> None:
    result = station("ui", "--size", "big")
    assert (result.returncode, result.stderr) == (
        2,
        "station: --size 'big': expected WIDTHxHEIGHT, like 800x480\n",
    )


def test_without_a_display_it_says_how_to_view_instead_of_crashing() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")
    }
    result = subprocess.run(
        [sys.executable, "-m", "station", "ui", "--mode", "lobby"],
        capture_output=True,
        text=True,
        env={**env, "KIVY_NO_ARGS": "1"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("station: no display here")
    assert "station ui --screenshot screen.png" in result.stderr


def test_screenshot_into_a_missing_folder_is_an_error_not_wrote(tmp_path: Path) -> None:
    out = tmp_path / "nonexistent" / "x.png"
    result = station("ui", "--screenshot", str(out))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"station: --screenshot {out}: the folder {out.parent} does not exist\n"
    )
    assert not out.parent.exists()


CLIPBOARD_SCRIPT = """
import logging, sys
from kivy.base import EventLoop
EventLoop.ensure_window()
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record)
logging.getLogger("kivy").addHandler(Keep(level=logging.WARNING))
from kivy.core.window import Window
from station.app.demo_ui import build_presenter
from station.ui.app import StationUI
ui = StationUI("lobby", build_presenter("lobby"))
Window.add_widget(ui.root)
ui.intent("start")  # the find screen: two text fields
for _ in range(4):
    EventLoop.idle()
field = ui.screen.ids.name
field.focus = True
field.insert_text("ZZTEST")
field.select_all()  # a selection went to X's cut buffer where one exists
for _ in range(4):
    EventLoop.idle()
print(sorted({r.levelname for r in records}), "kivy.core.clipboard" in sys.modules)
"""


def test_text_fields_load_no_clipboard_and_log_nothing_critical() -> None:
    """#15: "Kivy clipboard tracebacks are logged as CRITICAL" (no xclip/xsel on the Pi)."""
    env = {
        **os.environ,
        "KIVY_NO_ARGS": "1",
        "KIVY_NO_CONSOLELOG": "1",
        "SDL_VIDEODRIVER": "offscreen",
    }
    result = subprocess.run(
        [sys.executable, "-c", CLIPBOARD_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "[] False"


BROKEN_AUDIT = """
import sys
from station.app import ui_audit
from station.cli import main

def broken(p, _o):  # a state whose setup raises
    raise LookupError("APT-NOPE is not on the demo list")

good = next(s for s in ui_audit.states() if s.name == "exam/signin")
ui_audit.states = lambda: [good, ui_audit.State("exam/broken", "exam", broken)]
ui_audit.SIZES = ((800, 480),)
sys.exit(main(["ui", "--audit"]))
"""


def test_audit_says_which_state_failed_and_why() -> None:
    """`station ui --audit` exited 1 with nothing said when a state's setup raised."""
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1"}
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_AUDIT],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(s.get("state"), s.get("error")) for s in lines[:-1]] == [
        ("exam/signin", None),
        ("exam/broken", "LookupError: APT-NOPE is not on the demo list"),
    ]
    assert lines[-1] == {"summary": {"states": 2, "with_violations": 0, "failed": 1}}
    assert result.stderr.startswith(
        "station ui --audit: state exam/broken at 800x480 (en) could not be rendered: "
        "LookupError: APT-NOPE is not on the demo list\n"
    )
    assert "in broken" in result.stderr  # the traceback says where
