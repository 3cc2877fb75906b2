"""Find the appointment: last name and date of birth."""

from __future__ import annotations

from typing import Any

from station.ui.screens.base import BaseScreen


class LobbyFindScreen(BaseScreen):
    def render(self, presenter: Any) -> None:
        view = presenter.view()
        checkin = presenter.checkin
        # The fields follow the workflow's drafts, so a wipe clears what is on screen too.
        if self.ids.name.text != checkin.draft_family_name:
            self.ids.name.text = checkin.draft_family_name
        if self.ids.dob.text != checkin.draft_birth_date:
            self.ids.dob.text = checkin.draft_birth_date
        self.ids.dob_shown.text = view.text.get("dob_shown", "")
        if not self.changed(view.text):
            return
        self.ids.title.text = view.text["title"]
        self.ids.name_label.text = view.text["name"]
        self.ids.dob_label.text = view.text["dob"]
        self.ids.dob.hint_text = view.text["dob_hint"]
        self.ids.back.text = view.text["back"]
        self.ids.find.text = view.text["find"]

    def on_leave(self, *args: Any) -> None:
        # Found, missed, backed out or wiped: nothing typed stays in these fields.
        self.ids.name.wipe()
        self.ids.dob.wipe()
