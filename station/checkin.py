"""Lobby self check-in as a state machine: find the appointment, contact details, reason, done.

Pure and sans-I/O like `station.rooming`: one transition table, illegal intents raise, the
clock is passed in. Privacy rules live here, not in the screens: a failed lookup says only
"please see the front desk" (the same for a wrong birth date as for an unknown name), contact
changes become a request for staff rather than a record change, and idle time first warns
then wipes every piece of patient data the machine holds.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from station.audit import PATIENT_LOBBY, STAFF, AuditAction
from station.locale import CODES
from station.lockout import PinLockout, Role, plain_matcher
from station.names import clean_name
from station.questionnaires import (
    AnswerError,
    Intake,
    Library,
    NotAsked,
    Question,
    ScreeningResult,
    StaffAlert,
)
from station.workflow import (
    Clock,
    IllegalTransitionError,
    RefusedError,
    check_allowed,
    next_state,
)

REASON_MAX_CHARS = 200
LANGUAGES = CODES  # the one list: station.locale.LANGUAGES


class CheckinState(StrEnum):
    WELCOME = "welcome"  # nobody's data on screen
    FIND = "find"  # typing last name + date of birth
    NOT_FOUND = "not_found"  # "please see the front desk"
    CONTACT = "contact"  # confirm phone / e-mail (masked)
    REASON = "reason"
    QUESTIONS = "questions"  # intake questionnaires, one question at a time (#18)
    INSURANCE = "insurance"  # "has your insurance changed since your last visit?"
    DONE = "done"
    STAFF = "staff"  # kiosk mode left with the staff PIN


class CheckinEvent(StrEnum):
    START = "start"
    LOOKUP_HIT = "lookup_hit"
    LOOKUP_MISS = "lookup_miss"
    CONFIRM_CONTACT = "confirm_contact"
    SUBMIT_REASON = "submit_reason"
    TO_QUESTIONS = "to_questions"
    TO_INSURANCE = "to_insurance"
    BACK = "back"
    BACK_TO_QUESTIONS = "back_to_questions"  # from the insurance question to the last answer
    RESTART = "restart"  # cancel / done / try again: everything wiped
    STAFF_EXIT = "staff_exit"
    STAFF_RETURN = "staff_return"


C, V = CheckinState, CheckinEvent
_PATIENT_STATES = (C.WELCOME, C.FIND, C.NOT_FOUND, C.CONTACT, C.REASON, C.QUESTIONS,
                   C.INSURANCE, C.DONE)

TRANSITIONS: dict[tuple[CheckinState, CheckinEvent], CheckinState] = {
    (C.WELCOME, V.START): C.FIND,
    # The appointment QR code can be scanned on the welcome screen too.
    (C.WELCOME, V.LOOKUP_HIT): C.CONTACT,
    (C.WELCOME, V.LOOKUP_MISS): C.NOT_FOUND,
    (C.FIND, V.LOOKUP_HIT): C.CONTACT,
    (C.FIND, V.LOOKUP_MISS): C.NOT_FOUND,
    (C.FIND, V.BACK): C.WELCOME,
    (C.CONTACT, V.CONFIRM_CONTACT): C.REASON,
    (C.REASON, V.BACK): C.CONTACT,
    (C.REASON, V.SUBMIT_REASON): C.DONE,
    # With questionnaires and/or the insurance question configured (#18):
    (C.REASON, V.TO_QUESTIONS): C.QUESTIONS,
    (C.REASON, V.TO_INSURANCE): C.INSURANCE,
    (C.QUESTIONS, V.TO_INSURANCE): C.INSURANCE,
    (C.QUESTIONS, V.SUBMIT_REASON): C.DONE,
    (C.INSURANCE, V.SUBMIT_REASON): C.DONE,
    # Back: from the first question to the reason; from insurance to the last question asked
    # (or to the reason when none was).
    (C.QUESTIONS, V.BACK): C.REASON,
    (C.INSURANCE, V.BACK_TO_QUESTIONS): C.QUESTIONS,
    (C.INSURANCE, V.BACK): C.REASON,
    **{(state, V.RESTART): C.WELCOME for state in _PATIENT_STATES},
    **{(state, V.STAFF_EXIT): C.STAFF for state in _PATIENT_STATES},
    (C.STAFF, V.STAFF_RETURN): C.WELCOME,
}


class CheckinRefusal(StrEnum):
    BAD_BIRTH_DATE = "bad_birth_date"
    EMPTY_NAME = "empty_name"
    TEXT_TOO_LONG = "text_too_long"
    BAD_CONTACT = "bad_contact"
    WRONG_PIN = "wrong_pin"
    LOCKED_OUT = "locked_out"  # too many wrong staff PINs: the field waits
    UNKNOWN_LANGUAGE = "unknown_language"
    BAD_ANSWER = "bad_answer"


class TickResult(StrEnum):
    NOTHING = "nothing"
    WARNING = "warning"  # "Are you still there?" with a countdown
    WIPED = "wiped"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Appointment(_Frozen):
    """Today's appointment as the lobby sees it (from the schedule)."""

    appointment_id: str
    family_name: str
    given_name: str
    birth_date: date
    phone: str = ""
    email: str = ""
    qr_token: str = ""  # printed on the reminder; unguessable, not the appointment id
    # When the practice last recorded each intake instrument (file name or LOINC code, from
    # the schedule): the rules skip what was done within their interval (#18).
    last_screened: tuple[tuple[str, date], ...] = ()


