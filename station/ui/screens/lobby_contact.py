"""Confirm contact details (masked); a change goes to the front desk as a request."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty

from station.ui.screens.base import BaseScreen


class LobbyContactScreen(BaseScreen):
    changing = BooleanProperty(False)

    def on_kv_post(self, base_widget: Any) -> None:
        # ids are weak proxies: keep the real widgets, or they are collected while detached.
        ids = self.ids
        self._panel = ids.title.parent
        self._order = [
            w.__self__
            for w in (
                ids.title,
                ids.phone,
                ids.email,
                ids.change_box,
                ids.spacer,
                ids.buttons,
                ids.change_buttons,
            )
        ]
        self._show(changing=False)

    def _show(self, changing: bool) -> None:
        """Confirming: the masked details and three choices. Changing: the two fields and
        Keep / Send, nothing else (three buttons competed and the title was pushed away)."""
        title, phone, email, box, spacer, buttons, change_buttons = self._order
        wanted = [title, *((box,) if changing else (phone, email)), spacer]
        wanted.append(change_buttons if changing else buttons)
        self._panel.clear_widgets()
        for widget in wanted:
            self._panel.add_widget(widget)

    def on_changing(self, _instance: Any, changing: bool) -> None:
        self._show(changing)
        if changing:
            self.ids.new_phone.focus = True

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
        self.ids.not_me.text = view.text["not_me"]
        self.ids.keep.text = view.text["back"]

    def on_leave(self, *args: Any) -> None:
        # Nothing the patient typed stays in a widget once they move on.
        self.changing = False
        self.ids.new_phone.wipe()
        self.ids.new_email.wipe()
        self._last = None
