"""A finished rooming as the sync layer's `Submission`: accepted readings (retakes included),
critical-value acknowledgements, the complaint and the medication review, as sent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from station.rooming_data import (
    EntrySource,
    MedicationStatus,
    Onset,
    RoomingRecord,
    ScheduledPatient,
)
from station.submission import (
    AllergyVerification,
    CriticalAcknowledgement,
    MedicationReviewStatus,
    MedicationUse,
    PatientIdentifiers,
    Submission,
    SubmittedAllergy,
    SubmittedMedication,
    SubmittedPocResult,
    SubmittedReading,
)
from station.submission import MedicationReview as SubmittedMedicationReview

ONSET_WORDS: dict[Onset, str] = {
    Onset.UNKNOWN: "",
    Onset.TODAY: "today",
    Onset.DAYS: "1–6 days",
    Onset.WEEKS: "weeks",
    Onset.MONTHS: "months",
    Onset.CHRONIC: "long-standing",
}


def _aware(moment: datetime) -> datetime:
    # The station clock is UTC; a naive time from it is UTC too.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def record_to_submission(record: RoomingRecord, patient: ScheduledPatient) -> Submission:
    """Accepted readings (retakes included), acknowledgements and the complaint, as sent."""
    readings = tuple(
        SubmittedReading(
            reading=e.reading,
            verdict=e.verdict,
            accepted_at=_aware(e.received_at),
            device_id=None if e.source == EntrySource.MANUAL else e.device,
        )
        for e in record.entries
        if e.verdict.accepted
    )
    acks = tuple(
        CriticalAcknowledgement(
            code=flag.code,
            kind=e.kind,
            acknowledged_by=record.ma_id,
            acknowledged_at=_aware(e.acknowledged_at or record.sent_at),
        )
        for e in record.entries
        if e.acknowledged
        for flag in e.verdict.flags
        if flag.severity == "critical"
    )
    statuses = [m.status for m in record.medications]
    changed = [
        f"{m.medication.name}: {m.status.value.replace('_', ' ')}"
        + (f" ({m.new_dose})" if m.new_dose else "") + (f" - {m.note}" if m.note else "")
        for m in record.medications
        if m.status in (MedicationStatus.CHANGED, MedicationStatus.NOT_TAKING)
    ] + [f"{m.medication.name}: added (patient-reported)" for m in record.medications
         if m.added]
    if changed:
        review = SubmittedMedicationReview(
            status=MedicationReviewStatus.REVIEWED_CHANGES_REPORTED, note="; ".join(changed)
        )
    elif (statuses and all(s == MedicationStatus.TAKING for s in statuses)) or (
        record.no_medications
    ):
        review = SubmittedMedicationReview(status=MedicationReviewStatus.REVIEWED_NO_CHANGES)
    else:
        review = SubmittedMedicationReview(status=MedicationReviewStatus.NOT_REVIEWED)
    complaint = "; ".join((*record.complaint.picks, *filter(None, [record.complaint.free_text])))
    return Submission(
        appointment_id=record.appointment_id,
        patient=PatientIdentifiers(
            mrn=patient.mrn,
            family_name=patient.family_name,
            given_name=patient.given_name,
            birth_date=patient.birth_date,
        ),
        ma_id=record.ma_id,
        readings=readings,
        chief_complaint=complaint,
        reason_for_visit=record.complaint.reason_for_visit,
        onset=ONSET_WORDS[record.complaint.onset],
        medication_review=review,
        critical_acknowledgements=acks,
        completed_at=_aware(record.sent_at),
        medications=tuple(
            SubmittedMedication(
                name=m.medication.name, dose=m.medication.dose,
                use=MedicationUse(m.status.value), new_dose=m.new_dose, note=m.note,
                patient_reported_new=m.added,
            )
            for m in record.medications
        ),
        no_medications=record.no_medications,
        allergies=tuple(
            SubmittedAllergy(
                substance=a.allergy.substance, reaction=a.allergy.reaction,
                severity=None if a.allergy.severity is None else a.allergy.severity.value,
                verification=AllergyVerification(a.status.value),
                patient_reported_new=a.added,
            )
            for a in record.allergies
        ),
        no_known_allergies=record.no_known_allergies,
        identification=patient.identification,
        poc_results=tuple(
            SubmittedPocResult(
                result=p.result, recorded_at=_aware(p.recorded_at),
                acknowledged_by=record.ma_id if p.acknowledged else None,
                acknowledged_at=_aware(p.acknowledged_at) if p.acknowledged_at else None,
            )
            for p in record.poc_results
        ),
    )

