"""The languages on real widgets offscreen: the lobby's buttons come from the one list, the
Vietnamese welcome screen, the Vietnamese check-in going from the reason to the insurance
question (no questionnaire is written in Vietnamese), the MA's screens in Spanish (kv labels,
screens, presenter and core messages, the medication and point-of-care steps with a core
refusal made from a marked template), biomed in Spanish, and an exam station never shown a
language it has no staff screens in.

The words expected on screen are read from the committed catalogs with Babel (read_po), so a
test holds the screen to the catalog, not to a copy of our own output.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from babel.messages.pofile import read_po

from station.app.demo_ui import DEMO_BIOMED_PIN, DEMO_DEVICES, build_presenter, demo_schedule
from station.checkin import Checkin
from station.locale import LANGUAGES, LOCALE_DIR
from station.models import Mode
from station.rooming import Rooming
from station.ui.ports import MemoryOutbox, MemorySpeaker
from station.ui.presenters import ExamPresenter, LobbyPresenter
from tests.fixtures.kivy import Driver
from tests.workflows.helpers import FakeClock

pytestmark = pytest.mark.ui

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def said(code: str, english: str) -> str:
    with (LOCALE_DIR / code / "LC_MESSAGES" / "station.po").open("rb") as po:
        catalog = read_po(po, locale=code)
    message = catalog.get(english)
    assert message is not None and message.string, f"{code}: {english!r} not translated"
    return str(message.string)


def test_lobby_in_vietnamese(make_ui: Callable[..., Driver]) -> None:
    checkin = Checkin(clock=FakeClock(NOW), staff_pin="7788")
    speaker = MemorySpeaker()
    driver = make_ui("lobby", LobbyPresenter(checkin, MemoryOutbox(), speaker))
    # One button per language, each in its own language, from station.locale.LANGUAGES.
    for lang in LANGUAGES:
        driver.find(lang.native_name)
    driver.tap("Tiếng Việt")
    texts = driver.texts()
    for english in (
        "Welcome",
        "Check in for your appointment",
        "Check in",
        "Ask for help",
        "Larger text",
        "Or scan the QR code from your reminder",
    ):
        assert said("vi", english) in texts
    assert speaker.said[-1][0] == "vi"
    driver.shot("lobby_welcome_vi")
    driver.tap(said("vi", "Check in"))
    assert said("vi", "Find your appointment") in driver.texts()
    driver.tap(said("vi", "Find"))  # nothing typed: told what to type, in Vietnamese
    shown = driver.ui.root.ids.message.text
    assert (
        shown
        == said("vi", "type your last name")[:1].upper() + said("vi", "type your last name")[1:]
    )


def exam_in_spanish(make_ui: Callable[..., Driver]) -> tuple[Driver, ExamPresenter]:
    rooming = Rooming(
        clock=FakeClock(NOW),
        credentials={"BADGE-0042": "ma-042"},
        mode=Mode.DEMO,
        bound_devices=DEMO_DEVICES,
    )
    rooming.set_schedule(demo_schedule(NOW.date()))
    outbox = MemoryOutbox()
    presenter = ExamPresenter(rooming, outbox, outbox, language="es")
    return make_ui("exam", presenter), presenter


def test_exam_screens_in_spanish(make_ui: Callable[..., Driver]) -> None:
    driver, presenter = exam_in_spanish(make_ui)
    texts = driver.texts()
    assert said("es", "Sign in") in texts  # a .kv label
    assert said("es", "Del") in texts  # a keypad key
    assert said("es", "Not signed in") in texts  # the header, from StationUI
    driver.scan("0000")
    # A refusal from the core, in the catalog's words.
    assert driver.ui.root.ids.message.text == said("es", "badge or PIN not recognised")
    driver.scan("BADGE-0042")
    assert said("es", "Today's patients — tap the one in the room") in driver.texts()
    presenter.pick(presenter.rooming.schedule[0].appointment_id)
    presenter.confirm()
    driver.ui.redraw()
    driver.pump(3)
    texts = driver.texts()
    assert said("es", "Complaint") + "  >" in texts
    assert any(t.startswith(said("es", "Blood pressure")) for t in texts)  # a tile's title
    driver.tap(said("es", "Review") + "  >")
    status = driver.ui.screen.ids.status.text
    assert status.startswith(said("es", "Before sending: {reasons}").split("{")[0])
    assert said("es", "Send — not yet") in driver.texts()


def test_list_steps_in_spanish(make_ui: Callable[..., Driver]) -> None:
    driver, presenter = exam_in_spanish(make_ui)
    driver.scan("BADGE-0042")
    presenter.pick("APT-DEMO-0001")  # the demo patient with a medication on the list
    presenter.confirm()
    driver.ui.redraw()
    driver.pump(3)
    driver.tap(said("es", "Complaint") + "  >")
    driver.tap(said("es", "Medications") + "  >")  # complaint.kv
    texts = driver.texts()
    assert said("es", "Medications: ask about each one") in texts
    assert said("es", "taking") in texts and said("es", "not taking") in texts
    driver.tap(said("es", "+ Add a medication"))
    driver.tap(said("es", "Save"))  # nothing typed: station.rooming_lists refuses
    # `N_("type the {label}").format(label=N_("medication name"))` in the core, translated
    # through its template with the label translated in turn.
    expected = said("es", "type the {label}").format(label=said("es", "medication name"))
    assert driver.ui.screen.ids.title.text == expected
    driver.tap(said("es", "Cancel"))
    driver.tap(said("es", "Allergies") + "  >")
    driver.tap(said("es", "Review") + "  >")
    driver.tap(said("es", "Point-of-care tests"))
    driver.tap(said("es", "Fingerstick glucose"))
    for key in "700":
        driver.tap(key)
    driver.tap(said("es", "Save"))  # beyond what a meter shows (station.poc)
    template = said(
        "es",
        "{test}: {value} {unit} is outside what a meter can show; expected {low}–{high} {unit} "
        "(a meter's LO/HI is no number: send the patient for a laboratory glucose)",
    )
    assert driver.ui.screen.ids.title.text == template.format(
        test=said("es", "Fingerstick glucose"), value="700", unit="mg/dL", low="10", high="600"
    )


def test_a_vietnamese_check_in_goes_from_the_reason_to_insurance(
    make_ui: Callable[..., Driver],
) -> None:
    # The demo lobby asks the bundled questionnaires (PHQ-2, GAD-2, tobacco for this adult),
    # none of which is written in Vietnamese (questionnaires/*.json): none is asked.
    presenter: LobbyPresenter = build_presenter("lobby", clock=FakeClock(NOW), language="vi")
    driver = make_ui("lobby", presenter)
    presenter.scan_qr("qr-demo-0003")
    presenter.contact_ok()
    presenter.submit_reason("ho")
    driver.ui.redraw()
    driver.pump(3)
    assert presenter.screen == "lobby_insurance"
    texts = driver.texts()
    assert said("vi", "Has your insurance changed since your last visit?") in texts
    assert said("vi", "No, it is the same") in texts
    driver.tap(said("vi", "Yes, it changed"))
    record = presenter.checkin.record
    assert record is not None and record.insurance_changed
    assert record.screenings_not_asked  # listed for staff to ask in person
    body = " ".join(driver.texts())
    assert said("vi", "The front desk will ask about your new insurance.") in body
    assert said(
        "vi", "Some questions are not available in your language. Staff will ask you in person."
    ) in body


def test_biomed_in_spanish(make_ui: Callable[..., Driver]) -> None:
    presenter = build_presenter("biomed", language="es")
    driver = make_ui("biomed", presenter)
    assert said("es", "Biomed — enter the PIN") in driver.texts()
    assert said("es", "Unlock") in driver.texts()
    presenter.unlock(DEMO_BIOMED_PIN)
    driver.ui.redraw()
    driver.pump(3)
    texts = driver.texts()
    assert said("es", "Devices") in texts
    assert said("es", "Export diagnostics") in texts
    assert any(said("es", "in range") in t for t in texts)


def test_an_exam_station_is_never_set_to_a_patient_only_language() -> None:
    from station.cli import main

    assert main(["ui", "--mode", "exam", "--language", "vi", "--screenshot", "/tmp/x.png"]) == 2
    assert main(["ui", "--mode", "lobby", "--language", "xx", "--screenshot", "/tmp/x.png"]) == 2
