"""Validation: every limit at both sides, with the exact verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from station.models import (
    READING_TYPES,
    VALUE_FIELDS,
    AnyReading,
    BloodPressure,
    Flag,
    Kind,
    Method,
    PulseOximetry,
)
from station.units import Unit
from station.validation import (
    CLINICAL_RULES,
    DEVICE_QUALITY,
    PLAUSIBLE_LIMITS,
    ClinicalFlag,
    Severity,
    Verdict,
    plausibility_problems,
    validate,
    with_plausibility_flag,
)
from station.vitals import CANONICAL_UNIT

# A normal adult value for every field, so one field can be moved at a time.
NORMAL: dict[str, float] = {
    "systolic_mmhg": 120.0,
    "diastolic_mmhg": 80.0,
    "mean_arterial_mmhg": 93.0,
    "cuff_pressure_mmhg": 150.0,
    "pulse_rate_bpm": 70.0,
    "spo2_percent": 97.0,
    "perfusion_index_percent": 3.0,
    "temperature_c": 36.8,
    "weight_kg": 70.0,
    "height_cm": 170.0,
    "bmi_kg_m2": 24.2,
    "respiratory_rate_per_min": 16.0,
    "pain_score": 2.0,
    "head_circumference_cm": 46.0,  # a 1-year-old (WHO median at 12 months ≈ 46 cm)
}
FIELD_KIND: dict[str, Kind] = {}
for _kind, _fields in VALUE_FIELDS.items():
    for _field in _fields:
        FIELD_KIND.setdefault(_field, _kind)


def make(kind: Kind, **values: Any) -> AnyReading:
    fields = {name: NORMAL[name] for name in VALUE_FIELDS[kind]}
    fields.update(values)
    return READING_TYPES[kind](  # type: ignore[return-value]
        unit_as_sent=CANONICAL_UNIT[kind], codec="manual", codec_version="1",
        method=Method.MANUAL, **fields,
    )


def test_normal_adult_readings_are_accepted_without_flags() -> None:
    for kind in Kind:
        assert validate(make(kind)) == Verdict(status="accepted"), kind


def _edges(field: str) -> list[tuple[float, bool]]:
    """(value, plausible) pairs just inside and just outside both ends of the limit."""
    limit = PLAUSIBLE_LIMITS[field]
    step = 0.01
    low_ok = limit.low + step if limit.low_exclusive else limit.low
    return [(low_ok, True), (limit.low if limit.low_exclusive else limit.low - step, False),
            (limit.high, True), (limit.high + step, False)]


# Fields whose edges interact with the systolic > diastolic > ... order checks are tested there.
ORDERED = {"systolic_mmhg", "diastolic_mmhg", "mean_arterial_mmhg"}


@pytest.mark.parametrize("field", sorted(set(PLAUSIBLE_LIMITS) - ORDERED - {"pain_score"}))
def test_plausibility_limits_at_both_sides(field: str) -> None:
    kind = FIELD_KIND[field]
    for value, plausible in _edges(field):
        problems = plausibility_problems(make(kind, **{field: value}))
        assert (problems == []) is plausible, (field, value, problems)


def test_blood_pressure_limits_and_order() -> None:
    def problems(sys: float, dia: float, mean: float | None = None) -> list[str]:
        return plausibility_problems(
            make(Kind.BLOOD_PRESSURE, systolic_mmhg=sys, diastolic_mmhg=dia,
                 mean_arterial_mmhg=mean))

    assert problems(300, 250) == []
    assert problems(300.01, 250) == [
        "systolic 300.01 mmHg is not possible: expected 30–300 mmHg"]
    assert problems(30, 10) == []
    assert problems(29.9, 10) == ["systolic 29.9 mmHg is not possible: expected 30–300 mmHg"]
    assert problems(120, 9.9) == ["diastolic 9.9 mmHg is not possible: expected 10–250 mmHg"]
    assert problems(80, 80) == [
        "systolic 80 mmHg is not above diastolic 80 mmHg: expected systolic > diastolic"]
    assert problems(80.1, 80) == []
    assert problems(120, 80, 80) == []
    assert problems(120, 80, 120) == []
    assert problems(120, 80, 79.9) == [
        "mean arterial pressure 79.9 mmHg is not between diastolic 80 and systolic 120 mmHg"]


def test_pain_score_must_be_a_whole_number_0_to_10() -> None:
    assert plausibility_problems(make(Kind.PAIN_SEVERITY, pain_score=10)) == []
    assert plausibility_problems(make(Kind.PAIN_SEVERITY, pain_score=0)) == []
    assert plausibility_problems(make(Kind.PAIN_SEVERITY, pain_score=11)) == [
        "pain score 11 is not possible: expected 0–10"]
    assert plausibility_problems(make(Kind.PAIN_SEVERITY, pain_score=4.5)) == [
        "pain score 4.5 is not possible: expected a whole number 0–10"]


def test_rejected_reading_says_why_and_is_never_flagged_as_clinical() -> None:
    verdict = validate(make(Kind.PULSE_OXIMETRY, spo2_percent=101.0))
    assert verdict == Verdict(
        status="rejected",
        reasons=("SpO2 101 % is not possible: expected more than 0 and at most 100 %",),
    )


def test_missing_required_value_is_rejected_with_reason() -> None:
    verdict = validate(make(Kind.BLOOD_PRESSURE, systolic_mmhg=None))
    assert verdict == Verdict(
        status="rejected",
        reasons=("no systolic value: the device marked it not available",))


def test_abnormal_is_not_invalid_a_crisis_is_accepted_and_flagged_critical() -> None:
    verdict = validate(make(Kind.BLOOD_PRESSURE, systolic_mmhg=185.0, diastolic_mmhg=95.0,
                            mean_arterial_mmhg=125.0))
    assert verdict.status == "accepted"
    assert verdict.flags == (ClinicalFlag(
        code="hypertensive_crisis", severity=Severity.CRITICAL,
        message="systolic 180 or above: hypertensive crisis — retake now and tell the clinician",),)
    assert verdict.critical and verdict.retake_suggested


# (kind, field, value just at the firing side, value just at the quiet side, age, code, severity)
CLINICAL_EDGES = [
    (Kind.BLOOD_PRESSURE, "systolic_mmhg", 180, 179.9, None, "hypertensive_crisis", "critical"),
    (Kind.BLOOD_PRESSURE, "diastolic_mmhg", 120, 119.9, None, "hypertensive_crisis", "critical"),
    (Kind.BLOOD_PRESSURE, "systolic_mmhg", 180, 179.9, 13, "hypertensive_crisis", "critical"),
    (Kind.BLOOD_PRESSURE, "systolic_mmhg", 89.9, 90, None, "hypotension", "warning"),
    (Kind.BLOOD_PRESSURE, "systolic_mmhg", 73.9, 74, 2.5, "hypotension", "critical"),  # 70+2×2
    (Kind.BLOOD_PRESSURE, "systolic_mmhg", 89.9, 90, 12, "hypotension", "critical"),
    (Kind.BLOOD_PRESSURE, "systolic_mmhg", 59.9, 60, 0.02, "hypotension", "critical"),
    (Kind.PULSE_OXIMETRY, "spo2_percent", 89.9, 90, None, "hypoxaemia", "critical"),
    (Kind.PULSE_OXIMETRY, "spo2_percent", 89.9, 90, 4, "hypoxaemia", "critical"),
    (Kind.PULSE_OXIMETRY, "pulse_rate_bpm", 39.9, 40, None, "bradycardia", "critical"),
    (Kind.PULSE_OXIMETRY, "pulse_rate_bpm", 130.1, 130, None, "tachycardia", "critical"),
    (Kind.PULSE_OXIMETRY, "pulse_rate_bpm", 140.1, 140, 5, "tachycardia", "warning"),
    (Kind.PULSE_OXIMETRY, "pulse_rate_bpm", 84.9, 85, 0.1, "bradycardia", "warning"),
    (Kind.PULSE_OXIMETRY, "pulse_rate_bpm", 100.1, 100, 15, "tachycardia", "warning"),
    (Kind.TEMPERATURE, "temperature_c", 39.5, 39.49, None, "high_fever", "critical"),
    (Kind.TEMPERATURE, "temperature_c", 38.0, 37.99, None, "fever", "warning"),
    (Kind.TEMPERATURE, "temperature_c", 34.99, 35.0, None, "hypothermia", "critical"),
    (Kind.TEMPERATURE, "temperature_c", 38.0, 37.99, 0.1, "febrile_infant", "critical"),
    (Kind.RESPIRATORY_RATE, "respiratory_rate_per_min", 8, 9, None, "bradypnoea", "critical"),
    (Kind.RESPIRATORY_RATE, "respiratory_rate_per_min", 25, 24, None, "tachypnoea", "critical"),
    (Kind.RESPIRATORY_RATE, "respiratory_rate_per_min", 54, 53, 0.5, "tachypnoea", "warning"),
    (Kind.RESPIRATORY_RATE, "respiratory_rate_per_min", 11, 12, 14, "bradypnoea", "warning"),
    (Kind.PAIN_SEVERITY, "pain_score", 7, 6, None, "severe_pain", "info"),
]


@pytest.mark.parametrize(("kind", "field", "fires", "quiet", "age", "code", "severity"),
                         CLINICAL_EDGES)
def test_clinical_flags_at_both_sides_of_each_limit(
    kind: Kind, field: str, fires: float, quiet: float, age: float | None, code: str,
    severity: str,
) -> None:
    extra: dict[str, float | None] = {}
    if kind == Kind.BLOOD_PRESSURE:
        # Move one pressure at a time; keep the others out of the way of the order checks.
        extra = {"mean_arterial_mmhg": None, "pulse_rate_bpm": None}
        if field == "systolic_mmhg" and fires < 100:
            extra["diastolic_mmhg"] = 40.0
        if field == "diastolic_mmhg":
            extra["systolic_mmhg"] = 150.0
    fired = validate(make(kind, **{field: fires}, **extra), age_years=age)
    assert fired.status == "accepted"
    assert [(f.code, f.severity.value) for f in fired.flags] == [(code, severity)]
    quiet_verdict = validate(make(kind, **{field: quiet}, **extra), age_years=age)
    assert quiet_verdict.status == "accepted"
    assert code not in [f.code for f in quiet_verdict.flags], quiet_verdict


def test_every_clinical_rule_is_covered_by_an_edge_test() -> None:
    covered = {(code, field) for _, field, *_rest, code, _sev in CLINICAL_EDGES}
    assert {(r.code, r.field) for r in CLINICAL_RULES} <= covered


def test_one_flag_per_field_high_fever_is_not_also_fever() -> None:
    verdict = validate(make(Kind.TEMPERATURE, temperature_c=40.1))
    assert [f.code for f in verdict.flags] == ["high_fever"]


def test_children_get_paediatric_limits_adults_do_not() -> None:
    child = validate(make(Kind.PULSE_OXIMETRY, pulse_rate_bpm=150.0), age_years=4)
    assert [f.code for f in child.flags] == ["tachycardia"]
    baby = validate(make(Kind.PULSE_OXIMETRY, pulse_rate_bpm=150.0), age_years=0.5)
    assert baby == Verdict(status="accepted")


def test_device_quality_flags_become_retake_in_plain_words() -> None:
    reading = BloodPressure(systolic_mmhg=128.0, diastolic_mmhg=84.0, unit_as_sent=Unit.MMHG,
                            codec="ble:2a35", codec_version="1",
                            flags=(Flag.CUFF_TOO_LOOSE, Flag.BODY_MOVEMENT))
    verdict = validate(reading)
    assert verdict == Verdict(status="accepted", flags=(
        ClinicalFlag(code="retake_body_movement", severity=Severity.WARNING,
                     message="patient moved during the measurement — retake?"),
        ClinicalFlag(code="retake_cuff_loose", severity=Severity.WARNING,
                     message="cuff may be loose — retake?"),
    ))
    assert verdict.retake_suggested and not verdict.critical


@pytest.mark.parametrize("flag", sorted(f for f, rule in DEVICE_QUALITY.items() if rule.rejects))
def test_device_says_invalid_rejects_with_its_reason(flag: Flag) -> None:
    reading = PulseOximetry(spo2_percent=97.0, unit_as_sent=Unit.PERCENT, codec="ble:2a5e",
                            codec_version="1", flags=(flag,))
    verdict = validate(reading)
    assert verdict.status == "rejected"
    assert verdict.reasons == (DEVICE_QUALITY[flag].message,)


def test_outside_the_device_range_is_rejected_naming_the_range() -> None:
    verdict = validate(make(Kind.PULSE_OXIMETRY, spo2_percent=62.0),
                       device_ranges={"spo2_percent": (70.0, 100.0)})
    assert verdict == Verdict(status="rejected", reasons=(
        "SpO2 62 % is outside this device's range: expected 70–100 %",))


def test_codec_side_plausibility_flag_adds_only_a_flag() -> None:
    impossible = make(Kind.PULSE_OXIMETRY, spo2_percent=127.0)
    flagged = with_plausibility_flag(impossible)
    assert flagged.flags == (Flag.IMPLAUSIBLE,)
    # Flags stay sorted, so the flagged reading equals itself read back from JSON.
    noisy = make(Kind.PULSE_OXIMETRY, spo2_percent=127.0, flags=(Flag.POOR_SIGNAL,))
    assert with_plausibility_flag(noisy).flags == (Flag.IMPLAUSIBLE, Flag.POOR_SIGNAL)
    assert flagged.model_dump(exclude={"flags"}) == impossible.model_dump(exclude={"flags"})
    possible = make(Kind.PULSE_OXIMETRY, spo2_percent=85.0)
    assert with_plausibility_flag(possible) is possible
    # The specific reason is given, not a generic "implausible".
    assert validate(flagged).reasons == (
        "SpO2 127 % is not possible: expected more than 0 and at most 100 %",)


def test_live_cuff_pressure_is_never_clinically_flagged() -> None:
    assert validate(make(Kind.CUFF_PRESSURE, cuff_pressure_mmhg=250.0)) == Verdict(
        status="accepted")
