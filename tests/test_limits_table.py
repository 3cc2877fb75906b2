"""Validation limits held to a table an independent reader can check.

Every number below is written out here, with its source beside it; none is read from
station.validation's tables. Each limit is probed on both sides, so moving any limit in the
code (e.g. weight 650 -> 6500 kg) fails a test here.

Sources named in the rows:
- DESIGN: shared/design.md, "Patient safety rules" ("systolic >= 180 or diastolic >= 120,
  SpO2 < 90 % are flagged").
- README: the README's validation section ("SpO2 > 100 %, temperature outside 25–45 °C,
  weight <= 0 ... rejected"; "temperature >= 39.5 °C or < 35 °C, pulse < 40 or > 130 ...
  flagged").
- IEC 80601-2-30: automated NIBP; cuff pressure and measuring ranges up to 300 mmHg.
- GUINNESS: heaviest recorded human ≈ 635 kg (Jon Brower Minnoch); tallest 272 cm (Robert
  Wadlow).
- NEWS2: Royal College of Physicians, National Early Warning Score 2 (2017), chart 1:
  respiration <= 8 and >= 25 score 3.
- NRS: the 0–10 numeric pain rating scale (AHRQ; 7–10 severe).
- PALS: AHA Pediatric Advanced Life Support 2020, normal heart rates by age (awake).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from station.models import (
    AnyReading,
    BloodPressure,
    BodyHeight,
    BodyWeight,
    HeadCircumference,
    PainSeverity,
    PulseOximetry,
    RespiratoryRate,
    Temperature,
)
from station.units import Unit
from station.validation import validate

C = dict(codec="test", codec_version="1")


def bp_sys(v: float) -> AnyReading:
    # A diastolic always below the systolic and itself plausible, so only SYS is judged.
    return BloodPressure(systolic_mmhg=v, diastolic_mmhg=min(20.0, v - 1) if v < 40 else 25.0,
                         unit_as_sent=Unit.MMHG, **C)


def bp_dia(v: float) -> AnyReading:
    return BloodPressure(systolic_mmhg=290.0 if v > 160 else 170.0, diastolic_mmhg=v,
                         unit_as_sent=Unit.MMHG, **C)


def spo2(v: float) -> AnyReading:
    return PulseOximetry(spo2_percent=v, unit_as_sent=Unit.PERCENT, **C)


def pulse(v: float) -> AnyReading:
    return PulseOximetry(spo2_percent=97.0, pulse_rate_bpm=v, unit_as_sent=Unit.PERCENT, **C)


def temp(v: float) -> AnyReading:
    return Temperature(temperature_c=v, unit_as_sent=Unit.CELSIUS, **C)


def weight(v: float) -> AnyReading:
    return BodyWeight(weight_kg=v, unit_as_sent=Unit.KG, **C)


def height(v: float) -> AnyReading:
    return BodyHeight(height_cm=v, unit_as_sent=Unit.CM, **C)


def rr(v: float) -> AnyReading:
    return RespiratoryRate(respiratory_rate_per_min=v, unit_as_sent=Unit.PER_MIN, **C)


def pain(v: float) -> AnyReading:
    return PainSeverity(pain_score=v, unit_as_sent=Unit.SCORE, **C)


def head(v: float) -> AnyReading:
    return HeadCircumference(head_circumference_cm=v, unit_as_sent=Unit.CM, **C)


@dataclass(frozen=True)
class Plausible:
    """Accepted from `low` to `high` inclusive (`low` itself refused when exclusive)."""

    name: str
    make: Callable[[float], AnyReading]
    low: float
    high: float
    low_exclusive: bool
    source: str


STEP = 0.1  # just outside a limit, finer than any display step
PLAUSIBLE = (
    Plausible("systolic", bp_sys, 30, 300, False, "IEC 80601-2-30 0–300 mmHg; no pulse < 30"),
    Plausible("diastolic", bp_dia, 10, 250, False, "NIBP device ranges (SunTech DIA 15–200)"),
    Plausible("SpO2", spo2, 0, 100, True, "README: SpO2 > 100 % impossible; 0 % is no reading"),
    Plausible("pulse", pulse, 20, 300, False, "device ranges: Nonin 18–321, Masimo 25–240"),
    Plausible("temperature", temp, 25, 45, False, "README: outside 25–45 °C rejected"),
    Plausible("weight", weight, 0, 650, True, "README: weight <= 0; GUINNESS 635 kg"),
    Plausible("height", height, 20, 275, False, "newborn ≈ 20 cm; GUINNESS 272 cm"),
    Plausible("respiratory rate", rr, 1, 120, False, "0 is no count; > 120 a miscount"),
    Plausible("pain", pain, 0, 10, False, "NRS 0–10"),
    Plausible("head circumference", head, 18, 65, False,
              "Fenton 2013: 22-week preterm ≈ 20 cm; adult heads ≈ 52–62 cm"),
)


@pytest.mark.parametrize("row", PLAUSIBLE, ids=lambda r: r.name)
def test_plausibility_limits_on_both_sides(row: Plausible) -> None:
    def status(value: float) -> str:
        return validate(row.make(value)).status

    if row.low_exclusive:
        assert (status(row.low), status(row.low + STEP)) == ("rejected", "accepted"), row.source
    else:
        assert (status(row.low - STEP), status(row.low)) == ("rejected", "accepted"), row.source
    assert (status(row.high), status(row.high + STEP)) == ("accepted", "rejected"), row.source


@dataclass(frozen=True)
class Alarming:
    """`first_flagged` raises `code` at `severity`; `last_clear` (the other side) raises none."""

    name: str
    make: Callable[[float], AnyReading]
    last_clear: float
    first_flagged: float
    code: str
    severity: str
    age_years: float | None
    source: str


ALARMING = (
    Alarming("SBP crisis", bp_sys, 179, 180, "hypertensive_crisis", "critical", None, "DESIGN"),
    Alarming("DBP crisis", bp_dia, 119, 120, "hypertensive_crisis", "critical", None, "DESIGN"),
    Alarming("SpO2 low", spo2, 90, 89.9, "hypoxaemia", "critical", None, "DESIGN: SpO2 < 90 %"),
    Alarming("high fever", temp, 39.4, 39.5, "high_fever", "critical", None, "README ≥ 39.5"),
    Alarming("hypothermia", temp, 35.0, 34.9, "hypothermia", "critical", None, "README < 35"),
    Alarming("pulse slow", pulse, 40, 39, "bradycardia", "critical", None, "README < 40"),
    Alarming("pulse fast", pulse, 130, 131, "tachycardia", "critical", None, "README > 130"),
    Alarming("RR slow", rr, 9, 8, "bradypnoea", "critical", None, "NEWS2 RR <= 8"),
    Alarming("RR fast", rr, 24, 25, "tachypnoea", "critical", None, "NEWS2 RR >= 25"),
    Alarming("severe pain", pain, 6, 7, "severe_pain", "info", None, "NRS 7–10 severe"),
    # A child of 5: PALS awake heart rate 60–140 /min for 2–10 years.
    Alarming("child pulse fast", pulse, 140, 141, "tachycardia", "warning", 5, "PALS 2–10 y"),
    Alarming("child pulse slow", pulse, 60, 59, "bradycardia", "warning", 5, "PALS 2–10 y"),
)


@pytest.mark.parametrize("row", ALARMING, ids=lambda r: r.name)
def test_clinical_flags_on_both_sides(row: Alarming) -> None:
    clear = validate(row.make(row.last_clear), age_years=row.age_years)
    flagged = validate(row.make(row.first_flagged), age_years=row.age_years)
    assert clear.status == flagged.status == "accepted", row.source
    assert [f.code for f in clear.flags if f.code == row.code] == [], row.source
    assert [(f.code, f.severity.value) for f in flagged.flags] == [(row.code, row.severity)], (
        row.source
    )
