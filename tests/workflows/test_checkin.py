"""Lobby self check-in: every transition, every refusal, the privacy rules and the idle wipe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from station.checkin import (
    TRANSITIONS,
    Appointment,
    Checkin,
    CheckinEvent,
    CheckinRecord,
    CheckinRefusal,
    CheckinState,
    ContactChange,
    HelpRequest,
    TickResult,
    mask_email,
    mask_phone,
    normalise_name,
    parse_birth_date,
)
from station.questionnaires import load_library
from station.workflow import IllegalTransitionError, RefusedError
from tests.workflows.helpers import T0, FakeClock

C, V = CheckinState, CheckinEvent

CHARLIE = Appointment(
    appointment_id="APT-TEST-0003",
    family_name="ZZTEST-Núñez",
    given_name="Charlie",
    birth_date=date(1961, 3, 14),
    phone="555-010-0199",
    email="charlie@example.com",
    qr_token="qr-7f3a9c2e",
)
DELTA = Appointment(
    appointment_id="APT-TEST-0004",
    family_name="ZZTEST",
    given_name="Delta",
    birth_date=date(1990, 7, 1),
)


LIBRARY = load_library()


def make() -> tuple[Checkin, FakeClock]:
    clock = FakeClock()
    kiosk = Checkin(clock=clock, staff_pin="7788", questionnaires=LIBRARY, ask_insurance=True)
    kiosk.set_appointments((CHARLIE, DELTA))
    return kiosk, clock


def find(kiosk: Checkin, name: str = "zztest-nunez", dob: str = "03/14/1961") -> bool:
    kiosk.start()
    kiosk.type_draft(family_name=name, birth_date=dob)
    return kiosk.look_up()


def to_reason(kiosk: Checkin) -> None:
    find(kiosk)
    kiosk.confirm_contact()


def to_done(kiosk: Checkin) -> None:
    to_reason(kiosk)
    kiosk.submit_reason("cough")


def drive_to(state: CheckinState) -> tuple[Checkin, FakeClock]:
    kiosk, clock = make()
    paths: dict[CheckinState, Callable[[], object]] = {
        C.WELCOME: lambda: None,
        C.FIND: kiosk.start,
        C.NOT_FOUND: lambda: find(kiosk, "nobody"),
        C.CONTACT: lambda: find(kiosk),
        C.REASON: lambda: to_reason(kiosk),
        C.DONE: lambda: to_done(kiosk),
        C.STAFF: lambda: kiosk.staff_exit("7788"),
        C.QUESTIONS: lambda: (to_reason(kiosk), kiosk.continue_after_reason("rash")),
        C.INSURANCE: lambda: (to_reason(kiosk), kiosk.continue_after_reason("rash"),
                              answer_all(kiosk)),
    }
    paths[state]()
    assert kiosk.state == state
    return kiosk, clock


def answer_all(kiosk: Checkin) -> None:
    """Every question answered "Not at all" (no follow-up is due), or its last answer (no,
    never smoked)."""
    while (question := kiosk.question()) is not None:
        codes = [code for code, _ in question.options]
        kiosk.answer_question("LA6568-5" if "LA6568-5" in codes else codes[-1])


def back_with_nothing_answered(kiosk: Checkin) -> None:
    kiosk.intake = None  # as when no questionnaire was due: Back goes to the reason
    kiosk.back()


def no_questions(kiosk: Checkin) -> None:
    kiosk._library = None  # this kiosk asks no questionnaire: straight to insurance
    kiosk.continue_after_reason("rash")


def questions_then(kiosk: Checkin, *, insurance: bool) -> None:
    kiosk.ask_insurance = insurance
    answer_all(kiosk)


def fire(kiosk: Checkin, event: CheckinEvent) -> None:
    state = kiosk.state
    actions: dict[CheckinEvent, Callable[[], object]] = {
        V.TO_QUESTIONS: lambda: kiosk.continue_after_reason("rash"),
        V.TO_INSURANCE: (lambda: no_questions(kiosk)) if state == C.REASON else (
            lambda: questions_then(kiosk, insurance=True)) if state == C.QUESTIONS else (
            lambda: kiosk.answer_question("LA6568-5")),
        V.START: kiosk.start,
        V.LOOKUP_HIT: lambda: kiosk.scan_qr("qr-7f3a9c2e"),
        V.LOOKUP_MISS: lambda: kiosk.scan_qr("qr-unknown"),
        V.CONFIRM_CONTACT: kiosk.confirm_contact,
        V.SUBMIT_REASON: (lambda: questions_then(kiosk, insurance=False))
        if state == C.QUESTIONS else (lambda: kiosk.answer_insurance(False))
        if state == C.INSURANCE else (lambda: kiosk.submit_reason("rash")),
        V.BACK: (lambda: back_with_nothing_answered(kiosk)) if state == C.INSURANCE
        else kiosk.back,
        V.BACK_TO_QUESTIONS: kiosk.back_from_insurance,
        V.RESTART: kiosk.restart,
        V.STAFF_EXIT: lambda: kiosk.staff_exit("7788"),
        V.STAFF_RETURN: kiosk.staff_return,
    }
    actions[event]()


@pytest.mark.parametrize(
    ("state", "event", "target"), [(s, e, t) for (s, e), t in TRANSITIONS.items()]
)
def test_every_transition_in_the_table(
    state: CheckinState, event: CheckinEvent, target: CheckinState
) -> None:
    kiosk, _ = drive_to(state)
    fire(kiosk, event)
    assert kiosk.state == target


@pytest.mark.parametrize(
    ("state", "event"), [(s, e) for s in C for e in V if (s, e) not in TRANSITIONS]
)
def test_every_illegal_transition_raises_and_changes_nothing(
    state: CheckinState, event: CheckinEvent
) -> None:
    kiosk, _ = drive_to(state)
    with pytest.raises(IllegalTransitionError):
        fire(kiosk, event)
    assert kiosk.state == state


def test_lookup_by_last_name_and_dob_ignores_case_accents_and_hyphens() -> None:
    kiosk, _ = make()
    assert find(kiosk, "  ZZTEST nuñez ", "3/14/1961") is True
    assert (kiosk.state, kiosk.appointment) == (C.CONTACT, CHARLIE)
    assert (kiosk.draft_family_name, kiosk.draft_birth_date) == ("", "")
    assert kiosk.masked_contact() == ("•••-•••-0199", "c•••@example.com")


@pytest.mark.parametrize(
    ("name", "dob"),
    [
        ("ZZTEST-Nunez", "03/15/1961"),  # right name, wrong birth date
        ("ZZTEST-Nunes", "03/14/1961"),  # wrong name, right birth date
        ("Nobody", "01/01/2000"),
    ],
)
def test_a_miss_says_only_see_the_front_desk_whatever_was_wrong(name: str, dob: str) -> None:
    kiosk, _ = make()
    assert find(kiosk, name, dob) is False
    # The same state and nothing kept, so the screen cannot hint which part was wrong.
    assert kiosk.state == C.NOT_FOUND
    assert kiosk.holds_patient_data is False


def test_qr_lookup_hit_and_miss() -> None:
    kiosk, _ = make()
    assert kiosk.scan_qr(" qr-7f3a9c2e\n") is True
    assert kiosk.appointment == CHARLIE
    kiosk.restart()
    assert kiosk.scan_qr(CHARLIE.appointment_id) is False  # the id alone is not the code
    assert kiosk.state == C.NOT_FOUND


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("14-3", "type the date of birth: month, day and year, like 03141961"),
        ("02/30/1961", "that date does not exist: check month and day"),
        ("", "type the date of birth: month, day and year, like 03141961"),
    ],
)
def test_bad_birth_date_is_refused_with_the_expected_form(text: str, message: str) -> None:
    kiosk, _ = drive_to(C.FIND)
    kiosk.type_draft(family_name="ZZTEST", birth_date=text)
    with pytest.raises(RefusedError) as info:
        kiosk.look_up()
    assert (info.value.reason, info.value.message) == (CheckinRefusal.BAD_BIRTH_DATE, message)
    assert kiosk.state == C.FIND and kiosk.draft_family_name == "ZZTEST"


def test_empty_name_refused_and_date_orders() -> None:
    kiosk, _ = drive_to(C.FIND)
    kiosk.type_draft(family_name="  ", birth_date="03/14/1961")
    with pytest.raises(RefusedError) as info:
        kiosk.look_up()
    assert info.value.reason == CheckinRefusal.EMPTY_NAME
    assert parse_birth_date("14.03.1961", order="dmy") == date(1961, 3, 14)
    assert parse_birth_date("3-4-1961") == date(1961, 3, 4)


def test_contact_change_becomes_a_request_for_staff_not_a_record_edit() -> None:
    kiosk, clock = drive_to(C.CONTACT)
    change = ContactChange(phone="555-010-0123")
    kiosk.confirm_contact(change)
    clock.advance(20)
    record = kiosk.submit_reason("  rash on arm ")
    assert record == CheckinRecord(
        appointment_id="APT-TEST-0003",
        checked_in_at=T0 + timedelta(seconds=20),
        language="en",
        reason_for_visit="rash on arm",
        contact_change=change,
    )
    assert kiosk.appointment == CHARLIE  # the appointment's own details are unchanged


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        (ContactChange(phone="call me"), ("phone number should be digits, like 555-010-0199",)),
        (ContactChange(email="nope"), ("e-mail should look like name@example.com",)),
        (
            ContactChange(),
            ("type a new phone number or e-mail, or confirm the ones shown",),
        ),
    ],
)
def test_bad_contact_change_is_refused(change: ContactChange, problems: tuple[str, ...]) -> None:
    kiosk, _ = drive_to(C.CONTACT)
    with pytest.raises(RefusedError) as info:
        kiosk.confirm_contact(change)
    assert (info.value.reason, info.value.details) == (CheckinRefusal.BAD_CONTACT, problems)
    assert kiosk.state == C.CONTACT


def test_reason_too_long_is_refused() -> None:
    kiosk, _ = drive_to(C.REASON)
    with pytest.raises(RefusedError) as info:
        kiosk.submit_reason("a" * 201)
    assert info.value.message == "reason is 201 characters: at most 200"
    assert kiosk.state == C.REASON


def test_done_then_restart_wipes_everything() -> None:
    kiosk, _ = drive_to(C.DONE)
    kiosk.set_language("es")
    assert kiosk.holds_patient_data is True
    kiosk.restart()
    assert (kiosk.state, kiosk.language, kiosk.holds_patient_data) == (C.WELCOME, "en", False)


def test_language_switchable_on_every_screen_and_unknown_refused() -> None:
    for state in (C.WELCOME, C.FIND, C.CONTACT, C.REASON, C.DONE, C.NOT_FOUND):
        kiosk, _ = drive_to(state)
        kiosk.set_language("es")
        assert (kiosk.state, kiosk.language) == (state, "es")
    with pytest.raises(RefusedError) as info:
        kiosk.set_language("fr")
    assert info.value.reason == CheckinRefusal.UNKNOWN_LANGUAGE


def test_help_request_carries_no_patient_data() -> None:
    kiosk, clock = drive_to(C.REASON)
    kiosk.set_language("es")
    clock.advance(3)
    assert kiosk.ask_for_help() == HelpRequest(
        screen=C.REASON, language="es", requested_at=T0 + timedelta(seconds=3)
    )
    assert set(HelpRequest.model_fields) == {"screen", "language", "requested_at"}


def test_staff_pin_leaves_kiosk_mode_and_wrong_pin_is_refused() -> None:
    kiosk, _ = drive_to(C.CONTACT)
    with pytest.raises(RefusedError) as info:
        kiosk.staff_exit("0000")
    assert info.value.reason == CheckinRefusal.WRONG_PIN
    assert kiosk.state == C.CONTACT
    kiosk.staff_exit("7788")
    assert (kiosk.state, kiosk.holds_patient_data) == (C.STAFF, False)


# -- idle warning and wipe -----------------------------------------------------------------


def test_timeout_mid_entry_warns_at_60_and_wipes_at_90() -> None:
    kiosk, clock = drive_to(C.FIND)
    kiosk.set_large_text(True)
    kiosk.set_language("es")
    kiosk.type_draft(family_name="ZZTEST-Nu", birth_date="03/1")
    clock.advance(59)
    assert kiosk.tick() == TickResult.NOTHING
    clock.advance(1)
    assert kiosk.tick() == TickResult.WARNING
    assert kiosk.warning is True
    assert kiosk.seconds_until_wipe() == 30
    assert kiosk.tick() == TickResult.NOTHING  # warned once
    clock.advance(30)
    assert kiosk.tick() == TickResult.WIPED
    assert (
        kiosk.state,
        kiosk.draft_family_name,
        kiosk.draft_birth_date,
        kiosk.language,
        kiosk.large_text,
        kiosk.warning,
        kiosk.holds_patient_data,
    ) == (C.WELCOME, "", "", "en", False, False, False)


def test_a_touch_during_the_warning_keeps_the_patient_going() -> None:
    kiosk, clock = drive_to(C.REASON)
    clock.advance(61)
    assert kiosk.tick() == TickResult.WARNING
    kiosk.touch()
    assert kiosk.warning is False
    clock.advance(89)
    assert kiosk.tick() == TickResult.WARNING
    assert kiosk.appointment == CHARLIE


@pytest.mark.parametrize("state", [C.CONTACT, C.REASON, C.DONE, C.NOT_FOUND])
def test_every_patient_screen_wipes_on_idle(state: CheckinState) -> None:
    kiosk, clock = drive_to(state)
    clock.advance(90)
    assert kiosk.tick() == TickResult.WIPED
    assert (kiosk.state, kiosk.holds_patient_data, kiosk.appointment, kiosk.record) == (
        C.WELCOME,
        False,
        None,
        None,
    )


def test_empty_welcome_and_staff_screens_do_not_time_out() -> None:
    kiosk, clock = drive_to(C.WELCOME)
    clock.advance(1000)
    assert kiosk.tick() == TickResult.NOTHING
    kiosk, clock = drive_to(C.STAFF)
    clock.advance(1000)
    assert kiosk.tick() == TickResult.NOTHING


def test_warning_must_come_before_wipe() -> None:
    with pytest.raises(ValueError, match="idle warning must come before the wipe"):
        Checkin(clock=FakeClock(), staff_pin="1", idle_warning_s=90, idle_wipe_s=90)


def test_helpers() -> None:
    assert normalise_name("O’Brien-Núñez") == "obriennunez"
    assert mask_phone("12") == ""
    assert mask_email("no-at-sign") == ""


def test_back_walks_through_the_questions_to_the_reason_and_from_insurance() -> None:
    kiosk, _ = drive_to(C.QUESTIONS)  # Charlie, 64 on the fake clock's day: PHQ-2 first
    first = kiosk.question()
    assert first is not None and first.number == 1
    kiosk.answer_question("LA6568-5")
    kiosk.back()  # one question back, its answer taken back
    assert (kiosk.state, kiosk.question()) == (C.QUESTIONS, first)
    kiosk.back()  # from the first question: the reason, which the patient keeps
    assert (kiosk.state, kiosk.reason_for_visit, kiosk.intake) == (C.REASON, "rash", None)
    kiosk.continue_after_reason("rash")
    answer_all(kiosk)
    assert kiosk.state == C.INSURANCE
    kiosk.back()  # the last question again
    assert kiosk.state == C.QUESTIONS and kiosk.question() is not None
    answer_all(kiosk)
    record = kiosk.answer_insurance(True)
    assert (record.insurance_changed, record.screenings_not_asked) == (True, ())


def test_screened_this_year_by_the_schedule_is_not_asked() -> None:
    clock = FakeClock()
    kiosk = Checkin(clock=clock, staff_pin="7788", questionnaires=LIBRARY)
    recent = clock().date().replace(day=1)
    kiosk.set_appointments((CHARLIE.model_copy(update={"last_screened": (
        ("44249-1", recent), ("gad-7", recent))}),))
    to_reason(kiosk)
    kiosk.continue_after_reason("rash")  # 64: PHQ and GAD done this month, tobacco left
    question = kiosk.question()
    assert question is not None and question.instrument == "tobacco"
    kiosk.answer_question("266919005")
    record = kiosk.record
    assert kiosk.state == C.DONE and record is not None
    assert [r.instrument for r in record.screenings] == ["tobacco"]
