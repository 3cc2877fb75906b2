"""What the MA sends at the end of rooming: one pure, frozen `Submission` for the sync layer.

The UI builds a Submission from the reviewed session; the sync layer turns it into the vitals
payload (JSON envelope + FHIR Bundle) and queues it. Respiratory rate and pain are readings
like any other (kinds `respiratory_rate` and `pain_severity`, `method=manual`), so every
number sent carries its verdict and how it was obtained.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from station.models import Kind, Reading
from station.poc import PocResult
from station.validation import Verdict

# Identifiers that become FHIR ids and log-safe references: no spaces, no slashes.
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Identification(StrEnum):
    """How the station knew who the patient was."""

    SCHEDULE = "schedule"  # picked from the practice's schedule (or found by its lookup)
    # Typed by the MA (name + date of birth, the MRN if known) because the patient was not on
    # the schedule or the station was offline: the practice matches it to the chart itself.
    MANUAL = "manual"


class PatientIdentifiers(_Frozen):
    """The identifiers the MA confirmed (name + date of birth) and the chart number.

    `mrn` is None only for a patient the MA entered by hand without the chart number
    (`Identification.MANUAL`); the practice's schedule always carries it."""

    mrn: Annotated[str, Field(pattern=IDENTIFIER)] | None
    family_name: Annotated[str, Field(min_length=1, max_length=100)]
    given_name: Annotated[str, Field(min_length=1, max_length=100)]
    birth_date: date


def check_identification(patient: PatientIdentifiers, identification: Identification) -> None:
    """A rooming without the MRN is only one the MA identified by hand."""
    if patient.mrn is None and identification is not Identification.MANUAL:
        raise ValueError(
            "patient.mrn is missing: only a manually identified patient "
            "(identification 'manual') may be sent without the MRN"
        )


class SubmittedReading(_Frozen):
    """One accepted reading, as reviewed: the canonical reading, its verdict, where it came from."""

    reading: Reading
    verdict: Verdict
    # The station's own clock when the reading was accepted (timezone-aware): the FHIR
    # effectiveDateTime. The device's clock (reading.measured_at) is kept as sent.
    accepted_at: datetime
    device_id: Annotated[str, Field(pattern=IDENTIFIER)] | None = None  # None: typed by hand

    @model_validator(mode="after")
    def _sendable(self) -> SubmittedReading:
        if not self.verdict.accepted:
            raise ValueError("only accepted readings are submitted; this one was rejected")
        if self.reading.kind == Kind.CUFF_PRESSURE:
            raise ValueError("cuff_pressure is a live inflation value, not a vital sign")
        if self.accepted_at.tzinfo is None:
            raise ValueError("accepted_at must carry a timezone (the station clock, UTC)")
        return self


class CriticalAcknowledgement(_Frozen):
    """The MA saw a critical value (e.g. systolic >= 180) and told the clinician."""

    code: str  # the ClinicalFlag code, e.g. "hypertensive_crisis"
    kind: Kind
    acknowledged_by: Annotated[str, Field(pattern=IDENTIFIER)]  # MA id
    acknowledged_at: datetime


class MedicationReviewStatus(StrEnum):
    REVIEWED_NO_CHANGES = "reviewed_no_changes"
    REVIEWED_CHANGES_REPORTED = "reviewed_changes_reported"
    NOT_REVIEWED = "not_reviewed"
    PATIENT_DECLINED = "patient_declined"


class MedicationReview(_Frozen):
    status: MedicationReviewStatus = MedicationReviewStatus.NOT_REVIEWED
    note: Annotated[str, Field(max_length=1000)] = ""  # what the patient said changed


class MedicationUse(StrEnum):
    """What the patient said about one medication at rooming."""

    TAKING = "taking"
    NOT_TAKING = "not_taking"
    CHANGED = "changed"  # takes it differently now: `new_dose` and/or `note`
    UNREVIEWED = "unreviewed"


