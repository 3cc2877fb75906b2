"""Keyboard-wedge scanners recognised by timing, whatever has the focus.

Outside facts the timings come from:
- people: Dhakal et al., "Observations on Typing from 136 Million Keystrokes", CHI 2018,
  Table 2: mean inter-key interval 238.7 ms (the fastest 1 % of typists ~ 120 ms);
- readers: Honeywell Xenon 1900/1902 User Guide (1900-UG Rev K), "Intercharacter Delay":
  default 0 ms, set in 5 ms steps; a USB HID keyboard report goes every 1-8 ms
  (USB HID 1.11, bInterval of a full-speed interrupt endpoint, 1-255 ms; readers use 1-8).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from station.app.demo_ui import build_presenter
from station.ui.presenters.wedge import WedgeReader
from tests.fixtures.kivy import Driver
from tests.workflows.helpers import FakeClock

pytestmark = pytest.mark.ui

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
PERSON_S = 0.2387  # Dhakal et al. 2018, mean inter-key interval
FAST_PERSON_S = 0.120  # the fastest typists in the same study
READER_S = 0.008  # one USB HID report per character at an 8 ms polling interval


def feed(reader: WedgeReader, text: str, gap_s: float, start: float = 100.0) -> str | None:
    at = start
    for char in text:
        reader.char(char, at)
        at += gap_s
    return reader.enter(at)


def test_a_burst_ended_by_enter_is_a_scan_and_typing_is_not() -> None:
    assert feed(WedgeReader(), "TEST100002", READER_S) == "TEST100002"
    assert feed(WedgeReader(), "TEST100002", 0.0) == "TEST100002"  # Intercharacter Delay 0
    assert feed(WedgeReader(), "TEST100002", PERSON_S) is None
    assert feed(WedgeReader(), "TEST100002", FAST_PERSON_S) is None
    assert feed(WedgeReader(), "abc", READER_S) is None  # too short for any code we read


def test_a_scan_after_typing_keeps_only_the_scan() -> None:
    reader = WedgeReader()
    at = 10.0
    for char in "dizzy":  # a person typing into a field
        reader.char(char, at)
        at += PERSON_S
    assert feed(reader, "BADGE-DEMO", READER_S, start=at + 1.0) == "BADGE-DEMO"


def _type_slowly(driver: Driver, text: str, clock: list[float]) -> None:
    from kivy.core.window import Window

    for char in text:
        clock[0] += PERSON_S
        Window.dispatch("on_textinput", char)
    driver.pump(2)


def _scan(driver: Driver, code: str, clock: list[float]) -> None:
    from kivy.core.window import Window

    for char in code:
        clock[0] += READER_S
        Window.dispatch("on_textinput", char)
    clock[0] += READER_S
    Window.dispatch("on_key_down", 13, 40, "\r", [])
    driver.pump(3)


def test_a_badge_scan_works_after_a_field_had_focus_and_is_kept_out_of_it(
    make_ui: Callable[..., Driver],
) -> None:
    clock = FakeClock(NOW)
    presenter = build_presenter("exam", clock=clock)
    driver = make_ui("exam", presenter)
    now = [1000.0]
    driver.ui._now = lambda: now[0]
    _scan(driver, "BADGE-DEMO", now)
    assert presenter.screen == "patients"
    driver.tap("09:00   ZZTEST, Alpha   ·   born 05/17/1970")
    driver.tap("Yes — both match")
    driver.tap("Complaint  >")
    field = driver.ui.screen.ids.free_text
    field.focus = True
    driver.pump(2)
    _type_slowly(driver, "dizzy", now)
    assert field.text == "dizzy"
    now[0] += 2.0
    _scan(driver, "TEST100002", now)  # a wristband, scanned into the focused field
    assert field.text == "dizzy" and field.focus is False
    assert presenter.message == ("scan read — wristbands and slips are scanned on the patient list")
    assert presenter.rooming.complaint.free_text == "dizzy"
    driver.shot("exam_scan_elsewhere")
    driver.tap("Sign out")
    now[0] += 2.0
    _scan(driver, "BADGE-DEMO", now)  # the badge after text entry: signs in again
    assert (presenter.screen, presenter.rooming.ma_id) == ("patients", "ma-demo")


def test_the_lobby_qr_works_with_the_name_field_focused(
    make_ui: Callable[..., Driver],
) -> None:
    clock = FakeClock(NOW)
    presenter = build_presenter("lobby", clock=clock)
    driver = make_ui("lobby", presenter)
    now = [1000.0]
    driver.ui._now = lambda: now[0]
    driver.tap("Check in")
    name = driver.ui.screen.ids.name
    name.focus = True
    driver.pump(2)
    _type_slowly(driver, "Zz", now)
    now[0] += 2.0
    _scan(driver, "qr-demo-0003", now)
    assert presenter.screen == "lobby_contact"
    assert presenter.checkin.appointment is not None
    assert presenter.checkin.appointment.appointment_id == "APT-DEMO-0003"


class RecordingLookup:
    """The lookup port's outgoing side: what would be published (the broker test,
    tests/test_biomed_live.py, runs the real one)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def request(self, barcode: str) -> UUID:
        self.asked.append(barcode)
        return uuid4()


def test_a_badge_swiped_on_the_patient_list_is_a_badge_not_a_wristband(
    make_ui: Callable[..., Driver],
) -> None:
    """#20: "a badge swiped on the patient list is published as a wristband lookup"."""
    presenter = build_presenter("exam", clock=FakeClock(NOW))
    lookup = RecordingLookup()
    presenter.lookup = lookup
    driver = make_ui("exam", presenter)
    now = [1000.0]
    driver.ui._now = lambda: now[0]
    _scan(driver, "BADGE-DEMO", now)  # signs in
    assert presenter.screen == "patients"
    now[0] += 2.0
    _scan(driver, "BADGE-DEMO", now)  # the same badge, on the list
    assert presenter.message == "that is a staff badge — scan the patient's wristband"
    assert "that is a staff badge — scan the patient's wristband" in driver.texts()
    assert (lookup.asked, presenter.screen, presenter.rooming.ma_id) == (
        [],
        "patients",
        "ma-demo",
    )
    driver.shot("exam_badge_on_list")
    now[0] += 2.0
    _scan(driver, "TEST100002", now)  # a wristband still goes to the practice system
    assert lookup.asked == ["TEST100002"]
