"""The lobby kiosk's presenter: self check-in in the patient's language, spoken prompts,
the idle wipe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from station.checkin import Checkin, CheckinState, ContactChange, TickResult, parse_birth_date
from station.errors import StationError
from station.locale import CODES, N_, translations
from station.lockout import Role
from station.ui.ports import (
    LobbySink,
    Speaker,
)
from station.ui.presenters.base import Tone, _Base, _try
from station.ui.presenters.biomed import BiomedPresenter
from station.workflow import RefusedError

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
STAFF_TAPS = 5  # taps on the hidden staff corner that open the staff PIN
STAFF_TAPS_WITHIN_S = 4.0


# Lobby strings said by the core (station.checkin) or looked up by name, marked here for
# extraction (station.locale PATIENT_SOURCES: every language must have them).
LOBBY_TEXT = (
    N_("Welcome"),
    N_("Check in for your appointment"),
    N_("Check in"),
    N_("Or scan the QR code from your reminder"),
    N_("Ask for help"),
    N_("Larger text"),
    N_("Find your appointment"),
    N_("Last name"),
    N_("Date of birth (MM/DD/YYYY)"),
    N_("Date of birth: month, day, year"),
    N_("MM DD YYYY"),
    N_("{month} {day}, {year}"),
    N_("January"),
    N_("February"),
    N_("March"),
    N_("April"),
    N_("May"),
    N_("June"),
    N_("July"),
    N_("August"),
    N_("September"),
    N_("October"),
    N_("November"),
    N_("December"),
    N_("Cancel"),
    N_("OK"),
    N_("Find"),
    N_("Back"),
    N_("Please see the front desk"),
    N_("The front desk will help you check in."),
    N_("Start over"),
    N_("Are these still right?"),
    N_("Phone"),
    N_("E-mail"),
    N_("Yes, these are right"),
    N_("Something changed"),
    N_("New phone"),
    N_("New e-mail"),
    N_("Send the change to the front desk"),
    N_("Not me"),
    N_("Code read. To use it, tap Start over first."),
    N_("The front desk will update your details."),
    N_("What is the reason for your visit today?"),
    N_("Done"),
    N_("You are checked in"),
    N_("Please have a seat. We will call you soon."),
    N_("Are you still there?"),
    N_("This screen will clear in {seconds} seconds."),
    N_("I am still here"),
    N_("Help is on the way."),
    N_("Staff PIN"),
    N_("Staff"),
    N_("Kiosk mode is off. Return to check-in when done."),
    N_("Return to check-in"),
    N_("type your last name"),
    N_("type the date of birth: month, day and year, like 03141961"),
    N_("that date does not exist: check month and day"),
    N_("phone number should be digits, like 555-010-0199"),
    N_("e-mail should look like name@example.com"),
    N_("type a new phone number or e-mail, or confirm the ones shown"),
    N_("PIN not accepted"),
    N_("none on file"),
    # Intake questionnaires and the insurance question (#18); the questions and answers
    # themselves come in the patient's language from the questionnaire files.
    N_("Question {number} of {total}"),
    N_("Has your insurance changed since your last visit?"),
    N_("Yes, it changed"),
    N_("No, it is the same"),
    N_("The front desk will ask about your new insurance."),
    N_("Some questions are not available in your language. Staff will ask you in person."),
)


@dataclass(frozen=True)
class LobbyView:
    screen: str
    language: str
    large_text: bool
    text: dict[str, str] = field(default_factory=dict)
    warning: str = ""  # the idle warning, with its countdown; "" when none
    message: str = ""
    phone: str = ""
    email: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # a question's answers: (code, label)


LOBBY_SCREEN: dict[CheckinState, str] = {
    CheckinState.WELCOME: "lobby_welcome",
    CheckinState.FIND: "lobby_find",
    CheckinState.NOT_FOUND: "lobby_message",
    CheckinState.CONTACT: "lobby_contact",
    CheckinState.REASON: "lobby_reason",
    CheckinState.QUESTIONS: "lobby_question",
    CheckinState.INSURANCE: "lobby_insurance",
    CheckinState.DONE: "lobby_message",
    CheckinState.STAFF: "lobby_message",
}


class LobbyPresenter(_Base):
    def __init__(
        self,
        checkin: Checkin,
        events: LobbySink,
        speaker: Speaker,
        *,
        biomed: BiomedPresenter | None = None,
    ) -> None:
        self.checkin = checkin
        self.events = events
        self.speaker = speaker
        self.message = ""
        self._catalogs = {lang: translations(lang) for lang in CODES}
        self.language = checkin.default_language  # the station's; the patient picks their own
        self.help_sent = False
        self.staff_open = False  # the staff PIN row, opened from the hidden corner
        self.staff_error = ""
        self._corner: list[datetime] = []
        # Biomed staff reach their screen with the biomed PIN in the staff PIN field.
        self.biomed = biomed

    def _(self, text: str) -> str:
        return self._catalogs[self.checkin.language].gettext(text)

    @property
    def finished(self) -> bool:
        """Done or not found: nothing of the last patient's is waiting for input."""
        return self.checkin.state in (CheckinState.DONE, CheckinState.NOT_FOUND)

    @property
    def screen(self) -> str:
        if self.biomed is not None and self.biomed.unlocked:
            return "biomed"
        return LOBBY_SCREEN[self.checkin.state]

    def _run(self, action: Callable[[], object]) -> bool:
        ok = _try(self, action)
        if not ok:
            # The message's last clause only ("... — type your last name"), already translated
            # by _try (station.locale.translate_message): a sentence, in any language.
            said = self.message.rsplit(" — ", 1)[-1]
            self.message = said[:1].upper() + said[1:]
        return ok

    # -- intents ------------------------------------------------------------------------------

    def touch(self) -> None:
        self.checkin.touch()

    def set_language(self, language: str) -> None:
        self._run(lambda: self.checkin.set_language(language))
        self.speak()

    def toggle_large_text(self) -> None:
        self.checkin.set_large_text(not self.checkin.large_text)

    def ask_for_help(self) -> None:
        self.events.help(self.checkin.ask_for_help())
        self.help_sent = True
        self.speaker.say(self._("Help is on the way."), self.checkin.language)

    def start(self) -> None:
        self.help_sent = False
        self._run(self.checkin.start)
        self.speak()

    def typed(self, family_name: str | None = None, birth_date: str | None = None) -> None:
        # Field text also changes when a screen clears itself on leaving; only typing on the
        # find screen is the patient's input.
        if self.checkin.state == CheckinState.FIND:
            self.checkin.type_draft(family_name=family_name, birth_date=birth_date)

    def find(self) -> None:
        self._run(self.checkin.look_up)
        self.speak()

    def scan_qr(self, code: str) -> None:
        self._run(lambda: self.checkin.scan_qr(code))
        self.speak()

    def scan_elsewhere(self) -> str:
        """A QR code scanned mid check-in: say so, in the patient's language."""
        return self._("Code read. To use it, tap Start over first.")

    def contact_ok(self) -> None:
        self._run(self.checkin.confirm_contact)
        self.speak()

    def contact_changed(self, phone: str, email: str) -> None:
        change = ContactChange(phone=phone.strip(), email=email.strip())
        self._run(lambda: self.checkin.confirm_contact(change))
        self.speak()

    def back(self) -> None:
        """Back: the screen before; on the questions, the question before (its answer taken
        back)."""
        self._run(self.checkin.back)
        if self.checkin.state in (CheckinState.QUESTIONS, CheckinState.INSURANCE):
            self.speak()

    def submit_reason(self, reason: str) -> None:
        """The reason, then the questionnaires and the insurance question when configured;
        the check-in goes to the front desk when nothing more is asked."""

        def action() -> None:
            if self.checkin.continue_after_reason(reason) == CheckinState.DONE:
                self._send_checkin()

        self._run(action)
        self.speak()

    def answer(self, code: str) -> None:
        """One answer on a question screen. An answer staff must hear about now (PHQ-9 item 9)
        is sent the moment it is given, before anything else."""

        def action() -> None:
            alerts = self.checkin.answer_question(code)
            appointment = self.checkin.appointment
            failed: StationError | None = None
            for alert in alerts:
                assert appointment is not None
                try:
                    self.events.screening_alert(
                        alert, appointment_id=appointment.appointment_id,
                        language=self.checkin.language, raised_at=self.checkin._clock())
                except StationError as exc:
                    failed = exc  # the check-in still goes; then the patient is told
            if self.checkin.state == CheckinState.DONE:
                self._send_checkin()
            if failed is not None:
                raise failed

        self._run(action)
        self.speak()

    def insurance(self, changed: bool) -> None:
        """ "Has your insurance changed since your last visit?": the check-in goes with it."""

        def action() -> None:
            self.checkin.answer_insurance(changed)
            self._send_checkin()

        self._run(action)
        self.speak()

    def _send_checkin(self) -> None:
        record = self.checkin.record
        assert record is not None
        self.events.checkin(record)

    def restart(self) -> None:
        self.help_sent = False
        self._run(self.checkin.restart)

    def fault(self) -> None:
        """An unexpected error (station.ui.faults): the check-in is wiped, whatever state it
        was in, and the patient is sent to a person."""
        self.help_sent = False
        self.staff_open = False
        self.staff_error = ""
        self.checkin.abandon()
        self.say(self._("Please see the front desk"), Tone.ERROR)

    def staff_corner(self) -> None:
        """A tap on the hidden staff corner (welcome screen); five quick taps open the staff
        PIN. Patients see no staff controls."""
        now = self.checkin._clock()
        self._corner = [t for t in self._corner if (now - t).total_seconds() <= STAFF_TAPS_WITHIN_S]
        self._corner.append(now)
        if len(self._corner) >= STAFF_TAPS:
            self._corner = []
            self.staff_open = True
            self.staff_error = ""

    def staff_cancel(self) -> None:
        self.staff_open = False
        self.staff_error = ""

    def staff_exit(self, pin: str) -> None:
        """The staff PIN leaves kiosk mode; the biomed PIN opens biomed. A wrong try counts
        against the staff PIN only; while that waits, against biomed (station.lockout). A wrong
        one is said quietly beside the field (never a red banner to the waiting room)."""
        biomed = self.biomed
        if biomed is not None and biomed.biomed.matches(pin):
            biomed.unlock(pin, keypad="lobby")
            self.staff_open = False
            self.staff_error = ""
            self.say("")
            return
        if biomed is not None and self.checkin.lockout.wait_s(Role.STAFF):
            biomed.biomed.lockout.try_pin(Role.BIOMED, lambda: None, keypad="lobby")
        if self._run(lambda: self.checkin.staff_exit(pin)):
            self.staff_open = False
            self.staff_error = ""
            return
        self.staff_error = self.message
        self.say("")

    def staff_return(self) -> None:
        self._run(self.checkin.staff_return)

    def tick(self) -> TickResult:
        if self.biomed is not None and self.biomed.unlocked:
            self.biomed.tick()
        result = self.checkin.tick()
        wait = self.checkin.lockout.wait_s(Role.STAFF)
        if self.message.startswith("try again in "):
            # The staff PIN's lockout countdown, refreshed every tick.
            self.message = f"try again in {wait} s" if wait else ""
        if result == TickResult.WIPED:
            self.message = ""
            self.help_sent = False
            self.staff_open = False
        elif result == TickResult.WARNING:
            self.speaker.say(self._("Are you still there?"), self.checkin.language)
        return result

    # -- views --------------------------------------------------------------------------------

    def speak(self) -> None:
        """Spoken prompt for the screen now showing: its title and its choices."""
        view = self.view()
        keys = {
            "lobby_welcome": ("title", "subtitle", "start"),
            "lobby_find": ("title", "name", "dob"),
            "lobby_message": ("title", "body"),
            "lobby_contact": ("title", "ok", "change"),
            "lobby_reason": ("title",),
            "lobby_question": ("stem", "title"),
            "lobby_insurance": ("title", "yes", "no"),
        }[view.screen]
        said = [view.text[k] for k in keys if view.text[k]] + [label for _, label in view.choices]
        self.speaker.say(". ".join(said), view.language)

    def birth_date_in_words(self) -> str:
        """The date typed so far with the month's name, in the patient's language ("March
        14, 1961" / "14 de marzo de 1961"): 03/04 is ambiguous, "March 4" is not. "" until
        it is a real date."""
        try:
            born = parse_birth_date(self.checkin.draft_birth_date)
        except RefusedError:
            return ""
        month = self._(MONTHS[born.month - 1])
        return self._("{month} {day}, {year}").format(month=month, day=born.day, year=born.year)

    def view(self) -> LobbyView:
        _ = self._
        state = self.checkin.state
        choices: tuple[tuple[str, str], ...] = ()
        common = {
            "help": _("Ask for help"),
            "large": _("Larger text"),
            "back": _("Back"),
            "still_here": _("I am still here"),
            "help_sent": _("Help is on the way.") if self.help_sent else "",
        }
        text: dict[str, str]
        if state == CheckinState.WELCOME:
            text = {
                "title": _("Welcome"),
                "subtitle": _("Check in for your appointment"),
                "start": _("Check in"),
                "qr": _("Or scan the QR code from your reminder"),
                "staff": _("Staff"),
                "pin": _("Staff PIN"),
                "cancel": _("Cancel"),
                "ok": _("OK"),
                "staff_error": _(self.staff_error) if self.staff_error else "",
            }
        elif state == CheckinState.FIND:
            text = {
                "title": _("Find your appointment"),
                "name": _("Last name"),
                "dob": _("Date of birth: month, day, year"),
                "dob_hint": _("MM DD YYYY"),
                "dob_shown": self.birth_date_in_words(),
                "find": _("Find"),
            }
        elif state == CheckinState.NOT_FOUND:
            text = {
                "title": _("Please see the front desk"),
                "body": _("The front desk will help you check in."),
                "action": _("Start over"),
            }
        elif state == CheckinState.CONTACT:
            text = {
                "title": _("Are these still right?"),
                "phone": _("Phone"),
                "email": _("E-mail"),
                "ok": _("Yes, these are right"),
                "change": _("Something changed"),
                "new_phone": _("New phone"),
                "new_email": _("New e-mail"),
                "send_change": _("Send the change to the front desk"),
                "not_me": _("Not me"),
            }
        elif state == CheckinState.REASON:
            text = {
                "title": _("What is the reason for your visit today?"),
                "done": _("Done"),
                "reason": self.checkin.reason_for_visit,  # kept when back from the questions
            }
        elif state == CheckinState.QUESTIONS:
            question = self.checkin.question()
            assert question is not None
            text = {
                "title": question.text,
                "stem": question.stem,
                "progress": _("Question {number} of {total}").format(
                    number=question.number, total=question.planned),
            }
            choices = question.options
        elif state == CheckinState.INSURANCE:
            text = {
                "title": _("Has your insurance changed since your last visit?"),
                "yes": _("Yes, it changed"),
                "no": _("No, it is the same"),
            }
        elif state == CheckinState.DONE:
            body = _("Please have a seat. We will call you soon.")
            if self.checkin.contact_change is not None:
                body += " " + _("The front desk will update your details.")
            record = self.checkin.record
            if record is not None and record.insurance_changed:
                body += " " + _("The front desk will ask about your new insurance.")
            if record is not None and record.screenings_not_asked:
                body += " " + _("Some questions are not available in your language. "
                                "Staff will ask you in person.")
            text = {"title": _("You are checked in"), "body": body, "action": _("Done")}
        else:
            text = {
                "title": _("Staff"),
                "body": _("Kiosk mode is off. Return to check-in when done."),
                "action": _("Return to check-in"),
            }
        warning = ""
        if self.checkin.warning:
            seconds = int(self.checkin.seconds_until_wipe())
            warning = (
                _("Are you still there?")
                + "\n"
                + _("This screen will clear in {seconds} seconds.").format(seconds=seconds)
            )
        phone, email = self.checkin.masked_contact()
        return LobbyView(
            screen=self.screen,
            language=self.checkin.language,
            large_text=self.checkin.large_text,
            text={**common, **text},
            warning=warning,
            message=self.message,
            phone=phone or _("none on file"),
            email=email or _("none on file"),
            choices=choices,
        )


# ------------------------------------------------------------------------------------------
# Biomed
# ------------------------------------------------------------------------------------------