class SubmittedMedication(_Frozen):
    """One line of the updated medication list (sent as a US Core MedicationRequest)."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    dose: Annotated[str, Field(max_length=200)] = ""  # as the practice listed it
    use: MedicationUse
    new_dose: Annotated[str, Field(max_length=200)] = ""
    note: Annotated[str, Field(max_length=200)] = ""
    # Not on the practice's list: the patient reported it today (self-prescribed or elsewhere).
    patient_reported_new: bool = False


class AllergyVerification(StrEnum):
    CONFIRMED = "confirmed"
    REFUTED = "refuted"  # the patient says they are not allergic
    UNREVIEWED = "unreviewed"


class SubmittedAllergy(_Frozen):
    """One reviewed allergy (sent as a US Core AllergyIntolerance)."""

    substance: Annotated[str, Field(min_length=1, max_length=200)]
    reaction: Annotated[str, Field(max_length=200)] = ""
    severity: Literal["mild", "moderate", "severe"] | None = None
    verification: AllergyVerification
    patient_reported_new: bool = False


class SubmittedPocResult(_Frozen):
    """One point-of-care result (station.poc), typed by the MA: always method manual."""

    result: PocResult
    recorded_at: datetime
    acknowledged_by: Annotated[str, Field(pattern=IDENTIFIER)] | None = None  # critical only
    acknowledged_at: datetime | None = None

    @model_validator(mode="after")
    def _aware(self) -> SubmittedPocResult:
        if self.recorded_at.tzinfo is None:
            raise ValueError("recorded_at must carry a timezone (the station clock, UTC)")
        return self


class Submission(_Frozen):
    """Everything one rooming produces. Built by the UI, sent by the sync layer."""

    appointment_id: Annotated[str, Field(pattern=IDENTIFIER)]
    patient: PatientIdentifiers
    ma_id: Annotated[str, Field(pattern=IDENTIFIER)]
    readings: tuple[SubmittedReading, ...] = ()
    chief_complaint: Annotated[str, Field(max_length=500)] = ""
    reason_for_visit: Annotated[str, Field(max_length=500)] = ""
    onset: Annotated[str, Field(max_length=200)] = ""  # as the patient put it: "3 days ago"
    medication_review: MedicationReview = MedicationReview()
    critical_acknowledgements: tuple[CriticalAcknowledgement, ...] = ()
    completed_at: datetime  # station clock, timezone-aware
    # The updated medication list; `no_medications`: the patient takes none.
    medications: tuple[SubmittedMedication, ...] = ()
    no_medications: bool = False
    allergies: tuple[SubmittedAllergy, ...] = ()
    no_known_allergies: bool = False
    poc_results: tuple[SubmittedPocResult, ...] = ()
    # Manual: the MA typed the identifiers (unscheduled, or offline): the practice matches it.
    identification: Identification = Identification.SCHEDULE

    @model_validator(mode="after")
    def _criticals_acknowledged(self) -> Submission:
        check_identification(self.patient, self.identification)
        if self.completed_at.tzinfo is None:
            raise ValueError("completed_at must carry a timezone (the station clock, UTC)")
        acked = {(a.kind, a.code) for a in self.critical_acknowledgements}
        missing = sorted(
            f"{item.reading.kind}:{flag.code}"
            for item in self.readings
            for flag in item.verdict.flags
            if flag.severity == "critical" and (item.reading.kind, flag.code) not in acked
        )
        missing += sorted(
            f"poc:{p.result.test}" for p in self.poc_results
            if p.result.critical and p.acknowledged_by is None
        )
        if self.no_known_allergies and any(
            a.verification == AllergyVerification.CONFIRMED for a in self.allergies
        ):
            raise ValueError("'no known allergies' beside a confirmed allergy")
        if self.no_medications and any(
            m.use in (MedicationUse.TAKING, MedicationUse.CHANGED) for m in self.medications
        ):
            raise ValueError("'takes no medications' beside a medication taken")
        if missing:
            raise ValueError(
                "critical values must be acknowledged by the MA before sending; "
                f"not acknowledged: {', '.join(missing)}"
            )
        return self
