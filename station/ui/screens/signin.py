"""Sign in: the badge reader types into the field and presses Enter; or a PIN on the keypad."""

from __future__ import annotations

from functools import partial
from typing import Any

from station.ui.screens.base import BaseScreen, button


class SignInScreen(BaseScreen):
    def on_kv_post(self, base_widget: Any) -> None:
        shown = {"Del": self._("Del"), "OK": self._("OK")}  # the key's name stays the intent's
        for key in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "Del", "OK"):
            self.ids.keypad.add_widget(button(shown.get(key, key), partial(self.key, key)))

    def key(self, key: str) -> None:
        field = self.ids.credential
        if key == "OK":
            self.submit()
        elif key == "Del":
            field.text = field.text[:-1]
        else:
            field.text += key

    def submit(self) -> None:
        text = self.ids.credential.text
        self.ids.credential.wipe()  # no undo history to bring it back
        self.intent("sign_in", text)

    def render(self, presenter: Any) -> None:
        if self.changed(presenter.screen):
            self.ids.credential.wipe()
