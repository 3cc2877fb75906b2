"""Chief complaint: a short pick list, free text and onset (the medication list is the next
step, station/ui/screens/lists.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory
from kivy.utils import escape_markup

from station.rooming_data import Onset
from station.ui.presenters.exam_views import ONSET_WORDS
from station.ui.screens.base import BaseScreen
from station.ui.theme import theme

# The tick on a chosen chip: Roboto (every language's font) has no U+2713 and drew a box;
# Kivy's own DejaVu Sans has it.
CHOSEN = "[font=DejaVuSans]\u2713[/font] "
# Marked English (station.ui.presenters.exam_views), translated when shown.
ONSET_LABELS = {onset: ONSET_WORDS[onset.value] for onset in (
    Onset.TODAY, Onset.DAYS, Onset.WEEKS, Onset.MONTHS, Onset.CHRONIC, Onset.UNKNOWN
)}


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
        self.ids.reason.text = (
            self._("Reason for visit (from check-in): {reason}").format(reason=reason)
            if reason
            else ""
        )
        if not self.ids.free_text.focus:
            self.ids.free_text.text = complaint.free_text
        grid = self.ids.picks
        grid.clear_widgets()
        for label, on in picks:
            toggle = partial(self.intent, "toggle_complaint", label)
            shown = escape_markup(self._(label))
            grid.add_widget(chip((CHOSEN if on else "") + shown, toggle, on, markup=True))
        onset = self.ids.onset
        onset.clear_widgets()
        for value, label in ONSET_LABELS.items():
            onset.add_widget(
                chip(
                    self._(label),
                    partial(self.intent, "set_onset", value),
                    complaint.onset == value,
                )
            )


def chip(text: str, on_release: Any, chosen: bool, **kw: Any) -> Any:
    widget = Factory.ChipButton(text=text, **kw)
    widget.fill = theme.button if chosen else theme.quiet
    widget.bind(on_release=lambda *_: on_release())
    return widget
