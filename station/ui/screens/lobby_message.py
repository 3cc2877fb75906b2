"""One message and one button: "please see the front desk", "you are checked in", staff."""

from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty

from station.ui.screens.base import BaseScreen


class LobbyMessageScreen(BaseScreen):
    action = StringProperty("restart")

    def render(self, presenter: Any) -> None:
        view = presenter.view()
        if presenter.screen != self.name or not self.changed(view.text):
            return
        self.ids.title.text = view.text["title"]
        self.ids.body.text = view.text["body"]
        self.ids.action.text = view.text["action"]
        self.action = "staff_return" if presenter.checkin.state.value == "staff" else "restart"
