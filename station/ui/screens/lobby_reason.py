"""Reason for visit, in the patient's words."""

from __future__ import annotations

from typing import Any

from station.ui.screens.base import BaseScreen


class LobbyReasonScreen(BaseScreen):
    def render(self, presenter: Any) -> None:
        view = presenter.view()
        if presenter.screen != self.name or not self.changed(view.text):
            return
        self.ids.title.text = view.text["title"]
        self.ids.back.text = view.text["back"]
        self.ids.done.text = view.text["done"]

    def on_leave(self, *args: Any) -> None:
        self.ids.reason.wipe()
        self._last = None