class ContactChange(_Frozen):
    """What the patient says is new; staff apply it, the record is not touched from here."""

    phone: str = ""
    email: str = ""


class CheckinRecord(_Frozen):
    """Published on `checkin`: the appointment is here, with the reason and any request."""

    appointment_id: str
    checked_in_at: datetime
    language: str
    reason_for_visit: str
    contact_change: ContactChange | None = None
    screenings: tuple[ScreeningResult, ...] = ()  # intake questionnaires answered (#18)
    # Due but not asked (no translation into the patient's language): staff ask in person.
    screenings_not_asked: tuple[NotAsked, ...] = ()
    insurance_changed: bool | None = None  # None: not asked


class HelpRequest(_Frozen):
    """The "ask for help" button: which screen, which language; never who."""

    screen: CheckinState
    language: str
    requested_at: datetime


def normalise_name(name: str) -> str:
    """Case, accents, spaces, hyphens and apostrophes do not decide a match (Núñez = NUNEZ),
    nor characters nobody can see (station.names)."""
    decomposed = unicodedata.normalize("NFKD", clean_name(name).text)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\s'’\-.]", "", letters).casefold()


_DOB = re.compile(r"^\s*(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})\s*$")
_DOB_DIGITS = re.compile(r"^\s*(\d{2})(\d{2})(\d{4})\s*$")  # 03141961: what a keypad types


def parse_birth_date(text: str, *, order: str = "mdy") -> date:
    """`03/14/1961` or `03141961` (US order), `14/03/1961` with order="dmy"; a clear error
    otherwise."""
    match = _DOB.match(text) or _DOB_DIGITS.match(text)
    if match is None:
        raise RefusedError(
            CheckinRefusal.BAD_BIRTH_DATE,
            "type the date of birth: month, day and year, like 03141961",
        )
    a, b, year = (int(g) for g in match.groups())
    month, day = (a, b) if order == "mdy" else (b, a)
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise RefusedError(
            CheckinRefusal.BAD_BIRTH_DATE, "that date does not exist: check month and day"
        ) from exc


def mask_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return f"•••-•••-{digits[-4:]}" if len(digits) >= 4 else ""


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    if not local or not domain:
        return ""
    return f"{local[0]}•••@{domain}"


_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}$")


