"""Shared fixtures; the real-part fixtures (broker, BlueZ, pty, Kivy) live in tests/fixtures."""

from __future__ import annotations

import os

from hypothesis import settings

# Property tests and fuzzers are seeded (derandomize: the same examples on every run, so a CI
# failure reproduces) and have no per-example deadline: on a loaded 2-core CI machine a slow
# example is not a bug, and speed is measured by bench/, never by tests.
settings.register_profile("station", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("station")

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
    "tests.fixtures.mllp",
    "tests.fixtures.postgres",
    "tests.fixtures.xwindow",
]
