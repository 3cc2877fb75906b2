"""Lobby welcome: start check-in; the QR scanner types into the app (see StationUI.hid).

No staff control is visible to patients: five quick taps on the hidden bottom-left corner
open the staff PIN row (a wrong PIN is said there, quietly)."""

from __future__ import annotations

from typing import Any

from station.ui.screens.base import BaseScreen, attach


class LobbyWelcomeScreen(BaseScreen):
    def on_kv_post(self, base_widget: Any) -> None:
        # ids are weak proxies: keep the real widget, or it is collected while detached.
        self._staff = self.ids.staff_row.__self__
        self._panel = self._staff.parent
        attach(self._panel, self._staff, shown=False)

    def staff(self) -> None:
        pin = self.ids.pin.text
        self.ids.pin.wipe()  # no undo history to bring it back
        self.intent("staff_exit", pin)

    def render(self, presenter: Any) -> None:
        view = presenter.view()
        if presenter.screen != self.name:
            return
        shown = bool(presenter.staff_open)
        attach(self._panel, self._staff, shown=shown)
        if not shown:
            self.ids.pin.wipe()
        if not self.changed((view.text, shown)):
            return
        for key in ("title", "subtitle", "start", "qr"):
            self.ids[key].text = view.text[key]
        self.ids.pin.hint_text = view.text["pin"]
        self.ids.staff_cancel.text = view.text["cancel"]
        self.ids.staff_ok.text = view.text["ok"]
        self.ids.staff_error.text = view.text["staff_error"]
        if shown:
            self.ids.pin.focus = True
