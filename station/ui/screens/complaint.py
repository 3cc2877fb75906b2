"""Chief complaint: a short pick list, free text, onset, and the medication list."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory

from station.rooming_data import MedicationStatus, Onset
from station.ui.screens.base import BaseScreen, button

ONSET_LABELS = {
    Onset.TODAY: "today",
    Onset.DAYS: "days",
    Onset.WEEKS: "weeks",
    Onset.MONTHS: "months",
    Onset.CHRONIC: "long-standing",
    Onset.UNKNOWN: "not sure",
}
MED_LABELS = {
    MedicationStatus.TAKING: "taking",
    MedicationStatus.NOT_TAKING: "not taking",
    MedicationStatus.CHANGED: "changed",
}


class ComplaintScreen(BaseScreen):
    def render(self, presenter: Any) -> None:
        complaint = presenter.rooming.complaint
        meds = presenter.rooming.medications
        picks = presenter.complaint_picks()
        if not self.changed((complaint, meds, picks)):
            return
        reason = complaint.reason_for_visit
        self.ids.reason.text = f"Reason for visit (from check-in): {reason}" if reason else ""
        if not self.ids.free_text.focus:
            self.ids.free_text.text = complaint.free_text
        grid = self.ids.picks
        grid.clear_widgets()
        for label, on in picks:
            grid.add_widget(
                button(
                    ("* " if on else "") + label,
                    partial(self.intent, "toggle_complaint", label),
                    quiet=not on,
                )
            )
        onset = self.ids.onset
        onset.clear_widgets()
        for value, label in ONSET_LABELS.items():
            onset.add_widget(
                button(
                    label,
                    partial(self.intent, "set_onset", value),
                    quiet=complaint.onset != value,
                )
            )
        box = self.ids.meds
        box.clear_widgets()
        for index, med in enumerate(meds):
            row = Factory.BoxLayout(size_hint_y=None, height=64, spacing=6)
            row.add_widget(
                Factory.Body(text=f"{med.medication.name} {med.medication.dose}".strip())
            )
            for status, label in MED_LABELS.items():
                row.add_widget(
                    button(
                        label,
                        partial(self.intent, "set_medication", index, status),
                        quiet=med.status != status,
                        size_hint_x=None,
                        width=150,
                    )
                )
            box.add_widget(row)
        if not meds:
            box.add_widget(Factory.Body(text="No medications on the schedule."))
