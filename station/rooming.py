"""MA rooming as a state machine: sign in, pick and confirm the patient, vitals, complaint, send.

Pure and sans-I/O: the transition table (station.rooming_data) is the whole workflow; every intent
is checked against it and illegal ones raise `IllegalTransitionError`. Intents the table allows but
patient safety forbids (sending without confirmed identifiers, accepting a tray reading to
nobody, an unacknowledged critical value...) raise `RefusedError` with a `Refusal` reason and
change nothing. Time comes from the clock passed in; nothing here sleeps or reads the wall clock.

The class is built in layers: `RoomingBase` (session, guard, tray, transition step),
`RoomingReadings` (device offers, typed values, tray, critical values), `RoomingLists`
(medications, allergies, point-of-care results) and `Rooming` (sign-in, patient, navigation,
complaint, send).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Literal
from uuid import UUID

from station.audit import UNKNOWN, AuditAction
from station.locale import N_
from station.lockout import Role
from station.names import clean_name, same_name_key
from station.rooming_base import _Session
from station.rooming_data import (
    COMMON_COMPLAINTS,
    COMPLAINT_MAX_CHARS,
    CONFIRMED_STATES,
    TRANSITIONS,
    Complaint,
    Onset,
    Refusal,
    RoomingEvent,
    RoomingRecord,
    RoomingState,
    ScheduledPatient,
)
from station.rooming_lists import RoomingLists
from station.submission import IDENTIFIER, Identification
from station.workflow import (
    IllegalTransitionError,
    RefusedError,
    check_allowed,
)

S, E = RoomingState, RoomingEvent
SAME_NAME_NOTE = N_("another patient on today's list has this name: check the MRN")
NAME_MAX_CHARS = 100  # station.submission.PatientIdentifiers
OLDEST_AGE_YEARS = 130  # an older date of birth is a typing slip


class Rooming(RoomingLists):
    """One exam-room station's MA workflow. Every intent stamps activity with the clock.

    The one owner of the rooming session, the wrong-patient guard's session (opened with a
    fresh token at each confirmation of identifiers, closed on leaving the confirmed states)
    and the unassigned tray. Every device reading of every mode enters through `offer`, on the
    one thread that drains the links' events; nothing here is shared with a link thread.
    """

    # -- sign in / out ----------------------------------------------------------------------

    def sign_in(self, credential: str) -> None:
        """The keypad's PIN or the badge reader's line: both go through the lockout (a badge
        reader is a keyboard, so a keystroke injector is just a fast typist)."""
        check_allowed(TRANSITIONS, self.state, E.SIGN_IN)
        wait = self.lockout.wait_s(Role.MA)
        if wait:
            raise RefusedError(Refusal.LOCKED_OUT, lockout_message(wait))
        typed = credential.strip()
        ma_id = self.lockout.try_pin(Role.MA, lambda: self._match_ma(typed), keypad="exam")
        if ma_id is None:
            wait = self.lockout.wait_s(Role.MA)
            if wait:
                raise RefusedError(Refusal.LOCKED_OUT, lockout_message(wait))
            raise RefusedError(Refusal.UNKNOWN_CREDENTIAL, N_("badge or PIN not recognised"))
        self._touch()
        self._fire(E.SIGN_IN)
        self.ma_id = ma_id
        self._audit(AuditAction.MA_SIGN_IN, with_patient=False)
        if self._session is not None:
            # A rooming parked by a sign-out: keep its readings, confirm the patient again.
            self._fire(E.RESUME_PARKED)

    def is_staff_badge(self, code: str) -> bool:
        """A scanned code that signs an MA in here: a badge, never a wristband. Asked only
        while an MA is signed in (the list's scanner), so it is no way to guess one; not
        counted against the lockout, and never sent anywhere."""
        if self.state is S.SIGNED_OUT:
            return False
        return self._match_ma(code.strip()) is not None

    def sign_out(self, *, auto: bool = False) -> None:
        self._fire(E.SIGN_OUT)
        self._audit(AuditAction.MA_AUTO_SIGN_OUT if auto else AuditAction.MA_SIGN_OUT)
        self.ma_id = None
        self.live_cuff_mmhg = None
        if self._session is not None and self._session.confirmed_at is not None:
            self._session.confirmed_at = None  # whoever signs in next confirms again
        if self._session is not None and not self._session.entries and not self._tray:
            self._session = None  # nothing taken yet: nothing worth parking

    def idle_seconds(self) -> float:
        return (self._clock() - self._last_activity).total_seconds()

    def tick(self) -> bool:
        """Called by a timer: releases the guard's closed connect-burst windows, then signs out
        after inactivity. True when it signed out."""
        self._place(self.guard.flush())
        if self.state == S.SIGNED_OUT or self.idle_seconds() < self.idle_signout_s:
            return False
        self.sign_out(auto=True)
        return True

    # -- patient ----------------------------------------------------------------------------

    def set_schedule(self, patients: tuple[ScheduledPatient, ...]) -> None:
        """A new retained `schedule` message; not an MA action, so no activity stamp. Two
        patients whose names look alike are each marked: the MRN decides."""
        keys = Counter(same_name_key(p.family_name, p.given_name) for p in patients)
        marked = tuple(
            p.model_copy(update={"identity_notes": (*p.identity_notes, SAME_NAME_NOTE)})
            if keys[same_name_key(p.family_name, p.given_name)] > 1
            else p
            for p in patients
        )
        self.schedule = tuple(sorted(marked, key=lambda p: (p.start_time, p.family_name)))

    def pick_patient(self, appointment_id: str) -> ScheduledPatient:
        check_allowed(TRANSITIONS, self.state, E.PICK_PATIENT)
        patient = next((p for p in self.schedule if p.appointment_id == appointment_id), None)
        if patient is None:
            raise RefusedError(
                Refusal.NOT_ON_SCHEDULE, N_("that appointment is not on today's list")
            )
        parked = self._session
        if parked is not None and parked.patient.appointment_id != appointment_id:
            raise RefusedError(
                Refusal.PARKED_ROOMING,
                N_("an unsent rooming of another patient is open: finish it or discard it first"),
            )
        now = self._touch()
        self._fire(E.PICK_PATIENT)
        if parked is None:
            self._session = _Session(patient, now)
        self._audit(AuditAction.PATIENT_OPENED, at=now)
        return patient

    def enter_patient(
        self, family_name: str, given_name: str, birth_date: date, mrn: str = ""
    ) -> ScheduledPatient:
        """A patient the MA identifies by hand because they are not on today's list or the
        station is offline: name, date of birth and the MRN when known. It opens the same
        two-identifier confirmation as a pick (never confirmed here); the record says
        `identification: manual` and carries a visit id of the station's own, so the practice
        matches it to the chart. A patient who is on the list is picked there instead."""
        check_allowed(TRANSITIONS, self.state, E.ENTER_PATIENT)
        family, given = clean_name(family_name), clean_name(given_name)
        chart = mrn.strip()
        today = self._clock().date()
        too_long = N_("at most {count} characters").format(count=NAME_MAX_CHARS)
        problems = [
            f"{label}: " + N_("type it") if not name.text
            else f"{label}: {too_long}" if len(name.text) > NAME_MAX_CHARS
            else ""
            for label, name in ((N_("last name"), family), (N_("first name"), given))
        ]
        if birth_date > today:
            problems.append(N_("date of birth") + ": " + N_("it is after today"))
        elif today.year - birth_date.year > OLDEST_AGE_YEARS:
            problems.append(
                N_("date of birth") + ": "
                + N_("more than {years} years ago").format(years=OLDEST_AGE_YEARS)
            )
        if chart and not re.match(IDENTIFIER, chart):
            problems.append(N_("MRN: letters, digits, '-', '.', '_' or ':' only, no spaces"))
        problems = [p for p in problems if p]
        if problems:
            raise RefusedError(
                Refusal.INVALID_ENTRY, N_("patient not entered"), tuple(problems)
            )
        key = same_name_key(family.text, given.text)
        listed = next(
            (p for p in self.schedule
             if same_name_key(p.family_name, p.given_name) == key and p.birth_date == birth_date),
            None,
        )  # fmt: skip
        if listed is not None:
            raise RefusedError(
                Refusal.ON_SCHEDULE,
                N_("{patient} is on today's list: pick them there").format(
                    patient=listed.display_name
                ),
            )
        if self._session is not None:
            raise RefusedError(
                Refusal.PARKED_ROOMING,
                "an unsent rooming of another patient is open: finish it or discard it first",
            )
        now = self._touch()
        self._manual_entries += 1
        patient = ScheduledPatient(
            appointment_id=f"MANUAL-{now:%Y%m%d%H%M%S}-{self._manual_entries}",
            mrn=chart or None,
            family_name=family.text,
            given_name=given.text,
            birth_date=birth_date,
            identity_notes=(*family.notes, *given.notes),
            identification=Identification.MANUAL,
        )
        self._fire(E.ENTER_PATIENT)
        self._session = _Session(patient, now)
        self._audit(AuditAction.PATIENT_OPENED, at=now, detail="entered by hand")
        return patient

    @property
    def parked(self) -> ScheduledPatient | None:
        """The patient of an unsent rooming kept across a sign-out, while on the list."""
        return self._session.patient if self._session and self.state == S.SIGNED_IN else None

    def discard_parked(self) -> None:
        """The MA's deliberate choice to drop an unsent rooming (its readings are lost)."""
        if self.state != S.SIGNED_IN or self._session is None:
            raise RefusedError(Refusal.UNKNOWN_ITEM, N_("no unsent rooming to discard"))
        self._touch()
        self._session = None

    @property
    def patient(self) -> ScheduledPatient | None:
        return self._session.patient if self._session else None

    def confirm_identifiers(self) -> None:
        if self._session is None:
            raise IllegalTransitionError(self.state, E.CONFIRM_IDENTIFIERS, TRANSITIONS)
        now = self._touch()
        self._fire(E.CONFIRM_IDENTIFIERS)
        self._session.confirmed_at = now
        self._audit(AuditAction.IDENTIFIERS_CONFIRMED, at=now)

    def not_this_patient(self) -> None:
        """The person in the room is not the one on screen: back to the list, nothing kept."""
        self._touch()
        self._fire(E.NOT_THIS_PATIENT)
        if self._session is not None and not self._session.entries:
            self._session = None

    # -- navigation -------------------------------------------------------------------------

    def go(self, event: RoomingEvent) -> None:
        if event not in (E.TO_VITALS, E.TO_COMPLAINT, E.TO_REVIEW):
            raise ValueError(f"go() is for navigation, not {event.value}")
        self._touch()
        self._fire(event)

    # -- complaint and medications -------------------------------------------------------------

    @property
    def complaint(self) -> Complaint:
        return self._session.complaint if self._session else Complaint()

    def set_complaint(
        self,
        *,
        picks: tuple[str, ...] | None = None,
        free_text: str | None = None,
        onset: Onset | None = None,
        reason_for_visit: str | None = None,
    ) -> Complaint:
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot record a complaint"))
        for label, text in (
            (N_("complaint"), free_text), (N_("reason for visit"), reason_for_visit)
        ):
            if text is not None and len(text) > COMPLAINT_MAX_CHARS:
                raise RefusedError(
                    Refusal.TEXT_TOO_LONG,
                    N_("{label} is {count} characters: at most {most}").format(
                        label=label, count=len(text), most=COMPLAINT_MAX_CHARS
                    ),
                )
        unknown = [p for p in picks or () if p not in COMMON_COMPLAINTS]
        if unknown:
            raise RefusedError(
                Refusal.INVALID_ENTRY, N_("not on the pick list (use free text)"), tuple(unknown)
            )
        self._touch()
        update: dict[str, object] = {}
        if picks is not None:
            update["picks"] = tuple(dict.fromkeys(picks))
        if free_text is not None:
            update["free_text"] = free_text.strip()
        if onset is not None:
            update["onset"] = onset
        if reason_for_visit is not None:
            update["reason_for_visit"] = reason_for_visit.strip()
        session.complaint = session.complaint.model_copy(update=update)
        return session.complaint

    def toggle_complaint(self, pick: str) -> Complaint:
        current = self.complaint.picks
        picks = tuple(p for p in current if p != pick) if pick in current else (*current, pick)
        return self.set_complaint(picks=picks)

    # -- send -------------------------------------------------------------------------------

    def send_refusals(self) -> tuple[tuple[Refusal, str], ...]:
        """Why Send would be refused right now (the review screen shows these)."""
        if self._session is None or self.state not in CONFIRMED_STATES:
            return ((Refusal.IDENTIFIERS_NOT_CONFIRMED, N_("confirm name and date of birth")),)
        out: list[tuple[Refusal, str]] = []
        if self.unacknowledged_critical():
            out.append(
                (Refusal.CRITICAL_NOT_ACKNOWLEDGED, N_("acknowledge every critical value first"))
            )
        if not any(e.verdict.accepted for e in self._session.entries) and (
            self._session.complaint.empty and not self._session.poc
        ):
            out.append((Refusal.NOTHING_TO_SEND, N_("no vitals and no complaint recorded")))
        return (*out, *self.list_refusals())

    def send(self, store: Callable[[RoomingRecord], object] | None = None) -> RoomingRecord:
        """The rooming as a record, and the session closed. `store` (the durable outbox) gets
        the record first: if it raises, nothing here has changed and the MA can send again
        (a full disk must not lose a rooming)."""
        refusals = self.send_refusals()
        if refusals:
            reason, message = refusals[0]
            raise RefusedError(reason, message, tuple(m for _, m in refusals[1:]))
        assert self._session is not None and self._session.confirmed_at is not None
        assert self.ma_id is not None
        check_allowed(TRANSITIONS, self.state, E.SEND)
        now = self._touch()
        session = self._session
        record = RoomingRecord(
            appointment_id=session.patient.appointment_id,
            mrn=session.patient.mrn,
            ma_id=self.ma_id,
            started_at=session.started_at,
            confirmed_at=session.confirmed_at,
            sent_at=now,
            entries=tuple(session.entries),
            bmi_kg_m2=self.bmi_kg_m2(),
            complaint=session.complaint,
            medications=tuple(session.medications),
            no_medications=session.no_medications,
            allergies=tuple(session.allergies),
            no_known_allergies=session.no_known_allergies,
            poc_results=tuple(session.poc),
        )
        if store is not None:
            store(record)
        self._fire(E.SEND)
        self.last_record = record
        self._session = None  # sent: the patient's data leaves the station's memory
        self.schedule = tuple(p for p in self.schedule if p.appointment_id != record.appointment_id)
        return record

    def submission_saved(self, message_id: UUID) -> None:
        """The sent record is in the durable outbox under `message_id` (the composition root
        calls this once `submit` returned)."""
        record = self.last_record
        self.audit.record(
            self._clock(),
            self.ma_id or UNKNOWN,
            AuditAction.SUBMISSION_SAVED,
            appointment_id=record.appointment_id if record else None,
            mrn=record.mrn if record else None,
            related_message_id=message_id,
        )

    def next_patient(self) -> None:
        self._touch()
        self._fire(E.NEXT_PATIENT)
        self.last_record = None


def lockout_message(wait_s: int) -> str:
    """What the sign-in screen says while the keypad waits (the presenter refreshes it every
    second, so it counts down)."""
    return N_("too many wrong tries") + f": try again in {wait_s} s"


def refusal_kind(exc: RefusedError) -> Literal["safety", "input"]:
    """For the screen: safety refusals are shown as a red banner, input ones beside the field."""
    safety = {
        Refusal.IDENTIFIERS_NOT_CONFIRMED,
        Refusal.NO_PATIENT,
        Refusal.CRITICAL_NOT_ACKNOWLEDGED,
    }
    return "safety" if exc.reason in safety else "input"
