"""Obviously fake submissions (ZZTEST patients) shared by the sync tests and the benchmark."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

from station.models import (
    BloodPressure,
    BodyWeight,
    Method,
    PainSeverity,
    PulseOximetry,
    RespiratoryRate,
    Temperature,
    TemperatureSite,
)
from station.submission import (
    CriticalAcknowledgement,
    MedicationReview,
    MedicationReviewStatus,
    PatientIdentifiers,
    Submission,
    SubmittedReading,
)
from station.units import Unit
from station.validation import validate

AT = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
MESSAGE_ID = UUID("00000000-0000-4000-8000-000000000001")
PATIENT = PatientIdentifiers(
    mrn="TEST100001", family_name="ZZTEST", given_name="Alpha", birth_date=date(1970, 1, 2)
)


def item(reading: object, device_id: str | None = "cuff") -> SubmittedReading:
    return SubmittedReading(
        reading=reading,  # type: ignore[arg-type]
        verdict=validate(reading),  # type: ignore[arg-type]
        accepted_at=AT,
        device_id=device_id,
    )


def submission(*, systolic: float = 128.0, appointment_id: str = "APT-0001") -> Submission:
    bp = BloodPressure(
        systolic_mmhg=systolic, diastolic_mmhg=82.0, mean_arterial_mmhg=97.0,
        pulse_rate_bpm=64.0, unit_as_sent=Unit.MMHG, codec="ble:2a35", codec_version="1",
        raw_hex="1e8000520061000000",
    )
    spo2 = PulseOximetry(spo2_percent=97.0, pulse_rate_bpm=66.0, unit_as_sent=Unit.PERCENT,
                         codec="serial:nonin2", codec_version="1", raw_hex="01816142")
    temp = Temperature(temperature_c=36.8, site=TemperatureSite.MOUTH,
                       unit_as_sent=Unit.FAHRENHEIT, codec="ble:2a1c", codec_version="1",
                       raw_hex="06700100ff")
    weight = BodyWeight(weight_kg=81.2, height_cm=178.0, bmi_kg_m2=25.6, unit_as_sent=Unit.LB,
                        codec="ble:2a9d", codec_version="1", raw_hex="02b43d")
    rr = RespiratoryRate(respiratory_rate_per_min=16.0, unit_as_sent=Unit.PER_MIN,
                         codec="manual", codec_version="1", method=Method.MANUAL)
    pain = PainSeverity(pain_score=3.0, unit_as_sent=Unit.SCORE, codec="manual",
                        codec_version="1", method=Method.MANUAL)
    readings = (item(bp), item(spo2, "oximeter"), item(temp, "thermometer"),
                item(weight, "scale"), item(rr, None), item(pain, None))
    acks = ()
    if systolic >= 180:
        acks = (CriticalAcknowledgement(code="hypertensive_crisis", kind=bp.kind,
                                        acknowledged_by="MA042", acknowledged_at=AT),)
    return Submission(
        appointment_id=appointment_id,
        patient=PATIENT,
        ma_id="MA042",
        readings=readings,
        chief_complaint="cough for a week",
        reason_for_visit="follow-up",
        onset="7 days ago",
        medication_review=MedicationReview(status=MedicationReviewStatus.REVIEWED_NO_CHANGES),
        critical_acknowledgements=acks,
        completed_at=AT,
    )
