"""The MA's exam-station presenter: screen taps become rooming intents, device events go to the
rooming (its one entry point), refusals become banner text."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from station.locale import N_
from station.lockout import Role
from station.models import AnyReading
from station.rooming import Rooming, lockout_message
from station.rooming_data import (
    MedicationStatus,
    Onset,
    RoomingEvent,
    RoomingRecord,
    RoomingState,
)
from station.rooming_record import record_to_submission
from station.ui.ports import AlertSink, LookupAnswer, LookupOutcome, PatientLookup, VitalsOutbox
from station.ui.presenters.base import Tone, _Base, _try
from station.ui.presenters.biomed import BiomedPresenter
from station.ui.presenters.exam_lists import STEPS, ExamLists, ListForm
from station.ui.presenters.exam_views import ExamViews, SentRooming
from station.ui.presenters.format import field_title, fmt_dob
from station.ui.presenters.keypad import (
    KeypadView,
    missing_field,
    open_pad,
    press,
    refused,
    select,
    typed_values,
)
from station.ui.presenters.patient_entry import (
    TEXT as ENTRY_TEXT,
)
from station.ui.presenters.patient_entry import (
    PatientEntry,
    birth_date,
    birth_date_in_words,
    dob_problem,
    typed,
    why_by_hand,
)
from station.workflow import RefusedError

NO_LOOKUP = N_(
    "scan read, but this station cannot reach the practice system to look it up — "
    "pick the patient from the list or enter them by hand"
)

SCREEN_OF: dict[RoomingState, str] = {
    RoomingState.SIGNED_OUT: "signin",
    RoomingState.SIGNED_IN: "patients",
    RoomingState.PATIENT_PICKED: "confirm",
    RoomingState.VITALS: "vitals",
    RoomingState.COMPLAINT: "complaint",
    RoomingState.REVIEW: "review",
    RoomingState.SENT: "review",
}


class ExamPresenter(ExamLists, ExamViews, _Base):
    """MA rooming on the exam-room station: intents here, the screens' views in ExamViews,
    the medication / allergy / point-of-care steps in ExamLists."""

    def __init__(
        self,
        rooming: Rooming,
        outbox: VitalsOutbox,
        events: AlertSink,
        *,
        biomed: BiomedPresenter | None = None,
        lookup: PatientLookup | None = None,
        language: str = "en",
    ) -> None:
        self.use_language(language)  # `[display] language`: what the MA's screens say
        self.rooming = rooming
        self.outbox = outbox
        self.events = events
        # Biomed staff reach their screen from sign-in with the biomed PIN; None: no PIN set.
        self.biomed = biomed
        self.lookup = lookup
        self._lookup_id: UUID | None = None  # the barcode lookup the MA is waiting for
        self.message = ""
        self.keypad: KeypadView | None = None
        self.sent_id: UUID | None = None
        # This sign-in's sent roomings, until the practice files them: a rejected one is shown
        # as "not filed: <reason>" with Resend (the outbox keeps the payload durably anyway).
        self.sent: dict[UUID, SentRooming] = {}
        self.taps = 0  # counted for bench/ui.py's taps-per-rooming figure
        # Streaming devices' latest readings while an episode settles: device id -> reading.
        # Shown on the tile with "measuring…"; never an entry (the captured one is).
        self.live: dict[str, AnyReading] = {}
        self._counting_down = False  # the sign-in lockout's countdown is on screen
        # The list step open over the rooming's step (medications, allergies, point-of-care)
        # and the form being filled in there: cleared at sign-out and for every new patient.
        self.step: str | None = None
        self.form: ListForm | None = None
        # The manual patient entry while it is open (the patient list's "enter by hand").
        self.entry: PatientEntry | None = None

    @property
    def screen(self) -> str:
        if self.biomed is not None and self.biomed.unlocked:
            return "biomed"
        if self.entry is not None and self.rooming.state is RoomingState.SIGNED_IN:
            return "patient_entry"
        return self._step_shown() or SCREEN_OF[self.rooming.state]

    def _tap(self) -> None:
        self.taps += 1

    # -- intents ------------------------------------------------------------------------------

    def sign_in(self, credential: str) -> bool:
        """From the badge reader (it types and presses Enter) or the PIN keypad: one path,
        one lockout. The biomed PIN opens the biomed screen instead. A wrong try counts
        against the MA keypad only; while that waits, a try can only be biomed's, so it
        counts against biomed (station.lockout)."""
        biomed = self.biomed
        if biomed is not None and biomed.biomed.matches(credential):
            biomed.unlock(credential, keypad="exam")
            self.message = ""
            return False
        if biomed is not None and self.rooming.lockout.wait_s(Role.MA):
            biomed.biomed.lockout.try_pin(Role.BIOMED, lambda: None, keypad="exam")
        # Whatever the refusal, it never says whether it was nearly a biomed PIN.
        return _try(self, lambda: self.rooming.sign_in(credential))

    def scan_barcode(self, barcode: str) -> None:
        """A wristband or appointment barcode scanned on the patient list: ask the practice
        system who it is; the answer comes to `lookup_answered`."""
        code = barcode.strip()
        if not code:
            return
        if self.rooming.is_staff_badge(code):
            # #20: a badge swiped here went to the practice system as a wristband lookup.
            self.say(self._("that is a staff badge — scan the patient's wristband"), Tone.WARNING)
            return
        if self.lookup is None:
            # No practice system to ask (`station ui`, or no broker configured): a scanner
            # that does nothing looks broken, so say what happened and what works instead.
            self.say(self._(NO_LOOKUP), Tone.WARNING)
            return
        if self.rooming.state is not RoomingState.SIGNED_IN:
            self.say(self._("scan the barcode on the patient list"), Tone.WARNING)
            return
        self._lookup_id = self.lookup.request(code)
        self.say(self._("looking up the scanned barcode…"), Tone.INFO)

    def scan_elsewhere(self) -> str:
        """A code scanned where it means nothing: say so (a silent scanner looks broken)."""
        return self._("scan read — wristbands and slips are scanned on the patient list")

    def lookup_answered(self, answer: LookupAnswer) -> None:
        """On the UI thread. Found: that patient is picked for the two-identifier check
        (never confirmed here). Not found / no answer: say so; the list still works."""
        if answer.request_id != self._lookup_id:
            return  # an older scan, or one the MA has moved on from
        self._lookup_id = None
        if self.rooming.state is not RoomingState.SIGNED_IN:
            return
        patient = answer.patient
        if answer.outcome is LookupOutcome.FOUND and patient is not None:
            if all(p.appointment_id != patient.appointment_id for p in self.rooming.schedule):
                self.rooming.set_schedule((*self.rooming.schedule, patient))
            if _try(self, lambda: self.rooming.pick_patient(patient.appointment_id)):
                self.say(
                    self._("scanned: check name and date of birth with the patient"),
                    Tone.SUCCESS,
                )
        elif answer.outcome is LookupOutcome.NOT_FOUND:
            self.say(
                self._("not found — pick from the list or ask the front desk"), Tone.WARNING
            )
        else:
            self.say(
                self._(
                    "no answer from the practice system — pick from the list or ask the front "
                    "desk"
                ),
                Tone.WARNING,
            )

    # -- manual patient entry ---------------------------------------------------------------

    def manual_entry_offered(self) -> bool:
        """Typing a patient in is offered when the list cannot be used: no schedule, or no
        link to the practice system (a list that may be stale, no barcode lookup)."""
        return not self.rooming.schedule or not self.outbox.online()

    def open_patient_entry(self) -> None:
        self._tap()
        if self.rooming.state is RoomingState.SIGNED_IN:
            self.entry = PatientEntry()
            self.say("")

    def patient_entry_typed(self, field: str, text: str) -> None:
        if self.entry is not None:
            self.entry = typed(self.entry, field, text)

    def patient_entry_view(self) -> dict[str, str]:
        """The entry screen's words: labels, the date as understood, what is wrong."""
        entry = self.entry or PatientEntry()
        return {
            **{key: self._(text) for key, text in ENTRY_TEXT.items()},
            "why": why_by_hand(not self.rooming.schedule, self.outbox.online(), self._),
            "dob_shown": birth_date_in_words(entry, self._),
            "problem": self.said(entry.problem),
        }

    def cancel_patient_entry(self) -> None:
        self._tap()
        self.entry = None

    def submit_patient_entry(self) -> None:
        """The typed identifiers open the two-identifier confirmation, as a pick does; what
        is wrong is said on the entry screen and nothing is opened."""
        self._tap()
        entry = self.entry
        if entry is None:
            return
        born = birth_date(entry)
        if born is None:
            self.entry = replace(entry, problem=dob_problem(entry))
            return
        try:
            self.rooming.enter_patient(entry.family, entry.given, born, entry.mrn)
        except RefusedError as exc:
            self.entry = replace(entry, problem="; ".join(exc.details) or exc.message)
            return
        self.entry = None
        self.say("")

    def sign_out(self) -> None:
        self._tap()
        self.keypad = None
        self._close_step()
        self.entry = None  # nothing typed about a patient outlives the sign-in
        _try(self, self.rooming.sign_out)

    def pick(self, appointment_id: str) -> None:
        self._tap()
        _try(self, lambda: self.rooming.pick_patient(appointment_id))

    def confirm(self) -> None:
        self._tap()
        self._close_step()
        _try(self, self.rooming.confirm_identifiers)

    def not_this_patient(self) -> None:
        self._tap()
        _try(self, self.rooming.not_this_patient)

    def discard_parked(self) -> None:
        self._tap()
        _try(self, self.rooming.discard_parked)

    def go(self, screen: str) -> None:
        self._tap()
        if screen in STEPS:
            self.open_step(screen)
            return
        over = self._step_shown()
        self._close_step()
        if over is not None and SCREEN_OF[self.rooming.state] == screen:
            self.say("")  # back to the step the list lay over
            return
        event = {
            "vitals": RoomingEvent.TO_VITALS,
            "complaint": RoomingEvent.TO_COMPLAINT,
            "review": RoomingEvent.TO_REVIEW,
        }[screen]
        _try(self, lambda: self.rooming.go(event))

    def offer(
        self, device_id: str, reading: AnyReading, received_at: datetime | None = None
    ) -> None:
        """On the UI thread (links hand readings over to it): the rooming's one entry point,
        where the wrong-patient guard judges it. `received_at`: when the link handed it over."""
        self.rooming.offer(device_id, reading, received_at)

    def device_reading(self, reading: AnyReading, device_id: str) -> None:
        """A reading arriving now (the simulated devices of `station ui`, the UI tests)."""
        self.offer(device_id, reading)

    def device_live(self, device_id: str, reading: AnyReading | None, measuring: bool) -> None:
        """On the UI thread: a streaming device's live value (None: the episode ended).

        Only a settling episode's value is shown (`measuring`); once captured, the tile shows
        the captured entry, like any device reading.
        """
        if reading is None or not measuring:
            self.live.pop(device_id, None)
        else:
            self.live[device_id] = reading

    def device_connected(self, device_id: str, at: datetime | None = None) -> None:
        self.rooming.device_connected(device_id, at)

    def device_clock_set(self, device_id: str, at: datetime | None = None) -> None:
        self.rooming.device_clock_set(device_id, at)

    def device_disconnected(self, device_id: str, at: datetime | None = None) -> None:
        self.rooming.device_disconnected(device_id, at)

    def accept_tray(self, item_id: int) -> None:
        self._tap()
        _try(self, lambda: self.rooming.accept_tray(item_id))

    def discard_tray(self, item_id: int) -> None:
        self._tap()
        _try(self, lambda: self.rooming.discard_tray(item_id))

    def acknowledge(self, entry_id: int) -> None:
        self._tap()
        if _try(self, lambda: self.rooming.acknowledge_critical(entry_id)):
            for alert in self.rooming.take_alerts():
                self.events.alert(alert)

    def toggle_complaint(self, pick: str) -> None:
        self._tap()
        _try(self, lambda: self.rooming.toggle_complaint(pick))

    def set_free_text(self, text: str) -> None:
        _try(self, lambda: self.rooming.set_complaint(free_text=text))

    def set_onset(self, onset: Onset) -> None:
        self._tap()
        _try(self, lambda: self.rooming.set_complaint(onset=onset))

    def set_medication(self, index: int, status: MedicationStatus) -> None:
        self._tap()
        _try(self, lambda: self.rooming.set_medication_status(index, status))

    def send(self) -> None:
        self._tap()
        patient = self.rooming.patient

        def store(record: RoomingRecord) -> None:
            # Stored before the rooming closes: a failing outbox leaves it open to send again.
            assert patient is not None
            submission = record_to_submission(record, patient)
            self.sent_id = self.outbox.submit(submission)
            self.sent[self.sent_id] = SentRooming(
                self.sent_id, submission, f"{patient.display_name} · {fmt_dob(patient.birth_date)}"
            )

        def action() -> None:
            self.rooming.send(store)
            assert self.sent_id is not None
            self.rooming.submission_saved(self.sent_id)

        _try(self, action)

    def resend(self, message_id: UUID) -> None:
        """A rooming the practice system rejected goes again as a new submission (a new
        message id); the rejected one stays in the outbox's record with its reason."""
        self._tap()
        old = self.sent.pop(message_id, None)
        if old is None:
            return
        new_id = self.outbox.submit(old.submission)
        self.sent[new_id] = SentRooming(new_id, old.submission, old.patient)
        if self.sent_id == message_id:
            self.sent_id = new_id
        self.say(self._("sent again: {patient}").format(patient=old.patient), Tone.INFO)

    def next_patient(self) -> None:
        self._tap()
        self.sent_id = None
        _try(self, self.rooming.next_patient)

    def tick(self) -> bool:
        """The inactivity timer and the guard's burst windows; True when it signed out."""
        if self.biomed is not None and self.biomed.unlocked:
            self.biomed.tick()
        out = self.rooming.tick()
        if out:
            self.keypad = None
            self._close_step()
            self.entry = None  # nothing typed about a patient outlives the sign-in
            self.say(self._("signed out after inactivity"), Tone.INFO)
        elif self.rooming.state is RoomingState.SIGNED_OUT:
            # The lockout's countdown, refreshed every tick; cleared once the keypad is free.
            wait = self.rooming.lockout.wait_s(Role.MA)
            if wait:
                self.say(self.said(lockout_message(wait)), Tone.WARNING)
                self._counting_down = True
            elif self._counting_down:
                self._counting_down = False
                self.say("")
        return out

    # -- the keypad ---------------------------------------------------------------------------

    def open_keypad(self, tile_key: str) -> None:
        self._tap()
        pad = open_pad(tile_key, self.display, self._)
        if isinstance(pad, str):
            self.message = pad
        else:
            self.keypad = pad

    def keypad_key(self, key: str) -> None:
        if self.keypad is not None:
            self._tap()
            self.keypad = press(self.keypad, key)

    def keypad_select(self, index: int) -> None:
        if self.keypad is not None:
            self.keypad = select(self.keypad, index)

    def keypad_cancel(self) -> None:
        self._tap()
        self.keypad = None
        self.message = ""

    def keypad_ok(self) -> None:
        """Attach the typed values; anything wrong is said on the pad itself, with the
        field's label (never the internal name), and the pad stays open."""
        self._tap()
        pad = self.keypad
        if pad is None or pad.kind is None:
            return
        kind, shown = pad.kind, typed_values(pad, self._)
        if isinstance(shown, str):
            self.keypad = refused(pad, shown)
            return
        missing = missing_field(pad)
        if missing is not None:
            field = field_title(missing, kind, self._)
            self.keypad = refused(pad, self._("{field}: type a value").format(field=field), missing)
            return
        try:
            self.rooming.enter_manual(kind, shown)
        except RefusedError as exc:
            why = self.said("; ".join(exc.details) or exc.message)
            said = self._("{name} not accepted: {why}").format(name=pad.name, why=why)
            self.keypad = refused(pad, said)
            return
        self.say("")
        self.keypad = None