class Checkin:
    """One lobby kiosk. Holds at most one patient's data, and only until done or idle."""

    def __init__(
        self,
        *,
        clock: Clock,
        staff_pin: str | Callable[[str], bool],
        idle_warning_s: float = 60.0,
        idle_wipe_s: float = 90.0,
        done_return_s: float = 15.0,
        default_language: str = "en",
        lockout: PinLockout | None = None,
        questionnaires: Library | None = None,
        ask_insurance: bool = False,
    ) -> None:
        """`questionnaires`: the intake library (station.questionnaires); None asks none.
        `ask_insurance`: ask "has your insurance changed since your last visit?"."""
        if not idle_warning_s < idle_wipe_s:
            raise ValueError("the idle warning must come before the wipe")
        self._clock = clock
        # A plain PIN in tests and the demo; the station's hashed one as a matcher.
        self._staff_pin = plain_matcher(staff_pin) if isinstance(staff_pin, str) else staff_pin
        self.lockout = lockout or PinLockout(clock)
        self.audit = self.lockout.audit
        self.idle_warning_s = idle_warning_s
        self.idle_wipe_s = idle_wipe_s
        self.done_return_s = done_return_s  # the done / see-the-desk screen, then welcome
        self.default_language = default_language
        self._library = questionnaires
        self.ask_insurance = ask_insurance
        self._appointments: tuple[Appointment, ...] = ()
        self._last_activity = clock()
        self._wipe()

    def _wipe(self) -> None:
        """Forget the patient: every field that could hold their data is reset here."""
        self.state = CheckinState.WELCOME
        self.language = self.default_language
        self.large_text = False
        self.warning = False
        self.draft_family_name = ""
        self.draft_birth_date = ""
        self.appointment: Appointment | None = None
        self.contact_change: ContactChange | None = None
        self.reason_for_visit = ""
        self.record: CheckinRecord | None = None
        self.intake: Intake | None = None
        self.insurance_changed: bool | None = None

    def _fire(self, event: CheckinEvent) -> None:
        self.state = next_state(TRANSITIONS, self.state, event)

    def _check(self, event: CheckinEvent) -> None:
        check_allowed(TRANSITIONS, self.state, event)

    def touch(self) -> None:
        """Any tap or keypress: the patient is still there."""
        self._last_activity = self._clock()
        self.warning = False

    # -- settings the patient may change on every screen -------------------------------------

    def set_language(self, language: str) -> None:
        if language not in LANGUAGES:
            raise RefusedError(
                CheckinRefusal.UNKNOWN_LANGUAGE,
                f"language {language!r}: expected one of {', '.join(LANGUAGES)}",
            )
        self.touch()
        self.language = language

    def set_large_text(self, on: bool) -> None:
        self.touch()
        self.large_text = on

    def ask_for_help(self) -> HelpRequest:
        self.touch()
        now = self._clock()
        self.audit.record(
            now,
            PATIENT_LOBBY,
            AuditAction.HELP_REQUESTED,
            appointment_id=self.appointment.appointment_id if self.appointment else None,
            detail=f"screen={self.state.value}",
        )
        return HelpRequest(screen=self.state, language=self.language, requested_at=now)

    # -- the flow --------------------------------------------------------------------------

    def set_appointments(self, appointments: tuple[Appointment, ...]) -> None:
        self._appointments = appointments

    def start(self) -> None:
        self.touch()
        self._fire(V.START)

    def type_draft(self, *, family_name: str | None = None, birth_date: str | None = None) -> None:
        """What the patient has typed so far; held here so a wipe clears it."""
        self._check(V.LOOKUP_HIT)
        self.touch()
        if family_name is not None:
            self.draft_family_name = family_name[:80]
        if birth_date is not None:
            self.draft_birth_date = birth_date[:20]

    def look_up(self) -> bool:
        """Find today's appointment by last name + date of birth (the drafts)."""
        self._check(V.LOOKUP_HIT)
        if not self.draft_family_name.strip():
            raise RefusedError(CheckinRefusal.EMPTY_NAME, "type your last name")
        birth = parse_birth_date(self.draft_birth_date)
        self.touch()
        wanted = normalise_name(self.draft_family_name)
        found = next(
            (
                a
                for a in self._appointments
                if normalise_name(a.family_name) == wanted and a.birth_date == birth
            ),
            None,
        )
        return self._found(found)

    def scan_qr(self, code: str) -> bool:
        self._check(V.LOOKUP_HIT)
        self.touch()
        token = code.strip()
        found = next(
            (
                a
                for a in self._appointments
                if a.qr_token and hmac.compare_digest(a.qr_token.encode(), token.encode())
            ),
            None,
        )
        return self._found(found)

    def _found(self, appointment: Appointment | None) -> bool:
        # The drafts are dropped either way: a miss leaves nothing typed on the kiosk.
        self.draft_family_name = self.draft_birth_date = ""
        if appointment is None:
            self._fire(V.LOOKUP_MISS)
            return False
        self._fire(V.LOOKUP_HIT)
        self.appointment = appointment
        return True

    def masked_contact(self) -> tuple[str, str]:
        if self.appointment is None:
            return "", ""
        return mask_phone(self.appointment.phone), mask_email(self.appointment.email)

    def confirm_contact(self, change: ContactChange | None = None) -> None:
        """Details are right (None), or these are new: a request for staff, not a record edit."""
        self._check(V.CONFIRM_CONTACT)
        if change is not None:
            problems = []
            if change.phone and not _PHONE.match(change.phone):
                problems.append("phone number should be digits, like 555-010-0199")
            if change.email and not _EMAIL.match(change.email):
                problems.append("e-mail should look like name@example.com")
            if not (change.phone or change.email):
                problems.append("type a new phone number or e-mail, or confirm the ones shown")
            if problems:
                raise RefusedError(
                    CheckinRefusal.BAD_CONTACT, "contact details not accepted", tuple(problems)
                )
        self.touch()
        self._fire(V.CONFIRM_CONTACT)
        self.contact_change = change

    def back(self) -> None:
        """Back, from any screen that has it (on the questions: one question back)."""
        if self.state == C.QUESTIONS:
            self.back_question()
        elif self.state == C.INSURANCE:
            self.back_from_insurance()
        else:
            self.touch()
            self._fire(V.BACK)

    def submit_reason(self, reason: str) -> CheckinRecord:
        self._check(V.SUBMIT_REASON)
        if len(reason) > REASON_MAX_CHARS:
            raise RefusedError(
                CheckinRefusal.TEXT_TOO_LONG,
                f"reason is {len(reason)} characters: at most {REASON_MAX_CHARS}",
            )
        assert self.appointment is not None
        self.touch()
        self._fire(V.SUBMIT_REASON)
        self.reason_for_visit = reason.strip()
        self.record = CheckinRecord(
            appointment_id=self.appointment.appointment_id,
            checked_in_at=self._clock(),
            language=self.language,
            reason_for_visit=self.reason_for_visit,
            contact_change=self.contact_change,
        )
        self.audit.record(
            self.record.checked_in_at,
            PATIENT_LOBBY,
            AuditAction.CHECKIN_COMPLETED,
            appointment_id=self.record.appointment_id,
            detail="contact change requested" if self.contact_change else "",
        )
        return self.record

    # -- intake questionnaires and insurance (#18) -------------------------------------------

    def continue_after_reason(self, reason: str) -> CheckinState:
        """The reason, then the questionnaires the rules choose, then the insurance question;
        straight to done (the record made) when neither is configured or due."""
        check_allowed(TRANSITIONS, self.state, V.TO_QUESTIONS)  # only from the reason
        if len(reason) > REASON_MAX_CHARS:
            raise RefusedError(
                CheckinRefusal.TEXT_TOO_LONG,
                f"reason is {len(reason)} characters: at most {REASON_MAX_CHARS}",
            )
        assert self.appointment is not None
        self.touch()
        self.reason_for_visit = reason.strip()
        if self._library is not None:
            today = self._clock().date()
            age = (today - self.appointment.birth_date).days / 365.25
            self.intake = Intake(self._library, age_years=age, language=self.language,
                                 last_screened=dict(self.appointment.last_screened), today=today)
            if not self.intake.finished:
                self._fire(V.TO_QUESTIONS)
                return self.state
        self._after_questions()
        return self.state

    def answer_question(self, code: str) -> tuple[StaffAlert, ...]:
        """One answer; the alerts it raises go to staff at once (the caller publishes them)."""
        check_allowed(TRANSITIONS, self.state, V.TO_INSURANCE)
        if self.state != C.QUESTIONS or self.intake is None:
            raise IllegalTransitionError(self.state, V.TO_QUESTIONS, TRANSITIONS)
        try:
            alerts = self.intake.answer(code)
        except AnswerError as exc:
            raise RefusedError(CheckinRefusal.BAD_ANSWER, str(exc)) from None
        self.touch()
        if self.intake.finished:
            self._after_questions()
        return alerts

    def question(self) -> Question | None:
        """The question on screen (None outside the questionnaires)."""
        if self.state != C.QUESTIONS or self.intake is None:
            return None
        return self.intake.current()

    def back_question(self) -> None:
        """Back on a question screen: the previous question (its answer taken back), or the
        reason for visit from the first one (the questionnaires start again from there)."""
        if self.state != C.QUESTIONS or self.intake is None:
            raise IllegalTransitionError(self.state, V.BACK, TRANSITIONS)
        self.touch()
        if not self.intake.back():
            self._fire(V.BACK)
            self.intake = None

    def back_from_insurance(self) -> None:
        """Back on the insurance question: the last question answered, or the reason."""
        if self.state != C.INSURANCE:
            raise IllegalTransitionError(self.state, V.BACK, TRANSITIONS)
        self.touch()
        if self.intake is not None and self.intake.back():
            self._fire(V.BACK_TO_QUESTIONS)
        else:
            self._fire(V.BACK)
            self.intake = None

    def _after_questions(self) -> None:
        if self.ask_insurance:
            self._fire(V.TO_INSURANCE)
        else:
            self._finish()

    def answer_insurance(self, changed: bool) -> CheckinRecord:
        if self.state != C.INSURANCE:
            raise IllegalTransitionError(self.state, V.SUBMIT_REASON, TRANSITIONS)
        self.touch()
        self.insurance_changed = changed
        return self._finish()

    def _finish(self) -> CheckinRecord:
        assert self.appointment is not None
        self._fire(V.SUBMIT_REASON)
        self.record = CheckinRecord(
            appointment_id=self.appointment.appointment_id,
            checked_in_at=self._clock(),
            language=self.language,
            reason_for_visit=self.reason_for_visit,
            contact_change=self.contact_change,
            screenings=self.intake.results() if self.intake else (),
            screenings_not_asked=self.intake.not_asked() if self.intake else (),
            insurance_changed=self.insurance_changed,
        )
        self.audit.record(
            self.record.checked_in_at,
            PATIENT_LOBBY,
            AuditAction.CHECKIN_COMPLETED,
            appointment_id=self.record.appointment_id,
            detail="contact change requested" if self.contact_change else "",
        )
        return self.record

    def restart(self) -> None:
        """Cancel, done or try again: back to welcome with everything wiped."""
        self._fire(V.RESTART)
        self._wipe()
        self.touch()

    def abandon(self) -> None:
        """After an unexpected error: back to welcome with everything wiped, from any state
        (not through the transition table: the state may be what went wrong)."""
        self._wipe()
        self.touch()

    # -- staff ----------------------------------------------------------------------------

    def staff_exit(self, pin: str) -> None:
        self._check(V.STAFF_EXIT)
        wait = self.lockout.wait_s(Role.STAFF)
        if wait:
            raise RefusedError(CheckinRefusal.LOCKED_OUT, f"try again in {wait} s")
        typed = pin.strip()
        if not self.lockout.try_pin(
            Role.STAFF, lambda: self._staff_pin(typed) or None, keypad="lobby"
        ):
            wait = self.lockout.wait_s(Role.STAFF)
            if wait:
                raise RefusedError(CheckinRefusal.LOCKED_OUT, f"try again in {wait} s")
            raise RefusedError(CheckinRefusal.WRONG_PIN, "PIN not accepted")
        self._wipe()
        self.touch()
        self._fire(V.STAFF_EXIT)
        self.audit.record(self._clock(), STAFF, AuditAction.STAFF_UNLOCK)

    def staff_return(self) -> None:
        self.touch()
        self._fire(V.STAFF_RETURN)

    # -- idle ---------------------------------------------------------------------------

    @property
    def holds_patient_data(self) -> bool:
        return bool(
            self.appointment
            or self.draft_family_name
            or self.draft_birth_date
            or self.contact_change
            or self.reason_for_visit
            or self.record
            or self.intake
            or self.insurance_changed is not None
        )

    def idle_seconds(self) -> float:
        return (self._clock() - self._last_activity).total_seconds()

    def seconds_until_wipe(self) -> float:
        return max(0.0, self.idle_wipe_s - self.idle_seconds())

    def tick(self) -> TickResult:
        """Called by a timer. Welcome with nothing typed and the staff screen never time out
        into a wipe that matters; every other screen warns, then wipes."""
        if self.state == C.STAFF:
            return TickResult.NOTHING
        if (
            self.state == C.WELCOME
            and not self.holds_patient_data
            and (self.language == self.default_language and not self.large_text)
        ):
            return TickResult.NOTHING
        idle = self.idle_seconds()
        if self.state in (C.DONE, C.NOT_FOUND) and idle >= self.done_return_s:
            # Finished (or sent to the desk): back to welcome without asking "are you still
            # there?" of someone who has walked away satisfied.
            self._wipe()
            self._last_activity = self._clock()
            return TickResult.WIPED
        if idle >= self.idle_wipe_s:
            self._wipe()
            self._last_activity = self._clock()
            return TickResult.WIPED
        if idle >= self.idle_warning_s and not self.warning:
            self.warning = True
            return TickResult.WARNING
        return TickResult.NOTHING
