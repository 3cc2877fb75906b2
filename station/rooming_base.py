"""The rooming session's owner state and plumbing, shared by the workflow's parts.

`RoomingBase` holds what every part of the MA workflow reads: the clock, the one open session
(`_Session`), the wrong-patient guard and its session token, the tray, the transition step. The
readings (`station.rooming_readings`) and the workflow itself (`station.rooming`) build on it.
Pure: time comes from the clock passed in.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, tzinfo
from uuid import UUID

from station.audit import UNKNOWN, AuditAction, AuditTrail
from station.config import DisplaySection, GuardSection
from station.guard import WrongPatientGuard
from station.locale import N_
from station.lockout import PinLockout, plain_ma_matcher
from station.models import Mode
from station.rooming_data import (
    CONFIRMED_STATES,
    TRANSITIONS,
    AlertRequest,
    AllergyReview,
    Complaint,
    MedicationReview,
    PocEntry,
    Refusal,
    RoomingEvent,
    RoomingRecord,
    RoomingState,
    ScheduledPatient,
    TrayItem,
    VitalEntry,
)
from station.validation import DeviceRanges
from station.workflow import (
    Clock,
    RefusedError,
    next_state,
)


class _Session:
    """The open rooming of one patient (mutable inside the machine, never handed out)."""

    def __init__(self, patient: ScheduledPatient, started_at: datetime) -> None:
        self.patient = patient
        self.started_at = started_at
        self.confirmed_at: datetime | None = None
        self.entries: list[VitalEntry] = []
        self.complaint = Complaint(reason_for_visit=patient.reason_for_visit)
        self.medications = [MedicationReview(medication=m) for m in patient.medications]
        self.no_medications = False
        self.allergies = [AllergyReview(allergy=a) for a in patient.allergies]
        self.no_known_allergies = False
        self.poc: list[PocEntry] = []


class RoomingBase:
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
        credentials: Mapping[str, str] | Callable[[str], str | None],
        display: DisplaySection | None = None,
        idle_signout_s: float = 300.0,
        mode: Mode = Mode.REAL,
        bound_devices: Iterable[str] = (),
        guard_policy: GuardSection | None = None,
        device_ranges: Mapping[str, DeviceRanges] | None = None,
        device_zone: tzinfo | None = None,
        lockout: PinLockout | None = None,
    ) -> None:
        """`device_zone`: the site's time zone ([records] timezone), in which the guard reads
        a device's local time (`measured_at` without an offset)."""
        # credentials: badge id or PIN -> MA id (a plain table in tests and the demo; the
        # station's hashed credentials as a matcher). The MA id goes into the record, never a
        # log; what was typed goes nowhere.
        self._clock = clock
        self.lockout = lockout or PinLockout(clock)
        self.audit: AuditTrail = self.lockout.audit
        self.guard = WrongPatientGuard(clock, bound_devices, guard_policy, zone=device_zone)
        self._confirmations = 0
        self._manual_entries = 0  # patients entered by hand: part of their visit id
        # Bound device id -> its manufacturer's stated measuring ranges (firmware profile).
        self._device_ranges: dict[str, DeviceRanges] = dict(device_ranges or {})
        self._match_ma = (
            plain_ma_matcher(credentials) if isinstance(credentials, Mapping) else credentials
        )
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
        self._live_cuff_device: str | None = None  # whose pressure the gauge shows
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

    def _audit(
        self,
        action: AuditAction,
        *,
        detail: str = "",
        patient: ScheduledPatient | None = None,
        message_id: UUID | None = None,
        at: datetime | None = None,
        with_patient: bool = True,
    ) -> None:
        """One audit event by the signed-in MA, about `patient` (default: the open one)."""
        if patient is None and with_patient and self._session is not None:
            patient = self._session.patient
        self.audit.record(
            at or self._clock(),
            self.ma_id or UNKNOWN,
            action,
            appointment_id=patient.appointment_id if patient else None,
            mrn=patient.mrn if patient else None,
            related_message_id=message_id,
            detail=detail,
        )

    def _touch(self) -> datetime:
        now = self._clock()
        self._last_activity = now
        return now

    def _confirmed_session(self, refusal: Refusal, what: str) -> _Session:
        if self._session is None:
            raise RefusedError(refusal, what + ": " + N_("no patient is open on this station"))
        if self.state not in CONFIRMED_STATES:
            raise RefusedError(
                Refusal.IDENTIFIERS_NOT_CONFIRMED,
                what + ": " + N_("confirm the patient's name and date of birth first"),
            )
        return self._session

    def _age(self, session: _Session) -> float:
        return session.patient.age_years(self._clock().date())
