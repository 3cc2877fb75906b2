"""Reason for visit, in the patient's words."""

from __future__ import annotations

from typing import Any

from station.ui.screens.base import BaseScreen


class LobbyReasonScreen(BaseScreen):
    _last_reason: str | None = None

    def render(self, presenter: Any) -> None:
        view = presenter.view()
        if presenter.screen != self.name or not self.changed(view.text):
            return
        entering = self._last_reason is None
        self._last_reason = view.text["reason"]
        self.ids.title.text = view.text["title"]
        self.ids.back.text = view.text["back"]
        self.ids.done.text = view.text["done"]
        if entering and view.text["reason"] and not self.ids.reason.text:
            # Back from the questions: the reason the patient gave is still theirs to edit.
            self.ids.reason.text = view.text["reason"]

    def on_leave(self, *args: Any) -> None:
        self.ids.reason.wipe()
        self._last = None
        self._last_reason = None
