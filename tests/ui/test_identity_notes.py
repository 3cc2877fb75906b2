"""#20: look-alike names on the real exam screens — the flag is on screen, next to the name.

Replays the issue's exploit names through the schedule's intake (station.app.sync_port) and the
real Kivy widgets offscreen: a zero-width space, a word joiner + ZWNJ, a Cyrillic capital IE.
Code points are the Unicode Character Database's (UnicodeData.txt: U+200B ZERO WIDTH SPACE Cf,
U+200C ZERO WIDTH NON-JOINER Cf, U+2060 WORD JOINER Cf, U+0415 CYRILLIC CAPITAL LETTER IE Lu).
The 100-character name is the issue's ("a 100-character name is clipped to the label").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from station.app.demo_ui import build_presenter
from station.app.sync_port import appointment_to_patient
from station.rooming_data import ScheduledPatient
from station.submission import PatientIdentifiers
from station.sync.contract import Appointment
from tests.fixtures.kivy import Driver
from tests.workflows.helpers import FakeClock

pytestmark = pytest.mark.ui

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
STARTS = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
HIDDEN = "hidden characters were removed from this name"
NAMESAKE = "another patient on today's list has this name: check the MRN"
MIXED = "this name mixes alphabets (Cyrillic and Latin): check it letter by letter"


def scheduled(number: int, family: str, given: str = "Echo") -> ScheduledPatient:
    return appointment_to_patient(
        Appointment(
            appointment_id=f"APT-LOOK-{number}",
            patient=PatientIdentifiers(
                mrn=f"TEST30000{number}",
                family_name=family,
                given_name=given,
                birth_date=date(1979, 1, 30),
            ),
            starts_at=STARTS,
        )
    )


def row_text(name: str, mrn: str = "") -> str:
    time = STARTS.astimezone().strftime("%H:%M")  # the station lists local times
    text = f"{time}   {name}   ·   born 01/30/1979"
    return f"{text}   ·   MRN {mrn}" if mrn else text


def shown(driver: Driver, text: str | Any) -> Any:
    """The one label with exactly this text (or this label), scrolled into view, drawn whole:
    inside the window and its scroll viewport, its text no larger than its box, opaque."""
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    if isinstance(text, str):
        hits = [w for w in driver.widgets() if isinstance(w, Label) and w.text == text]
        hits = [w for w in hits if driver._on_screen(w)]
        assert len(hits) == 1, f"{text!r}: {len(hits)} on screen; texts: {driver.texts()}"
        label = hits[0]
    else:
        label, text = text, text.text
    node = label.parent
    while node is not None and not isinstance(node, ScrollView) and node is not driver.ui.root:
        node = node.parent
    if isinstance(node, ScrollView):
        node.scroll_to(label, padding=0, animate=False)
        driver.pump(3)
    x, y = label.to_window(label.x, label.y)
    window = driver.ui.root.get_root_window()
    assert x >= 0 and x + label.width <= window.width + 1, text
    assert y >= 0 and y + label.height <= window.height + 1, text
    if isinstance(node, ScrollView):
        _vx, vy = node.to_window(node.x, node.y)
        assert vy - 1 <= y and y + label.height <= vy + node.height + 1, f"{text!r} scrolled off"
    assert label.texture_size[0] <= label.width + 1 and label.texture_size[1] <= label.height + 1
    assert label.opacity == 1 and label.color[3] == 1
    return label


def note_under(driver: Driver, row: Any) -> Any:
    """The label drawn right under a patient's row (its notes), checked like `shown`."""
    siblings = list(reversed(row.parent.children))  # top to bottom
    below = siblings[siblings.index(row) + 1]
    assert below.y < row.y  # under it, not beside it
    return shown(driver, below)


def signed_in(make_ui: Callable[..., Driver], patients: tuple[ScheduledPatient, ...]) -> Any:
    presenter = build_presenter("exam", clock=FakeClock(NOW))
    presenter.rooming.set_schedule(patients)
    driver = make_ui("exam", presenter)
    driver.scan("BADGE-DEMO")
    assert presenter.screen == "patients"
    return presenter, driver


def test_each_look_alike_is_flagged_on_the_list_and_on_the_confirm_screen(
    make_ui: Callable[..., Driver],
) -> None:
    from station.ui.audit import audit

    plain = scheduled(1, "ZZTEST")
    zero_width = scheduled(2, "ZZ\u200bTEST")
    joiners = scheduled(3, "ZZTE\u2060\u200cST")
    cyrillic = scheduled(4, "ZZT\u0415ST")
    presenter, driver = signed_in(make_ui, (plain, zero_width, joiners, cyrillic))

    # The list: each namesake shows its MRN in the row, and its notes right under it.
    for patient, notes in (
        (plain, f"Check: {NAMESAKE}"),
        (zero_width, f"Check: {HIDDEN}; {NAMESAKE}"),
        (joiners, f"Check: {HIDDEN}; {NAMESAKE}"),
    ):
        row = shown(driver, row_text("ZZTEST, Echo", patient.mrn))
        assert note_under(driver, row).text == notes
    row = shown(driver, row_text("ZZT\u0415ST, Echo"))  # no namesake once cleaned: flagged
    assert note_under(driver, row).text == f"Check: {MIXED}"
    driver.shot("exam_patients_look_alikes")

    # Confirm: the two identifiers, the MRN and the notes, all on screen, nothing overlapping.
    driver.tap(shown(driver, row_text("ZZTEST, Echo", zero_width.mrn)))
    assert presenter.screen == "confirm"
    shown(driver, "ZZTEST, Echo")
    shown(driver, f"MRN {zero_width.mrn}\nCheck: {HIDDEN}\nCheck: {NAMESAKE}")
    assert audit(driver.ui.root, (800, 480)) == []
    driver.shot("exam_confirm_look_alike")
    driver.tap("No — not this patient")

    driver.tap(shown(driver, row_text("ZZT\u0415ST, Echo")))
    shown(driver, f"Check: {MIXED}")
    assert audit(driver.ui.root, (800, 480)) == []
    driver.tap("No — not this patient")

    # A plain name on a plain list says nothing more than the two identifiers.
    presenter.rooming.set_schedule((scheduled(5, "ZZTEST", "Foxtrot"),))
    driver.ui.redraw()
    driver.pump(3)
    driver.tap(row_text("ZZTEST, Foxtrot"))
    assert "Check:" not in " ".join(driver.texts())
    assert not [t for t in driver.texts() if t.startswith("MRN")]


def test_a_100_character_name_wraps_on_the_list_and_on_confirm(
    make_ui: Callable[..., Driver],
) -> None:
    from station.ui.audit import audit

    family = "ZZTEST-VILLANUEVA DE LA CRUZ MONTGOMERY-WORTHINGTON"
    given = "Maria Alexandrina Maximiliana Guadalupe Rosalba"
    long_name = f"{family}, {given}"
    assert len(long_name) == 100
    _presenter, driver = signed_in(make_ui, (scheduled(6, family, given),))
    row = shown(driver, row_text(long_name))
    line_height = row.font_size * 1.5
    assert row.texture_size[1] > line_height  # more than one line: wrapped, every letter kept
    assert audit(driver.ui.root, (800, 480)) == []
    driver.tap(row)
    name = shown(driver, long_name)
    assert name.texture_size[1] > name.font_size * 1.5
    assert audit(driver.ui.root, (800, 480)) == []
    driver.shot("exam_confirm_100_char_name")
