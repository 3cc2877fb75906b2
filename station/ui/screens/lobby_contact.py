"""Confirm contact details (masked); a change goes to the front desk as a request."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty

from station.ui.screens.base import BaseScreen, attach


class LobbyContactScreen(BaseScreen):
    changing = BooleanProperty(False)

    def on_kv_post(self, base_widget: Any) -> None:
        # ids are weak proxies: keep the real widget, or it is collected while detached.
        self._box = self.ids.change_box.__self__
        self._panel = self._box.parent
        attach(self._panel, self._box, shown=False)

    def on_changing(self, _instance: Any, changing: bool) -> None:
        # Below the e-mail line: two widgets (spacer, buttons) come after it.
        attach(self._panel, self._box, shown=changing, index=2)

    def render(self, presenter: Any) -> None:
        view = presenter.view()
        if presenter.screen != self.name:
            return
        if not self.changed((view.text, view.phone, view.email)):
            return
        self.ids.title.text = view.text["title"]
        self.ids.phone.text = f"{view.text['phone']}: {view.phone}"
        self.ids.email.text = f"{view.text['email']}: {view.email}"
        self.ids.new_phone.hint_text = view.text["new_phone"]
        self.ids.new_email.hint_text = view.text["new_email"]
        self.ids.send_change.text = view.text["send_change"]
        self.ids.change.text = view.text["change"]
        self.ids.ok.text = view.text["ok"]

    def on_leave(self, *args: Any) -> None:
        # Nothing the patient typed stays in a widget once they move on.
        self.changing = False
        self.ids.new_phone.text = self.ids.new_email.text = ""
        self._last = None
