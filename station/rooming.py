"""MA rooming as a state machine: sign in, pick and confirm the patient, vitals, complaint, send.

Pure and sans-I/O (after h11): the transition table below is the whole workflow; every intent
is checked against it and illegal ones raise `IllegalTransitionError`. Intents the table allows but
patient safety forbids (sending without confirmed identifiers, accepting a tray reading to
nobody, an unacknowledged critical value...) raise `RefusedError` with a `Refusal` reason and
change nothing. Time comes from the clock passed in; nothing here sleeps or reads the wall clock.
"""


from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal

from station.config import DisplaySection, GuardSection
from station.guard import Attached, Live, Unassigned, WrongPatientGuard
from station.manual_entry import MANUAL_CODEC, manual_reading
from station.models import AnyReading, Kind, Mode
from station.rooming_data import (
    COMMON_COMPLAINTS,
    COMPLAINT_MAX_CHARS,
    CONFIRMED_STATES,
    TRANSITIONS,
    AlertRequest,
    Complaint,
    EntrySource,
    MedicationReview,
    MedicationStatus,
    Onset,
    Refusal,
    RoomingEvent,
    RoomingRecord,
    RoomingState,
    ScheduledPatient,
    TrayItem,
    VitalEntry,
)
from station.units import bmi_kg_m2
from station.validation import DeviceRanges, validate, with_plausibility_flag
from station.workflow import (
    Clock,
    IllegalTransitionError,
    RefusedError,
    check_allowed,
    next_state,
)

S, E = RoomingState, RoomingEvent


class _Session:
    """The open rooming of one patient (mutable inside the machine, never handed out)."""

    def __init__(self, patient: ScheduledPatient, started_at: datetime) -> None:
        self.patient = patient
        self.started_at = started_at
        self.confirmed_at: datetime | None = None
        self.entries: list[VitalEntry] = []
        self.complaint = Complaint(reason_for_visit=patient.reason_for_visit)
        self.medications = [MedicationReview(medication=m) for m in patient.medications]


