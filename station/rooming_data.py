"""What MA rooming is made of: its states and transition table, its refusals, and the values
it holds and hands out (the scheduled patient, vital entries, tray items, the complaint, the
record of a finished rooming). Pure data; the workflow is `station.rooming`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from station.guard import TrayReason
from station.locale import N_
from station.models import AnyReading, Kind
from station.poc import PocResult
from station.submission import Identification
from station.validation import Verdict

COMPLAINT_MAX_CHARS = 200
MEDICATION_TEXT_MAX_CHARS = 200  # a name, a dose or a note, as typed
# Pick list shown as big buttons: the commonest primary-care reasons (NAMCS top visit reasons).
COMMON_COMPLAINTS: tuple[str, ...] = (
    N_("cough"),
    N_("sore throat"),
    N_("fever"),
    N_("headache"),
    N_("back pain"),
    N_("abdominal pain"),
    N_("rash"),
    N_("follow-up"),
    N_("medication refill"),
    N_("annual physical"),
)


class RoomingState(StrEnum):
    SIGNED_OUT = "signed_out"
    SIGNED_IN = "signed_in"  # today's list on screen
    PATIENT_PICKED = "patient_picked"  # name + DOB on screen, waiting for confirmation
    VITALS = "vitals"  # identifiers confirmed
    COMPLAINT = "complaint"
    REVIEW = "review"
    SENT = "sent"


class RoomingEvent(StrEnum):
    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"  # by the MA or by the inactivity timer
    PICK_PATIENT = "pick_patient"
    CONFIRM_IDENTIFIERS = "confirm_identifiers"
    NOT_THIS_PATIENT = "not_this_patient"
    TO_VITALS = "to_vitals"
    TO_COMPLAINT = "to_complaint"
    TO_REVIEW = "to_review"
    SEND = "send"
    NEXT_PATIENT = "next_patient"
    RESUME_PARKED = "resume_parked"  # sign-in finds a rooming parked by a sign-out
    # The MA types the patient's identifiers (not on the schedule, or the station offline).
    ENTER_PATIENT = "enter_patient"


S, E = RoomingState, RoomingEvent
_SIGNED_IN_STATES = (S.SIGNED_IN, S.PATIENT_PICKED, S.VITALS, S.COMPLAINT, S.REVIEW, S.SENT)

# The whole workflow. Signing in where a rooming was parked by a sign-out fires RESUME_PARKED
# at once, so identifiers are confirmed again by whoever signs in next.
TRANSITIONS: dict[tuple[RoomingState, RoomingEvent], RoomingState] = {
    (S.SIGNED_OUT, E.SIGN_IN): S.SIGNED_IN,
    **{(state, E.SIGN_OUT): S.SIGNED_OUT for state in _SIGNED_IN_STATES},
    (S.SIGNED_IN, E.PICK_PATIENT): S.PATIENT_PICKED,
    (S.SIGNED_IN, E.RESUME_PARKED): S.PATIENT_PICKED,
    (S.SIGNED_IN, E.ENTER_PATIENT): S.PATIENT_PICKED,  # confirmed like a pick, never skipped
    (S.PATIENT_PICKED, E.CONFIRM_IDENTIFIERS): S.VITALS,
    (S.PATIENT_PICKED, E.NOT_THIS_PATIENT): S.SIGNED_IN,
    (S.VITALS, E.TO_COMPLAINT): S.COMPLAINT,
    (S.VITALS, E.TO_REVIEW): S.REVIEW,
    (S.COMPLAINT, E.TO_VITALS): S.VITALS,
    (S.COMPLAINT, E.TO_REVIEW): S.REVIEW,
    (S.REVIEW, E.TO_VITALS): S.VITALS,
    (S.REVIEW, E.TO_COMPLAINT): S.COMPLAINT,
    (S.REVIEW, E.SEND): S.SENT,
    (S.SENT, E.NEXT_PATIENT): S.SIGNED_IN,
}
# States in which the patient's identifiers have been confirmed on this station.
CONFIRMED_STATES = frozenset({S.VITALS, S.COMPLAINT, S.REVIEW})


class Refusal(StrEnum):
    UNKNOWN_CREDENTIAL = "unknown_credential"
    LOCKED_OUT = "locked_out"  # too many wrong PINs or badges: the keypad waits
    NOT_ON_SCHEDULE = "not_on_schedule"
    IDENTIFIERS_NOT_CONFIRMED = "identifiers_not_confirmed"
    NO_PATIENT = "no_patient"
    CRITICAL_NOT_ACKNOWLEDGED = "critical_not_acknowledged"
    NOTHING_TO_SEND = "nothing_to_send"
    INVALID_ENTRY = "invalid_entry"
    NOT_CRITICAL = "not_critical"
    UNKNOWN_ITEM = "unknown_item"
    TEXT_TOO_LONG = "text_too_long"
    NOT_MANUAL = "not_manual"
    PARKED_ROOMING = "parked_rooming"
    MEDICATIONS_NOT_REVIEWED = "medications_not_reviewed"
    ALLERGIES_NOT_REVIEWED = "allergies_not_reviewed"
    CONTRADICTION = "contradiction"  # e.g. "no known allergies" beside a confirmed allergy
    ON_SCHEDULE = "on_schedule"  # a patient typed by hand who is on today's list: pick them


# ------------------------------------------------------------------------------------------
# Boundary models
# ------------------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Medication(_Frozen):
    name: str
    dose: str = ""


class AllergySeverity(StrEnum):
    """FHIR R4 AllergyIntolerance.reaction.severity (required binding): mild | moderate |
    severe."""

    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class Allergy(_Frozen):
    """An allergy as the practice lists it, or as the patient tells the MA (free text)."""

    substance: str
    reaction: str = ""  # what happens ("hives"), free text
    severity: AllergySeverity | None = None


class ScheduledPatient(_Frozen):
    """One appointment from the retained `schedule` topic."""

    appointment_id: str
    mrn: str | None  # None: entered by hand without the chart number
    family_name: str
    given_name: str
    birth_date: date
    start_time: str = ""  # "09:30", as the practice system lists it
    room: str = ""
    provider: str = ""
    medications: tuple[Medication, ...] = ()
    allergies: tuple[Allergy, ...] = ()  # the practice's list, for the MA to review
    reason_for_visit: str = ""  # from lobby check-in, when the patient did it
    # What the MA must know before confirming this identity (station.names: hidden characters
    # removed, mixed alphabets, another patient of the same name on the list).
    identity_notes: tuple[str, ...] = ()
    # Manual: not from the schedule; the MA typed these identifiers (station.rooming).
    identification: Identification = Identification.SCHEDULE

    @property
    def display_name(self) -> str:
        return f"{self.family_name}, {self.given_name}"

    def age_years(self, today: date) -> float:
        return (today - self.birth_date).days / 365.25


class MedicationStatus(StrEnum):
    UNREVIEWED = "unreviewed"
    TAKING = "taking"
    NOT_TAKING = "not_taking"
    CHANGED = "changed"


class Onset(StrEnum):
    UNKNOWN = "unknown"
    TODAY = "today"
    DAYS = "days"  # 1-6 days
    WEEKS = "weeks"
    MONTHS = "months"
    CHRONIC = "chronic"


class EntrySource(StrEnum):
    DEVICE = "device"
    MANUAL = "manual"
    TRAY = "tray"  # held back by the guard, then accepted to this patient by the MA


class VitalEntry(_Frozen):
    """One reading attached to the patient, with its verdict and how it got here."""

    entry_id: int
    reading: Annotated[AnyReading, Field(discriminator="kind")]
    verdict: Verdict
    source: EntrySource
    device: str  # the device's name as bound, or "manual"
    received_at: datetime
    acknowledged: bool = False  # a critical value the MA explicitly acknowledged
    acknowledged_at: datetime | None = None
    tray_reason: str = ""  # why the guard held it back, for tray acceptances

    @property
    def kind(self) -> Kind:
        return self.reading.kind


class TrayItem(_Frozen):
    item_id: int
    reading: Annotated[AnyReading, Field(discriminator="kind")]
    device: str
    reason: str  # the guard's reasons in words, for the tray card
    received_at: datetime
    reasons: tuple[TrayReason, ...] = ()
    measured_before_s: float | None = None  # the device's time, before the session start


class MedicationReview(_Frozen):
    medication: Medication
    status: MedicationStatus = MedicationStatus.UNREVIEWED
    new_dose: str = ""  # CHANGED: the dose the patient takes now
    note: str = ""  # what the patient said ("stopped: made me dizzy")
    added: bool = False  # not on the practice's list: the patient reported it today


class AllergyStatus(StrEnum):
    UNREVIEWED = "unreviewed"
    CONFIRMED = "confirmed"  # the patient confirms it
    REFUTED = "refuted"  # the patient says it is wrong (never allergic)


class AllergyReview(_Frozen):
    allergy: Allergy
    status: AllergyStatus = AllergyStatus.UNREVIEWED
    added: bool = False  # reported by the patient today


class PocEntry(_Frozen):
    """One point-of-care result recorded at this rooming (station.poc), always typed."""

    entry_id: int
    result: PocResult
    recorded_at: datetime
    acknowledged: bool = False  # a critical result the MA told the clinician about
    acknowledged_at: datetime | None = None


class Complaint(_Frozen):
    picks: tuple[str, ...] = ()
    free_text: str = ""
    onset: Onset = Onset.UNKNOWN
    reason_for_visit: str = ""

    @property
    def empty(self) -> bool:
        return not (self.picks or self.free_text or self.reason_for_visit)


class AlertRequest(_Frozen):
    """A critical value the MA acknowledged: the composition root publishes it on `alert`."""

    appointment_id: str
    code: str
    message: str
    entry_id: int
    acknowledged_by: str
    acknowledged_at: datetime


class RoomingRecord(_Frozen):
    """What one finished rooming sends: the composition root turns it into the submission."""

    appointment_id: str
    mrn: str | None  # None: a patient entered by hand without the MRN
    ma_id: str
    started_at: datetime
    confirmed_at: datetime
    sent_at: datetime
    # Every reading taken, retakes included, in the order taken; none is dropped or altered.
    entries: tuple[VitalEntry, ...]
    bmi_kg_m2: float | None
    complaint: Complaint
    medications: tuple[MedicationReview, ...]
    no_medications: bool = False  # the patient takes none (reviewed, nothing listed)
    allergies: tuple[AllergyReview, ...] = ()
    no_known_allergies: bool = False
    poc_results: tuple[PocEntry, ...] = ()


