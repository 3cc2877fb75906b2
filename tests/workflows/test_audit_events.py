"""#17: the audited actions the full-rooming test does not reach, each from the workflow that
performs it (pure: the events are data the app stores and sends). The list of actions is the
issue's: "lobby check-in completed and help requested, biomed unlock, bind / unbind / test,
diagnostics exported", "auto sign-out", staff unlock. Patient references only where the issue
puts them (the appointment), never what was typed."""

from __future__ import annotations

from station.rooming import Rooming
from station.rooming_data import RoomingState
from tests.workflows import test_biomed, test_checkin
from tests.workflows.helpers import FakeClock


def actions(events: tuple[object, ...]) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.action.value, e.appointment_id) for e in events]  # type: ignore[attr-defined]


def test_lobby_check_in_help_and_the_staff_exit_are_audited() -> None:
    kiosk, _ = test_checkin.make()
    test_checkin.find(kiosk)
    kiosk.ask_for_help()
    kiosk.confirm_contact()
    kiosk.submit_reason("cough")
    kiosk.restart()
    kiosk.staff_exit("7788")
    assert actions(kiosk.audit.take()) == [
        ("patient (lobby)", "help_requested", "APT-TEST-0003"),  # found: the audit may say who
        ("patient (lobby)", "checkin_completed", "APT-TEST-0003"),
        ("staff", "staff_unlock", None),
    ]


def test_biomed_unlock_bind_unbind_and_export_are_audited() -> None:
    biomed, _ = test_biomed.make()
    biomed.unlock("24680")
    biomed.bind("scale")
    biomed.unbind("scale")
    biomed.diagnostics_exported("/var/lib/station/diagnostics/bundle.tar.gz")
    got = [(e.action.value, e.detail) for e in biomed.audit.take()]
    assert got == [
        ("biomed_unlock", ""),
        ("device_bound", "scale (and-uc-352ble)"),
        ("device_unbound", "scale (and-uc-352ble)"),
        ("diagnostics_exported", "/var/lib/station/diagnostics/bundle.tar.gz"),
    ]


def test_an_idle_sign_out_is_audited_as_automatic() -> None:
    clock = FakeClock()
    rooming = Rooming(clock=clock, credentials={"482913": "ma-0042"}, idle_signout_s=300)
    rooming.sign_in("482913")
    clock.advance(301)
    assert rooming.tick() is True and rooming.state == RoomingState.SIGNED_OUT
    assert [a for _, a, _ in actions(rooming.audit.take())] == ["ma_sign_in", "ma_auto_sign_out"]
