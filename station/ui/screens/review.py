"""Review and send: everything on one screen, critical values acknowledged, then sent."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory
from kivy.metrics import dp

from station.ui.screens.base import BaseScreen, button
from station.ui.screens.lists import choice_button, list_row
from station.ui.theme import SEVERITY_COLOURS, TONE_COLOURS


class ReviewScreen(BaseScreen):
    _patient: object = None

    def render(self, presenter: Any) -> None:
        sent = presenter.rooming.state.value == "sent"
        view = (
            presenter.review_rows(),
            presenter.review_summary(),
            presenter.send_blockers(),
            presenter.send_status(),
            sent,
            presenter.review_fixes(),
            presenter.review_steps(),
        )
        if presenter.rooming.patient != self._patient:
            self._patient = presenter.rooming.patient
            self.ids.scroll.scroll_y = 1  # every patient's review starts at the top
        if not self.changed(view):
            return
        rows, summary, blockers, status, _, fixes, steps = view
        box = self.ids.rows
        box.clear_widgets()
        # What the lists still need (#18) comes first, like critical values, each with the
        # button that goes to fix it.
        for fix in fixes:
            box.add_widget(list_row(fix, self.intent))
        for row in rows:
            line = Factory.BoxLayout(size_hint_y=None, height=dp(64), spacing=dp(6))
            label = Factory.ReviewLine(
                text=f"{row.title}: {row.value}  ·  {row.source}"
                + "".join(f"\n{n}" for n in row.notes)
            )
            line.add_widget(label)
            # The row grows with its text (flag words wrap); never below a touch target.
            label.bind(height=lambda _w, h, ln=line: setattr(ln, "height", max(dp(64), h)))
            if row.severity in ("critical", "warning", "rejected"):
                label.fill = SEVERITY_COLOURS[row.severity]
            if row.needs_ack:
                # Beside the value it acknowledges, never below the fold.
                line.add_widget(
                    button(
                        self._("Acknowledge — clinician told"),
                        partial(self.intent, "acknowledge", row.entry_id),
                        size_hint_x=None,
                        width=dp(260),
                    )
                )
            box.add_widget(line)
        if steps:
            grid = Factory.ChipGrid(cols=len(steps))
            for choice in steps:
                grid.add_widget(choice_button(choice, self.intent))
            box.add_widget(grid)
        for text in summary:
            box.add_widget(Factory.Body(text=text))
        nav = self.ids.nav
        nav.clear_widgets()
        if sent:
            self.ids.status.text = status
            self.ids.status.fill = (
                TONE_COLOURS["error"] if presenter.send_rejected() else (0, 0, 0, 0)
            )
            if presenter.send_rejected():
                resend = partial(self.intent, "resend", presenter.sent_id)
                nav.add_widget(button(self._("Resend"), resend))
            nav.add_widget(button(self._("Next patient"), lambda: self.intent("next_patient")))
            return
        self.ids.status.fill = (0, 0, 0, 0)
        self.ids.status.text = (
            self._("Before sending: {reasons}").format(reasons="; ".join(blockers))
            if blockers
            else ""
        )
        vitals, complaint = "<  " + self._("Vitals"), "<  " + self._("Complaint")
        nav.add_widget(button(vitals, lambda: self.intent("go", "vitals"), quiet=True))
        nav.add_widget(button(complaint, lambda: self.intent("go", "complaint"), quiet=True))
        # Disabled, it still reads as a button that is there and not ready (not a ghost).
        said = self._("Send") if not blockers else self._("Send — not yet")
        send = button(said, lambda: self.intent("send"))
        send.disabled = bool(blockers)
        nav.add_widget(send)
