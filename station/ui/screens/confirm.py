"""Two identifiers on screen, confirmed before anything else happens."""

from __future__ import annotations

from typing import Any

from station.ui.screens.base import BaseScreen, attach


class ConfirmScreen(BaseScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._notes = self.ids.notes.__self__  # detached while there is nothing to say

    def render(self, presenter: Any) -> None:
        name, dob, age = presenter.confirm_lines()
        warning = presenter.identity_warning()
        if self.changed((name, dob, age, warning)):
            self.ids.name.text = name
            self.ids.dob.text = f"{dob}  ({age})" if dob else ""
            self._notes.text = warning
            # Under the date of birth, above the buttons.
            attach(self.ids.panel, self._notes, shown=bool(warning), index=1)
