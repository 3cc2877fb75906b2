"""The demo pipeline: simulated patients and devices through the real validation, no hardware.

Simulated readings are marked `mode=demo` so they can never be mistaken for a patient's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from station.models import (
    AnyReading,
    BloodPressure,
    BodyWeight,
    Mode,
    PulseOximetry,
    Temperature,
    TemperatureSite,
)
from station.units import Unit
from station.validation import Verdict, validate, with_plausibility_flag

# Obviously fake people: the ZZTEST surname is what EHR test patients use.
FAKE_GIVEN_NAMES = ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel")


@dataclass(frozen=True)
class DemoPatient:
    family: str
    given: str
    birth_date: date
    mrn: str
    appointment_id: str

    def age_years(self, today: date) -> float:
        return (today - self.birth_date).days / 365.25


def demo_patients(count: int, rng: random.Random) -> list[DemoPatient]:
    patients = []
    for i in range(count):
        given = FAKE_GIVEN_NAMES[i % len(FAKE_GIVEN_NAMES)]
        birth = date(1940 + rng.randrange(70), 1 + rng.randrange(12), 1 + rng.randrange(28))
        patients.append(
            DemoPatient(
                "ZZTEST",
                f"{given}{i // len(FAKE_GIVEN_NAMES) or ''}",
                birth,
                f"TEST{100000 + i}",
                f"APT-DEMO-{i + 1:04d}",
            )
        )
    return patients


def simulated_readings(rng: random.Random, at: datetime) -> Iterator[AnyReading]:
    """One reading from each simulated device, with the occasional alarming value."""
    common = {"codec_version": "1", "mode": Mode.DEMO, "measured_at": at}
    systolic = rng.choice([118.0, 124.0, 132.0, 141.0, 186.0])
    yield BloodPressure(
        systolic_mmhg=systolic,
        diastolic_mmhg=rng.choice([72.0, 80.0, 88.0]),
        mean_arterial_mmhg=None,
        pulse_rate_bpm=float(rng.randrange(58, 96)),
        unit_as_sent=Unit.MMHG,
        codec="sim:blood_pressure",
        **common,
    )
    yield PulseOximetry(
        spo2_percent=rng.choice([99.0, 97.0, 96.0, 88.0]),
        pulse_rate_bpm=float(rng.randrange(58, 96)),
        unit_as_sent=Unit.PERCENT,
        codec="sim:pulse_oximetry",
        **common,
    )
    yield Temperature(
        temperature_c=rng.choice([36.6, 36.9, 37.2, 38.4]),
        site=TemperatureSite.MOUTH,
        unit_as_sent=Unit.CELSIUS,
        codec="sim:temperature",
        **common,
    )
    yield BodyWeight(
        weight_kg=round(rng.uniform(50, 110), 1),
        unit_as_sent=Unit.KG,
        codec="sim:body_weight",
        **common,
    )


def check(reading: AnyReading, age_years: float | None) -> tuple[AnyReading, Verdict]:
    checked = with_plausibility_flag(reading)
    return checked, validate(checked, age_years=age_years)


def room_patient(
    patient: DemoPatient, rng: random.Random, now: datetime
) -> list[tuple[AnyReading, Verdict]]:
    age = patient.age_years(now.date())
    return [check(r, age) for r in simulated_readings(rng, now + timedelta(seconds=5))]