class Rooming:
    """One exam-room station's MA workflow. Every intent stamps activity with the clock.

    The one owner of the rooming session, the wrong-patient guard's session (opened with a
    fresh token at each confirmation of identifiers, closed on leaving the confirmed states)
    and the unassigned tray. Every device reading of every mode enters through `offer`, on the
    one thread that drains the links' events; nothing here is shared with a link thread.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        credentials: Mapping[str, str],
        display: DisplaySection | None = None,
        idle_signout_s: float = 300.0,
        mode: Mode = Mode.REAL,
        bound_devices: Iterable[str] = (),
        guard_policy: GuardSection | None = None,
        device_ranges: Mapping[str, DeviceRanges] | None = None,
    ) -> None:
        # credentials: badge id or PIN -> MA id. The MA id goes into the record, never a log.
        self._clock = clock
        self.guard = WrongPatientGuard(clock, bound_devices, guard_policy)
        self._confirmations = 0
        # Bound device id -> its manufacturer's stated measuring ranges (firmware profile).
        self._device_ranges: dict[str, DeviceRanges] = dict(device_ranges or {})
        self._credentials = dict(credentials)
        self.display = display or DisplaySection()
        self.idle_signout_s = idle_signout_s
        self.mode = mode
        self.state = RoomingState.SIGNED_OUT
        self.ma_id: str | None = None
        self.schedule: tuple[ScheduledPatient, ...] = ()
        self._session: _Session | None = None
        self._tray: list[TrayItem] = []
        self._alerts: list[AlertRequest] = []
        self._ids = itertools.count(1)
        self._last_activity = clock()
        self.live_cuff_mmhg: float | None = None
        self.last_record: RoomingRecord | None = None

    # -- plumbing -------------------------------------------------------------------------

    def _fire(self, event: RoomingEvent) -> None:
        target = next_state(TRANSITIONS, self.state, event)
        was_confirmed = self.state in CONFIRMED_STATES
        self.state = target
        # The guard's session is exactly the confirmed rooming: a fresh token at each
        # confirmation (re-confirming the same appointment is a new session), closed on leaving.
        if target in CONFIRMED_STATES and not was_confirmed:
            assert self._session is not None
            self._confirmations += 1
            self.guard.open_session(f"{self._session.patient.appointment_id}#{self._confirmations}")
        elif target not in CONFIRMED_STATES and was_confirmed:
            self.guard.close_session()

    def now(self) -> datetime:
        return self._clock()

    def _touch(self) -> datetime:
        now = self._clock()
        self._last_activity = now
        return now

    def _confirmed_session(self, refusal: Refusal, what: str) -> _Session:
        if self._session is None:
            raise RefusedError(refusal, f"{what}: no patient is open on this station")
        if self.state not in CONFIRMED_STATES:
            raise RefusedError(
                Refusal.IDENTIFIERS_NOT_CONFIRMED,
                f"{what}: confirm the patient's name and date of birth first",
            )
        return self._session

    # -- sign in / out ----------------------------------------------------------------------

    def sign_in(self, credential: str) -> None:
        check_allowed(TRANSITIONS, self.state, E.SIGN_IN)
        ma_id = self._credentials.get(credential.strip())
        if ma_id is None:
            raise RefusedError(Refusal.UNKNOWN_CREDENTIAL, "badge or PIN not recognised")
        self._touch()
        self._fire(E.SIGN_IN)
        self.ma_id = ma_id
        if self._session is not None:
            # A rooming parked by a sign-out: keep its readings, confirm the patient again.
            self._fire(E.RESUME_PARKED)

    def sign_out(self) -> None:
        self._fire(E.SIGN_OUT)
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
        self.sign_out()
        return True

    # -- patient ----------------------------------------------------------------------------

    def set_schedule(self, patients: tuple[ScheduledPatient, ...]) -> None:
        """A new retained `schedule` message; not an MA action, so no activity stamp."""
        self.schedule = tuple(sorted(patients, key=lambda p: (p.start_time, p.family_name)))

    def pick_patient(self, appointment_id: str) -> ScheduledPatient:
        check_allowed(TRANSITIONS, self.state, E.PICK_PATIENT)
        patient = next((p for p in self.schedule if p.appointment_id == appointment_id), None)
        if patient is None:
            raise RefusedError(Refusal.NOT_ON_SCHEDULE, "that appointment is not on today's list")
        parked = self._session
        if parked is not None and parked.patient.appointment_id != appointment_id:
            raise RefusedError(
                Refusal.PARKED_ROOMING,
                "an unsent rooming of another patient is open: finish it or discard it first",
            )
        now = self._touch()
        self._fire(E.PICK_PATIENT)
        if parked is None:
            self._session = _Session(patient, now)
        return patient

    @property
    def parked(self) -> ScheduledPatient | None:
        """The patient of an unsent rooming kept across a sign-out, while on the list."""
        return self._session.patient if self._session and self.state == S.SIGNED_IN else None

    def discard_parked(self) -> None:
        """The MA's deliberate choice to drop an unsent rooming (its readings are lost)."""
        if self.state != S.SIGNED_IN or self._session is None:
            raise RefusedError(Refusal.UNKNOWN_ITEM, "no unsent rooming to discard")
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

    # -- readings ---------------------------------------------------------------------------

    def _age(self, session: _Session) -> float:
        return session.patient.age_years(self._clock().date())

    def set_bound_devices(
        self, device_ids: Iterable[str], ranges: Mapping[str, DeviceRanges] | None = None
    ) -> None:
        """The devices biomed bound to this station (readings from any other are ignored) and
        their profiles' measuring ranges (a value outside them is not a measurement)."""
        self.guard.set_bound(device_ids)
        self._device_ranges = dict(ranges or {})

    def device_connected(self, device_id: str, at: datetime | None = None) -> None:
        """A device that dumps stored readings (re)connected: its burst window opens."""
        self.guard.device_connected(device_id, at)

    def offer(
        self, device_id: str, reading: AnyReading, received_at: datetime | None = None
    ) -> list[VitalEntry | TrayItem]:
        """A reading from a device link, judged by the guard. Not an MA action: no activity
        stamp. `received_at` is when the link handed it over (default: now).

        What the guard doubts (stored, older than the session, arrived before it, burst at
        connect, no patient confirmed...) goes to the tray with its reasons; live cuff pressure
        only moves the gauge; an unbound device's reading never enters. Returns what was placed
        (a held burst reading is placed later, by `tick`).
        """
        return self._place(self.guard.offer(device_id, reading, received_at))

    def _place(self, outcomes: Iterable[object]) -> list[VitalEntry | TrayItem]:
        placed: list[VitalEntry | TrayItem] = []
        for outcome in outcomes:
            if isinstance(outcome, Live):
                self.live_cuff_mmhg = getattr(outcome.reading, "cuff_pressure_mmhg", None)
            elif isinstance(outcome, Attached):
                if outcome.reading.kind == Kind.BLOOD_PRESSURE:
                    self.live_cuff_mmhg = None
                assert self._session is not None and self.state in CONFIRMED_STATES
                placed.append(
                    self._attach(
                        self._session,
                        reading=outcome.reading,
                        device=outcome.device_id,
                        source=EntrySource.DEVICE,
                        now=outcome.received_at,
                    )
                )
            elif isinstance(outcome, Unassigned):
                if outcome.reading.kind == Kind.BLOOD_PRESSURE:
                    self.live_cuff_mmhg = None
                item = TrayItem(
                    item_id=next(self._ids),
                    reading=outcome.reading,
                    device=outcome.device_id,
                    reason=outcome.describe(),
                    received_at=outcome.received_at,
                    reasons=outcome.reasons,
                )
                self._tray.append(item)
                placed.append(item)
        return placed

    def _attach(
        self,
        session: _Session,
        *,
        reading: AnyReading,
        device: str,
        source: EntrySource,
        now: datetime,
        tray_reason: str = "",
    ) -> VitalEntry:
        checked = with_plausibility_flag(reading)
        ranges = None if source is EntrySource.MANUAL else self._device_ranges.get(device)
        entry = VitalEntry(
            entry_id=next(self._ids),
            reading=checked,
            verdict=validate(checked, age_years=self._age(session), device_ranges=ranges),
            source=source,
            device=device,
            received_at=now,
            tray_reason=tray_reason,
        )
        session.entries.append(entry)  # a retake adds; the earlier reading stays
        return entry

    def enter_manual(self, kind: Kind, shown: Mapping[str, float]) -> VitalEntry:
        """Values typed on the keypad in display units; validated exactly like a device's."""
        session = self._confirmed_session(Refusal.NO_PATIENT, "cannot enter a value")
        now = self._touch()
        reading = with_plausibility_flag(manual_reading(kind, shown, self.display, self.mode))
        verdict = validate(reading, age_years=self._age(session))
        if not verdict.accepted:
            # A typo is not a measurement: nothing is attached, the MA types it again.
            raise RefusedError(Refusal.INVALID_ENTRY, f"{kind.value} not accepted", verdict.reasons)
        return self._attach(
            session, reading=reading, device=MANUAL_CODEC, source=EntrySource.MANUAL, now=now
        )

    @property
    def entries(self) -> tuple[VitalEntry, ...]:
        return tuple(self._session.entries) if self._session else ()

    def latest(self, kind: Kind) -> VitalEntry | None:
        """The newest accepted reading of a kind (what its tile shows), else the newest."""
        of_kind = [e for e in self.entries if e.kind == kind]
        accepted = [e for e in of_kind if e.verdict.accepted]
        pool = accepted or of_kind
        return pool[-1] if pool else None

    def bmi_kg_m2(self) -> float | None:
        """From the newest accepted weight and height (the scale's, else the typed one)."""
        weight = self.latest(Kind.BODY_WEIGHT)
        height = self.latest(Kind.BODY_HEIGHT)
        height_cm: float | None = None
        if height is not None and height.verdict.accepted:
            height_cm = getattr(height.reading, "height_cm", None)
        if weight is None or not weight.verdict.accepted:
            return None
        weight_kg = getattr(weight.reading, "weight_kg", None)
        height_cm = height_cm or getattr(weight.reading, "height_cm", None)
        if weight_kg is None or not height_cm:
            return None
        return bmi_kg_m2(weight_kg, height_cm)

    # -- critical values ----------------------------------------------------------------------

    def unacknowledged_critical(self) -> tuple[VitalEntry, ...]:
        return tuple(
            e
            for e in self.entries
            if e.verdict.accepted and e.verdict.critical and not e.acknowledged
        )

    def acknowledge_critical(self, entry_id: int) -> AlertRequest:
        session = self._confirmed_session(Refusal.NO_PATIENT, "cannot acknowledge")
        now = self._touch()
        index = next((i for i, e in enumerate(session.entries) if e.entry_id == entry_id), None)
        if index is None:
            raise RefusedError(Refusal.UNKNOWN_ITEM, f"no reading {entry_id} for this patient")
        entry = session.entries[index]
        critical = [f for f in entry.verdict.flags if f.severity == "critical"]
        if not critical or not entry.verdict.accepted:
            raise RefusedError(Refusal.NOT_CRITICAL, f"reading {entry_id} is not critical")
        session.entries[index] = entry.model_copy(
            update={"acknowledged": True, "acknowledged_at": now}
        )
        assert self.ma_id is not None
        alert = AlertRequest(
            appointment_id=session.patient.appointment_id,
            code=critical[0].code,
            message=critical[0].message,
            entry_id=entry_id,
            acknowledged_by=self.ma_id,
            acknowledged_at=now,
        )
        self._alerts.append(alert)
        return alert

    def take_alerts(self) -> tuple[AlertRequest, ...]:
        """Alerts to publish, each handed out once."""
        alerts, self._alerts = tuple(self._alerts), []
        return alerts

    # -- the unassigned tray -----------------------------------------------------------------

    @property
    def tray(self) -> tuple[TrayItem, ...]:
        return tuple(self._tray)

    def _tray_index(self, item_id: int) -> int:
        for i, item in enumerate(self._tray):
            if item.item_id == item_id:
                return i
        raise RefusedError(Refusal.UNKNOWN_ITEM, f"no tray item {item_id}")

    def accept_tray(self, item_id: int) -> VitalEntry:
        """The MA's deliberate choice: this held-back reading is this patient's."""
        index = self._tray_index(item_id)
        session = self._confirmed_session(Refusal.NO_PATIENT, "cannot accept a tray reading")
        now = self._touch()
        item = self._tray.pop(index)
        return self._attach(
            session,
            reading=item.reading,
            device=item.device,
            source=EntrySource.TRAY,
            now=now,
            tray_reason=item.reason,
        )

    def discard_tray(self, item_id: int) -> None:
        index = self._tray_index(item_id)
        self._touch()
        del self._tray[index]

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
        session = self._confirmed_session(Refusal.NO_PATIENT, "cannot record a complaint")
        for label, text in (("complaint", free_text), ("reason for visit", reason_for_visit)):
            if text is not None and len(text) > COMPLAINT_MAX_CHARS:
                raise RefusedError(
                    Refusal.TEXT_TOO_LONG,
                    f"{label} is {len(text)} characters: at most {COMPLAINT_MAX_CHARS}",
                )
        unknown = [p for p in picks or () if p not in COMMON_COMPLAINTS]
        if unknown:
            raise RefusedError(
                Refusal.INVALID_ENTRY, "not on the pick list (use free text)", tuple(unknown)
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

    @property
    def medications(self) -> tuple[MedicationReview, ...]:
        return tuple(self._session.medications) if self._session else ()

    def set_medication_status(self, index: int, status: MedicationStatus) -> None:
        session = self._confirmed_session(Refusal.NO_PATIENT, "cannot review medications")
        if not 0 <= index < len(session.medications):
            raise RefusedError(Refusal.UNKNOWN_ITEM, f"no medication {index} on the list")
        self._touch()
        session.medications[index] = session.medications[index].model_copy(
            update={"status": status}
        )

    # -- send -------------------------------------------------------------------------------

    def send_refusals(self) -> tuple[tuple[Refusal, str], ...]:
        """Why Send would be refused right now (the review screen shows these)."""
        if self._session is None or self.state not in CONFIRMED_STATES:
            return ((Refusal.IDENTIFIERS_NOT_CONFIRMED, "confirm name and date of birth"),)
        out: list[tuple[Refusal, str]] = []
        if self.unacknowledged_critical():
            out.append(
                (Refusal.CRITICAL_NOT_ACKNOWLEDGED, "acknowledge every critical value first")
            )
        if not any(e.verdict.accepted for e in self._session.entries) and (
            self._session.complaint.empty
        ):
            out.append((Refusal.NOTHING_TO_SEND, "no vitals and no complaint recorded"))
        return tuple(out)

    def send(self) -> RoomingRecord:
        refusals = self.send_refusals()
        if refusals:
            reason, message = refusals[0]
            raise RefusedError(reason, message, tuple(m for _, m in refusals[1:]))
        assert self._session is not None and self._session.confirmed_at is not None
        assert self.ma_id is not None
        now = self._touch()
        self._fire(E.SEND)
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
        )
        self.last_record = record
        self._session = None  # sent: the patient's data leaves the station's memory
        self.schedule = tuple(p for p in self.schedule if p.appointment_id != record.appointment_id)
        return record

    def next_patient(self) -> None:
        self._touch()
        self._fire(E.NEXT_PATIENT)
        self.last_record = None


def refusal_kind(exc: RefusedError) -> Literal["safety", "input"]:
    """For the screen: safety refusals are shown as a red banner, input ones beside the field."""
    safety = {
        Refusal.IDENTIFIERS_NOT_CONFIRMED,
        Refusal.NO_PATIENT,
        Refusal.CRITICAL_NOT_ACKNOWLEDGED,
    }
    return "safety" if exc.reason in safety else "input"


