"""Chief complaint: a short pick list, free text and onset (the medication list is the next
step, station/ui/screens/lists.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory

from station.rooming_data import Onset
from station.ui.screens.base import BaseScreen
from station.ui.theme import theme

ONSET_LABELS = {
    Onset.TODAY: "today",
    Onset.DAYS: "days",
    Onset.WEEKS: "weeks",
    Onset.MONTHS: "months",
    Onset.CHRONIC: "long\u2011standing",  # a non-breaking hyphen: never "long-standi ng"
    Onset.UNKNOWN: "not sure",
}


class ComplaintScreen(BaseScreen):
    _patient: object = None

    def render(self, presenter: Any) -> None:
        complaint = presenter.rooming.complaint
        picks = presenter.complaint_picks()
        patient = presenter.rooming.patient
        if patient != self._patient:
            # A new patient starts at the top: chips sit where the MA expects them.
            self._patient = patient
            self.ids.scroll.scroll_y = 1
        if not self.changed((complaint, picks)):
            return
        reason = complaint.reason_for_visit
        self.ids.reason.text = f"Reason for visit (from check-in): {reason}" if reason else ""
        if not self.ids.free_text.focus:
            self.ids.free_text.text = complaint.free_text
        grid = self.ids.picks
        grid.clear_widgets()
        for label, on in picks:
            toggle = partial(self.intent, "toggle_complaint", label)
            grid.add_widget(chip(("✓ " if on else "") + label, toggle, on))
        onset = self.ids.onset
        onset.clear_widgets()
        for value, label in ONSET_LABELS.items():
            onset.add_widget(
                chip(label, partial(self.intent, "set_onset", value), complaint.onset == value)
            )


def chip(text: str, on_release: Any, chosen: bool, **kw: Any) -> Any:
    widget = Factory.ChipButton(text=text, **kw)
    widget.fill = theme.button if chosen else theme.quiet
    widget.bind(on_release=lambda *_: on_release())
    return widget
