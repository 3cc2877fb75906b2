"""Two identifiers on screen, confirmed before anything else happens."""

from __future__ import annotations

from typing import Any

from station.ui.screens.base import BaseScreen


class ConfirmScreen(BaseScreen):
    def render(self, presenter: Any) -> None:
        name, dob, age = presenter.confirm_lines()
        note = presenter.confirm_note()
        if self.changed((name, dob, age, note)):
            self.ids.name.text = name
            self.ids.dob.text = f"{dob}  ({age})" if dob else ""
            self.ids.note.text = note
