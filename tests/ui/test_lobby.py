"""Lobby self check-in on real Kivy widgets offscreen: Spanish, help, idle warning and wipe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from station.app.demo_ui import demo_appointments
from station.checkin import Checkin, CheckinRecord, ContactChange, HelpRequest
from station.ui.ports import MemoryOutbox, MemorySpeaker
from station.ui.presenters import LobbyPresenter
from tests.fixtures.kivy import Driver
from tests.workflows.helpers import FakeClock

pytestmark = pytest.mark.ui

NOW = datetime(2026, 3, 2, 8, 45, tzinfo=UTC)


def lobby(
    make_ui: Callable[..., Driver],
) -> tuple[Driver, LobbyPresenter, MemoryOutbox, MemorySpeaker, FakeClock]:
    clock = FakeClock(NOW)
    checkin = Checkin(clock=clock, staff_pin="7788")
    checkin.set_appointments(demo_appointments())
    outbox, speaker = MemoryOutbox(), MemorySpeaker()
    presenter = LobbyPresenter(checkin, outbox, speaker)
    return make_ui("lobby", presenter), presenter, outbox, speaker, clock


def field(driver: Driver, screen_id: str) -> object:
    return driver.ui.screen.ids[screen_id]


def test_check_in_in_spanish_end_to_end(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, outbox, speaker, clock = lobby(make_ui)
    driver.shot("lobby_welcome")
    driver.tap("Español")
    welcome = {"Le damos la bienvenida", "Registre su llegada para su cita", "Pedir ayuda"}
    assert welcome <= set(driver.texts())
    driver.shot("lobby_welcome_es")
    driver.tap("Registrarme")
    assert "Busque su cita" in driver.texts()
    driver.type_into(field(driver, "name"), "zztest")
    driver.type_into(field(driver, "dob"), "03/14/1961")
    driver.shot("lobby_find_es")
    driver.tap("Buscar")
    texts = driver.texts()
    assert "¿Siguen siendo correctos estos datos?" in texts
    assert "Teléfono: •••-•••-0199" in texts
    assert "Correo electrónico: c•••@example.com" in texts
    driver.shot("lobby_contact_es")
    driver.tap("Algo ha cambiado")
    driver.type_into(field(driver, "new_phone"), "555-010-0123")
    driver.tap("Enviar el cambio a la recepción")
    assert "¿Cuál es el motivo de su visita hoy?" in driver.texts()
    driver.type_into(field(driver, "reason"), "tos y fiebre")
    driver.shot("lobby_reason_es")
    clock.advance(40)
    driver.tap("Listo")
    assert "Su llegada quedó registrada" in driver.texts()
    driver.shot("lobby_done_es")
    assert outbox.checkins == [
        CheckinRecord(
            appointment_id="APT-DEMO-0003",
            checked_in_at=NOW.replace(second=40),
            language="es",
            reason_for_visit="tos y fiebre",
            contact_change=ContactChange(phone="555-010-0123"),
        )
    ]
    # Spoken prompts read each screen and its choices, in the patient's language.
    assert speaker.said[0] == (
        "es",
        "Le damos la bienvenida. Registre su llegada para su cita. Registrarme",
    )
    assert (
        "es",
        "Su llegada quedó registrada. Por favor, tome asiento. Le llamaremos pronto. "
        "En la recepción actualizarán sus datos.",
    ) in speaker.said
    driver.tap("Listo")
    assert (presenter.screen, presenter.checkin.holds_patient_data) == ("lobby_welcome", False)
    assert "Welcome" in driver.texts()  # back to the default language for the next patient


def test_a_miss_says_only_see_the_front_desk(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, _, _, _ = lobby(make_ui)
    driver.tap("Check in")
    driver.type_into(field(driver, "name"), "ZZTEST")
    driver.type_into(field(driver, "dob"), "03/15/1961")  # right name, wrong birth date
    driver.tap("Find")
    texts = driver.texts()
    assert "Please see the front desk" in texts
    assert "The front desk will help you check in." in texts
    assert not any("ZZTEST" in t or "1961" in t for t in texts)
    driver.shot("lobby_not_found")
    driver.tap("Start over")
    assert presenter.screen == "lobby_welcome"


def test_qr_scan_and_help_button(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, outbox, _, _ = lobby(make_ui)
    driver.scan("qr-demo-0003")
    assert presenter.screen == "lobby_contact"
    driver.tap("Ask for help")
    assert outbox.help_requests == [
        HelpRequest(screen=presenter.checkin.state, language="en", requested_at=NOW)
    ]
    assert "Help is on the way." in driver.texts()


def test_idle_warning_then_full_wipe(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, _, _, clock = lobby(make_ui)
    driver.tap("Larger text")
    driver.tap("Check in")
    driver.type_into(field(driver, "name"), "ZZTEST")
    driver.type_into(field(driver, "dob"), "03/14")
    clock.advance(60)
    driver.pump(3)  # the idle timer runs on the Kivy clock
    assert "Are you still there?\nThis screen will clear in 30 seconds." in driver.texts()
    driver.shot("lobby_idle_warning")
    clock.advance(30)
    driver.pump(3)
    assert presenter.screen == "lobby_welcome"
    assert presenter.checkin.holds_patient_data is False
    # Nothing the patient typed is left in any widget, on screen or off it.
    find = driver.ui.sm.get_screen("lobby_find")
    assert (find.ids.name.text, find.ids.dob.text) == ("", "")
    every_text = [getattr(w, "text", "") for w in driver.widgets()]
    every_text += [getattr(w, "text", "") for s in driver.ui.sm.screens for w in s.walk()]
    assert not any("ZZTEST" in t or "03/14" in t for t in every_text)
    assert "Are you still there?\nThis screen will clear in 30 seconds." not in driver.texts()


def test_still_here_dismisses_the_warning(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, _, _, clock = lobby(make_ui)
    driver.scan("qr-demo-0003")
    clock.advance(61)
    driver.pump(3)
    driver.tap("I am still here")
    clock.advance(60)
    driver.pump(3)
    assert presenter.screen == "lobby_contact"


def _corner(driver: Driver) -> object:
    return next(w for w in driver.ui.screen.walk() if type(w).__name__ == "StaffCorner")


def test_staff_pin_leaves_kiosk_mode_from_the_hidden_corner(
    make_ui: Callable[..., Driver],
) -> None:
    driver, presenter, _, _, clock = lobby(make_ui)
    assert "Staff" not in driver.texts() and "Staff PIN" not in driver.texts()
    for _ in range(4):
        driver.tap(_corner(driver))
    assert presenter.staff_open is False  # four taps: still nothing for patients to see
    clock.advance(5)  # a slow fifth tap starts the count again
    driver.tap(_corner(driver))
    assert presenter.staff_open is False
    for _ in range(4):
        driver.tap(_corner(driver))
    assert presenter.staff_open is True
    driver.type_into(field(driver, "pin"), "1111")
    driver.tap("OK")
    # Said quietly beside the field: no message over the waiting room's screen.
    assert "PIN not accepted" in driver.texts() and presenter.message == ""
    driver.shot("lobby_staff_pin")
    driver.type_into(field(driver, "pin"), "7788")
    driver.tap("OK")
    assert presenter.screen == "lobby_message"
    driver.tap("Return to check-in")
    assert presenter.screen == "lobby_welcome"


def test_date_of_birth_typed_as_digits_is_shown_with_the_month_name(
    make_ui: Callable[..., Driver],
) -> None:
    """03141961 is March 14, 1961 (the demo appointment); Spanish writes the day first and
    the month in lower case ("14 de marzo de 1961": RAE, Ortografía 2010, 4.2.4.1 and
    8.1.3.2)."""
    driver, presenter, _, _, _ = lobby(make_ui)
    driver.tap("Check in")
    driver.type_into(field(driver, "name"), "zztest")
    driver.type_into(field(driver, "dob"), "03141961")
    assert "March 14, 1961" in driver.texts()
    driver.tap("Español")
    assert "14 de marzo de 1961" in driver.texts()
    driver.shot("lobby_find_dob_es")
    driver.tap("Buscar")
    assert presenter.screen == "lobby_contact"


def test_done_returns_to_welcome_without_asking_are_you_still_there(
    make_ui: Callable[..., Driver],
) -> None:
    driver, presenter, _, _, clock = lobby(make_ui)
    driver.scan("qr-demo-0003")
    driver.tap("Yes, these are right")
    driver.tap("Done")
    assert "You are checked in" in driver.texts()
    clock.advance(15)
    driver.pump(3)
    assert presenter.screen == "lobby_welcome"
    assert presenter.checkin.holds_patient_data is False
    assert not any("still there" in t for t in driver.texts())


def test_enter_in_the_reason_box_is_done_not_a_new_line(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, outbox, _, _ = lobby(make_ui)
    driver.scan("qr-demo-0003")
    driver.tap("Yes, these are right")
    reason = field(driver, "reason")
    reason.focus = True
    reason.insert_text("cough")
    reason.insert_text("\n")  # what the Enter key inserts in a wrapped text box
    driver.pump(3)
    assert presenter.screen == "lobby_message"
    assert outbox.checkins[0].reason_for_visit == "cough"


def test_ctrl_z_after_a_wipe_brings_nothing_back(make_ui: Callable[..., Driver]) -> None:
    """#20, replayed with Kivy's own key handling: Ctrl+Z x4 then Ctrl+R x4 in the staff PIN
    field brought back the last PIN typed (and opened biomed); after the idle wipe the previous
    patient's name came back in the find screen. Ctrl shortcuts and the history are gone."""
    from kivy.core.window import Window

    driver, presenter, _, _, _ = lobby(make_ui)
    for _ in range(5):
        driver.tap(_corner(driver))
    pin = field(driver, "pin")
    driver.type_into(pin, "2468")
    driver.tap("OK")  # a wrong staff PIN: the field is emptied
    for _ in range(4):
        pin.keyboard_on_key_down(Window, (122, "z"), "z", ["ctrl"])
    for _ in range(4):
        pin.keyboard_on_key_down(Window, (114, "r"), "r", ["ctrl"])
    assert pin.text == ""
    pin.do_undo()  # even the widget's own undo finds nothing
    assert pin.text == ""
    # A patient's name, then the screen is left (the idle wipe, a miss, Back): gone for good.
    presenter.staff_open = False
    driver.ui.redraw()
    driver.tap(presenter.view().text["start"])
    name = field(driver, "name")
    driver.type_into(name, "ZZTEST-Previous")
    driver.tap(presenter.view().text["back"])
    name.do_undo()
    name.do_redo()
    assert name.text == ""
    assert name.use_bubble is False and name.allow_copy is False


def test_f1_opens_no_settings_panel_on_the_kiosk(kivy_window: object) -> None:
    """#20: F1 opened Kivy's settings panel (kivy.app.App._on_keyboard_settings calls
    open_settings) and its changes persisted in config.ini."""
    from kivy.app import App

    from station.ui.app import StationApp

    app = StationApp(lambda: None)  # type: ignore[arg-type, return-value]
    assert app.use_kivy_settings is False
    assert app.open_settings() is False
    assert App.open_settings is not StationApp.open_settings
