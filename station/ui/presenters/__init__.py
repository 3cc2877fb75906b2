"""Presenters: turn workflow state into plain view models and screen taps into intents.

No Kivy here (a test holds this package to that): screens call these methods and render the
frozen view models they return. Every refusal from a workflow becomes `message` text for the
screen's banner; nothing raises into a Kivy callback. One module per mode (exam, lobby,
biomed), with the exam station's formatting, views and keypad in their own.
"""

from __future__ import annotations

from station.locale import translations
from station.ui.presenters.biomed import BiomedPresenter, DeviceLine
from station.ui.presenters.exam import ExamPresenter
from station.ui.presenters.format import Tile
from station.ui.presenters.lobby import LOBBY_TEXT, LobbyPresenter

__all__ = [
    "LOBBY_TEXT",
    "BiomedPresenter",
    "DeviceLine",
    "ExamPresenter",
    "LobbyPresenter",
    "Tile",
    "translations",
]
