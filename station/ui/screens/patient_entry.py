"""The MA types a patient in (schedule empty or station offline): name, date of birth, MRN."""

from __future__ import annotations

from typing import Any

from station.ui.screens.base import BaseScreen
from station.ui.theme import TONE_COLOURS

FIELDS = ("family", "given", "dob", "mrn")


class PatientEntryScreen(BaseScreen):
    def render(self, presenter: Any) -> None:
        view = presenter.patient_entry_view()
        entry = presenter.entry
        # The fields follow the presenter's draft, so Cancel or a sign-out clears the screen.
        for name in FIELDS:
            typed = "" if entry is None else getattr(entry, name)
            if self.ids[name].text != typed:
                self.ids[name].text = typed
        self.ids.dob_shown.text = view["dob_shown"]
        self.ids.problem.text = view["problem"]
        self.ids.problem.fill = TONE_COLOURS["error"] if view["problem"] else (0, 0, 0, 0)
        if not self.changed((view["title"], view["why"])):
            return
        self.ids.title.text = view["title"]
        self.ids.why.text = view["why"]
        for name in FIELDS:
            self.ids[f"{name}_label"].text = view[name]
        self.ids.dob.hint_text = view["dob_hint"]
        self.ids.mrn.hint_text = view["mrn_hint"]
        self.ids.cancel.text = view["cancel"]
        self.ids.next.text = view["next"]

    def on_leave(self, *args: Any) -> None:
        # Entered, cancelled or signed out: nothing typed about a patient stays in a field.
        for name in FIELDS:
            self.ids[name].wipe()
