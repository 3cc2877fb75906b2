"""Today's list for this room: one big row per appointment."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory

from station.ui.screens.base import BaseScreen, action_row, button
from station.ui.theme import TONE_COLOURS


class PatientsScreen(BaseScreen):
    def render(self, presenter: Any) -> None:
        rows, parked = presenter.patient_rows(), presenter.parked_text()
        rejected = presenter.rejected_rows()
        by_hand = presenter.manual_entry_offered()
        if not self.changed((rows, parked, rejected, by_hand)):
            return
        self.ids.rows.clear_widgets()
        # Roomings the practice system did not file come first: the MA resends them.
        for message_id, text in rejected:
            resend = partial(self.intent, "resend", message_id)
            self.ids.rows.add_widget(action_row(text, [(self._("Resend"), resend, 160, False)]))
        for row in rows:
            born = self._("born {date}").format(date=row.birth_date)
            text = f"{row.time}   {row.name}   ·   {born}"
            if row.mrn:
                # Another patient has the same name.
                text += "   ·   " + self._("MRN {mrn}").format(mrn=row.mrn)
            pick = button(text, partial(self.intent, "pick", row.appointment_id))
            if not row.notes:
                self.ids.rows.add_widget(pick)
                continue
            # The name's notes right under its row, on the warning colour, never a tooltip.
            group = Factory.BoxLayout(orientation="vertical", size_hint_y=None, spacing=2)
            group.bind(minimum_height=group.setter("height"))
            group.add_widget(pick)
            check = self._("Check: {notes}").format(notes="; ".join(row.notes))
            group.add_widget(Factory.Body(text=check, fill=TONE_COLOURS["warning"]))
            self.ids.rows.add_widget(group)
        if not rows:
            empty = self._("No appointments on the schedule yet.")
            self.ids.rows.add_widget(Factory.Body(text=empty))
        if by_hand:
            # The schedule is empty or may be stale (offline): the MA types the patient in.
            offer = presenter.patient_entry_view()["offer"]
            self.ids.rows.add_widget(
                button(offer, lambda: self.intent("open_patient_entry"), quiet=True)
            )
        box = self.ids.parked_box
        box.clear_widgets()
        if parked:
            box.add_widget(Factory.Body(text=parked))
            box.add_widget(
                button(
                    self._("Discard it"),
                    lambda: self.intent("discard_parked"),
                    quiet=True,
                    size_hint_x=None,
                    width=200,
                )
            )
