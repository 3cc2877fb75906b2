"""Shared test values for the workflow tests: a hand-moved clock, fake patients and readings."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from station.models import (
    BloodPressure,
    BodyWeight,
    CuffPressure,
    Flag,
    PulseOximetry,
    Temperature,
    TemperatureSite,
)
from station.rooming import Rooming
from station.rooming_data import (
    AllergyStatus,
    Medication,
    MedicationStatus,
    ScheduledPatient,
    TrayItem,
    VitalEntry,
)
from station.units import Unit

T0 = datetime(2026, 3, 2, 9, 0, 0)


class FakeClock:
    """A clock the test moves by hand; the workflows never read the wall clock."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


ALPHA = ScheduledPatient(
    appointment_id="APT-TEST-0001",
    mrn="TEST100001",
    family_name="ZZTEST",
    given_name="Alpha",
    birth_date=date(1970, 5, 17),
    start_time="09:00",
    room="Exam 3",
    medications=(Medication(name="lisinopril", dose="10 mg daily"), Medication(name="aspirin")),
    reason_for_visit="follow-up blood pressure",
)
BRAVO = ScheduledPatient(
    appointment_id="APT-TEST-0002",
    mrn="TEST100002",
    family_name="ZZTEST",
    given_name="Bravo",
    birth_date=date(1985, 11, 2),
    start_time="09:30",
)
CREDENTIALS = {"BADGE-0042": "ma-042", "4321": "ma-042", "BADGE-0077": "ma-077"}


def bp(
    systolic: float = 124.0, diastolic: float = 80.0, *, flags: tuple[Flag, ...] = ()
) -> BloodPressure:
    return BloodPressure(
        systolic_mmhg=systolic,
        diastolic_mmhg=diastolic,
        pulse_rate_bpm=72.0,
        unit_as_sent=Unit.MMHG,
        codec="gatt:blood_pressure",
        codec_version="1",
        measured_at=T0 + timedelta(minutes=2),
        flags=flags,
        raw_hex="1e7c00500000",
    )


def spo2(percent: float = 98.0) -> PulseOximetry:
    return PulseOximetry(
        spo2_percent=percent,
        pulse_rate_bpm=71.0,
        unit_as_sent=Unit.PERCENT,
        codec="nonin:format2",
        codec_version="1",
    )


def temp(celsius: float = 36.8) -> Temperature:
    return Temperature(
        temperature_c=celsius,
        site=TemperatureSite.MOUTH,
        unit_as_sent=Unit.CELSIUS,
        codec="gatt:health_thermometer",
        codec_version="1",
    )


def weight(kg: float = 80.0, height_cm: float | None = 180.0) -> BodyWeight:
    return BodyWeight(
        weight_kg=kg,
        height_cm=height_cm,
        unit_as_sent=Unit.KG,
        codec="gatt:weight_scale",
        codec_version="1",
    )


def cuff(mmhg: float) -> CuffPressure:
    return CuffPressure(
        cuff_pressure_mmhg=mmhg, unit_as_sent=Unit.MMHG, codec="gatt:cuff", codec_version="1"
    )


# The devices the workflow tests bind to their station (any other is the room next door's).
BOUND = ("cuff", "ox", "oximeter", "thermo", "scale", "A&D UA-651BLE")


def offer(rooming: Rooming, reading: object, device: str) -> VitalEntry | TrayItem | None:
    """A device reading through the production entry point; what it placed (None: nothing,
    e.g. live cuff pressure)."""
    placed = rooming.offer(device, reading)  # type: ignore[arg-type]
    assert len(placed) <= 1
    return placed[0] if placed else None


def review_lists(rooming: Rooming) -> None:
    """The MA asks about every listed medication (taking) and allergy (confirmed): Send is
    refused while one is unreviewed (#18)."""
    for index, med in enumerate(rooming.medications):
        if med.status == MedicationStatus.UNREVIEWED:
            rooming.set_medication_status(index, MedicationStatus.TAKING)
    for index, allergy in enumerate(rooming.allergies):
        if allergy.status == AllergyStatus.UNREVIEWED:
            rooming.set_allergy_status(index, AllergyStatus.CONFIRMED)
