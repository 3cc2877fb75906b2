"""Lobby welcome: start check-in; the QR scanner types into the app (see StationUI.hid)."""

from __future__ import annotations

from typing import Any

from station.ui.screens.base import BaseScreen


class LobbyWelcomeScreen(BaseScreen):
    def staff(self) -> None:
        pin, self.ids.pin.text = self.ids.pin.text, ""
        self.intent("staff_exit", pin)

    def render(self, presenter: Any) -> None:
        view = presenter.view()
        if not self.changed(view.text):
            return
        for key in ("title", "subtitle", "start", "qr", "staff"):
            self.ids[key].text = view.text[key]
        self.ids.pin.hint_text = view.text["pin"]
