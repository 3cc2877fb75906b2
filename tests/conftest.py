"""Shared fixtures; the real-part fixtures (broker, BlueZ, pty, Kivy) live in tests/fixtures."""

from __future__ import annotations

import os

# Kivy must never open a window or parse pytest's arguments; set before anything imports it.
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

# Fixture modules for the real parts; each part's owner adds its module here.
pytest_plugins: list[str] = [
    "tests.fixtures.ble",
    "tests.fixtures.broker",
    "tests.fixtures.serial",
    "tests.fixtures.kivy",
]
