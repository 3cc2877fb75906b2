"""Chief complaint: a short pick list, free text, onset, and the medication list."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory
from kivy.metrics import dp, sp
from kivy.utils import escape_markup

from station.rooming_data import MedicationStatus, Onset
from station.ui.presenters.exam_views import MEDICATION_STATUS, ONSET_WORDS
from station.ui.screens.base import BaseScreen, grow_with
from station.ui.theme import theme

# The tick on a chosen chip: Roboto (every language's font) has no U+2713 and drew a box;
# Kivy's own DejaVu Sans has it.
CHOSEN = "[font=DejaVuSans]\u2713[/font] "
# Marked English (station.ui.presenters.exam_views), translated when shown.
ONSET_LABELS = {onset: ONSET_WORDS[onset.value] for onset in (
    Onset.TODAY, Onset.DAYS, Onset.WEEKS, Onset.MONTHS, Onset.CHRONIC, Onset.UNKNOWN
)}
MED_LABELS = {status: MEDICATION_STATUS[status.value] for status in (
    MedicationStatus.TAKING, MedicationStatus.NOT_TAKING, MedicationStatus.CHANGED
)}


class ComplaintScreen(BaseScreen):
    _patient: object = None

    def render(self, presenter: Any) -> None:
        complaint = presenter.rooming.complaint
        meds = presenter.rooming.medications
        picks = presenter.complaint_picks()
        patient = presenter.rooming.patient
        if patient != self._patient:
            # A new patient starts at the top: chips sit where the MA expects them.
            self._patient = patient
            self.ids.scroll.scroll_y = 1
        if not self.changed((complaint, meds, picks)):
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
        box = self.ids.meds
        box.clear_widgets()
        for index, med in enumerate(meds):
            row = Factory.BoxLayout(size_hint_y=None, height=dp(52), spacing=dp(6))
            name = f"{med.medication.name} {med.medication.dose}".strip()
            asked = self._("{medication}: taking?").format(medication=name)
            label = Factory.Body(text=asked, font_size=sp(18) * theme.scale)
            row.add_widget(label)
            grow_with(row, label, minimum=52)
            for status, text in MED_LABELS.items():
                row.add_widget(
                    chip(
                        self._(text),
                        partial(self.intent, "set_medication", index, status),
                        med.status == status,
                        size_hint_x=None,
                        width=dp(130),
                    )
                )
            box.add_widget(row)
        if not meds:
            box.add_widget(Factory.Body(text=self._("No medications on the schedule.")))


def chip(text: str, on_release: Any, chosen: bool, **kw: Any) -> Any:
    widget = Factory.ChipButton(text=text, **kw)
    widget.fill = theme.button if chosen else theme.quiet
    widget.bind(on_release=lambda *_: on_release())
    return widget
