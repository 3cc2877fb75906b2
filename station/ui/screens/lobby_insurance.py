""""Has your insurance changed since your last visit?": two big answers and Back."""

from __future__ import annotations

from typing import Any

from station.ui.screens.base import BaseScreen


class LobbyInsuranceScreen(BaseScreen):
    def render(self, presenter: Any) -> None:
        view = presenter.view()
        if presenter.screen != self.name or not self.changed(view.text):
            return
        for key in ("title", "yes", "no", "back"):
            self.ids[key].text = view.text[key]
