"""Checks every reading: impossible ones rejected, alarming ones flagged, doubtful ones retaken.

Three separate questions, never mixed up:
1. *Plausibility*: could a human body produce this at all? If not, the reading is rejected
   with a reason. An abnormal value is NOT implausible: it is real and must reach the clinician.
2. *Clinical flags*: possible but alarming values are accepted and flagged with a severity;
   critical ones need the MA's explicit acknowledgement and raise an `alert`.
3. *Device quality*: what the device says about its own measurement (movement, loose cuff,
   poor signal...) becomes "retake suggested" in words an MA understands; a device that says
   its own measurement is invalid gets the reading rejected.

Every limit is a named row with its source beside it. Pure: values in, verdict out.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from station.models import AnyReading, Flag, Kind
from station.vitals import FIELDS, KINDS, VitalField

# --------------------------------------------------------------------------------------------
# 1. Plausibility: physically impossible values
# --------------------------------------------------------------------------------------------


# Plausibility limits, field labels and required fields: read from the one table of vitals.
Limit = VitalField
PLAUSIBLE_LIMITS: dict[str, VitalField] = {f.field: f for f in FIELDS}

# The value a reading must carry to be of any use, per kind.
REQUIRED_FIELDS: dict[Kind, tuple[str, ...]] = {k.kind: k.required for k in KINDS}

FIELD_LABELS: dict[str, str] = {f.field: f.label for f in FIELDS}


def _values(reading: AnyReading) -> dict[str, float | None]:
    return {name: getattr(reading, name) for name in PLAUSIBLE_LIMITS if hasattr(reading, name)}


def plausibility_problems(reading: AnyReading) -> list[str]:
    """Why a reading is physically impossible; empty when it is possible."""
    problems: list[str] = []
    values = _values(reading)
    for name, value in values.items():
        if value is None:
            continue
        limit = PLAUSIBLE_LIMITS[name]
        if not limit.contains(value):
            problems.append(
                f"{FIELD_LABELS[name]} {value:g} {limit.text_unit}".rstrip()
                + f" is not possible: expected {limit.expected()}"
            )
    if reading.kind == Kind.PAIN_SEVERITY and values.get("pain_score") is not None:
        score = values["pain_score"]
        if score is not None and score != int(score):
            problems.append(f"pain score {score:g} is not possible: expected a whole number 0–10")
    systolic, diastolic = values.get("systolic_mmhg"), values.get("diastolic_mmhg")
    if systolic is not None and diastolic is not None and systolic <= diastolic:
        problems.append(
            f"systolic {systolic:g} mmHg is not above diastolic {diastolic:g} mmHg: "
            "expected systolic > diastolic"
        )
    mean = values.get("mean_arterial_mmhg")
    if (
        mean is not None
        and systolic is not None
        and diastolic is not None
        and systolic > diastolic
        and not diastolic <= mean <= systolic
    ):
        problems.append(
            f"mean arterial pressure {mean:g} mmHg is not between diastolic {diastolic:g} "
            f"and systolic {systolic:g} mmHg"
        )
    return problems


def with_plausibility_flag(reading: AnyReading) -> AnyReading:
    """Codecs pass every reading through this: an impossible value leaves flagged `implausible`.

    The values are not touched (nothing measured is altered); only the flag is added.
    """
    if reading.kind == Kind.CUFF_PRESSURE or not plausibility_problems(reading):
        return reading
    # Rebuilt through validation (not model_copy) so the flags stay sorted and unique.
    data = reading.model_dump()
    data["flags"] = (*reading.flags, Flag.IMPLAUSIBLE)
    return type(reading).model_validate(data)


# --------------------------------------------------------------------------------------------
# 2. Clinical flags: possible but alarming values
# --------------------------------------------------------------------------------------------


class Severity(StrEnum):
    INFO = "info"  # worth the clinician's eye; no action at the station
    WARNING = "warning"  # retake or mention it
    CRITICAL = "critical"  # retake, tell the clinician now; needs acknowledgement, raises an alert


@dataclass(frozen=True)
class ClinicalRule:
    code: str
    field: str
    compare: Literal["<", ">=", ">"]
    threshold: float | Callable[[float], float]  # a number, or a function of age in years
    severity: Severity
    message: str
    min_age_years: float  # inclusive
    max_age_years: float  # exclusive
    source: str

    def applies_to(self, age_years: float) -> bool:
        return self.min_age_years <= age_years < self.max_age_years

    def limit_for(self, age_years: float) -> float:
        return self.threshold(age_years) if callable(self.threshold) else self.threshold

    def fires(self, value: float, age_years: float) -> bool:
        compare = {"<": operator.lt, ">=": operator.ge, ">": operator.gt}[self.compare]
        return bool(compare(value, self.limit_for(age_years)))


ADULT = 18.0
NEVER = 200.0  # upper age bound meaning "and older"
AHA = "AHA/ACC 2017 BP guideline: hypertensive crisis SBP > 180 and/or DBP > 120 (≥ used here)"
PALS_HR = "AHA PALS 2020, normal heart rates by age (awake)"
PALS_RR = "AHA PALS 2020, normal respiratory rates by age"
PALS_HYPOTENSION = "AHA PALS 2020, hypotension by systolic BP and age"
NEWS2 = "RCP NEWS2 (2017): respiration ≤ 8 or ≥ 25 scores 3"


def _rr(low: float, high: float, lo_age: float, hi_age: float, label: str) -> list[ClinicalRule]:
    return [
        ClinicalRule(
            "bradypnoea",
            "respiratory_rate_per_min",
            "<",
            low,
            Severity.WARNING,
            f"breathing slow for a {label} (below {low:g}/min) — recount and tell the clinician",
            lo_age,
            hi_age,
            PALS_RR,
        ),
        ClinicalRule(
            "tachypnoea",
            "respiratory_rate_per_min",
            ">",
            high,
            Severity.WARNING,
            f"breathing fast for a {label} (above {high:g}/min) — recount and tell the clinician",
            lo_age,
            hi_age,
            PALS_RR,
        ),
    ]


def _hr(low: float, high: float, lo_age: float, hi_age: float, label: str) -> list[ClinicalRule]:
    return [
        ClinicalRule(
            "bradycardia",
            "pulse_rate_bpm",
            "<",
            low,
            Severity.WARNING,
            f"pulse slow for a {label} (below {low:g}/min) — retake and tell the clinician",
            lo_age,
            hi_age,
            PALS_HR,
        ),
        ClinicalRule(
            "tachycardia",
            "pulse_rate_bpm",
            ">",
            high,
            Severity.WARNING,
            f"pulse fast for a {label} (above {high:g}/min) — retake and tell the clinician",
            lo_age,
            hi_age,
            PALS_HR,
        ),
    ]


def _pals_min_systolic(age_years: float) -> float:
    if age_years < 28 / 365.25:
        return 60.0
    if age_years < 1:
        return 70.0
    if age_years < 10:
        return 70.0 + 2.0 * int(age_years)
    return 90.0


CLINICAL_RULES: tuple[ClinicalRule, ...] = (
    # Blood pressure. AAP 2017: from age 13 the adult thresholds apply.
    ClinicalRule(
        "hypertensive_crisis",
        "systolic_mmhg",
        ">=",
        180,
        Severity.CRITICAL,
        "systolic 180 or above: hypertensive crisis — retake now and tell the clinician",
        13,
        NEVER,
        AHA,
    ),
    ClinicalRule(
        "hypertensive_crisis",
        "diastolic_mmhg",
        ">=",
        120,
        Severity.CRITICAL,
        "diastolic 120 or above: hypertensive crisis — retake now and tell the clinician",
        13,
        NEVER,
        AHA,
    ),
    ClinicalRule(
        "hypotension",
        "systolic_mmhg",
        "<",
        90,
        Severity.WARNING,
        "systolic below 90: low blood pressure — retake and tell the clinician",
        ADULT,
        NEVER,
        "AHA: hypotension SBP < 90 mmHg in adults",
    ),
    ClinicalRule(
        "hypotension",
        "systolic_mmhg",
        "<",
        _pals_min_systolic,
        Severity.CRITICAL,
        "systolic low for the child's age: hypotension — tell the clinician now",
        0,
        ADULT,
        PALS_HYPOTENSION,
    ),
    # Oxygen saturation, every age.
    ClinicalRule(
        "hypoxaemia",
        "spo2_percent",
        "<",
        90,
        Severity.CRITICAL,
        "SpO2 below 90 %: low oxygen — check the sensor, retake and tell the clinician now",
        0,
        NEVER,
        "BTS 2017 oxygen guideline; WHO pulse oximetry manual",
    ),
    # Pulse, adults (the limits) and children (PALS ranges).
    ClinicalRule(
        "bradycardia",
        "pulse_rate_bpm",
        "<",
        40,
        Severity.CRITICAL,
        "pulse below 40/min — retake and tell the clinician now",
        ADULT,
        NEVER,
        "NEWS2: pulse ≤ 40 scores 3",
    ),
    ClinicalRule(
        "tachycardia",
        "pulse_rate_bpm",
        ">",
        130,
        Severity.CRITICAL,
        "pulse above 130/min — retake and tell the clinician now",
        ADULT,
        NEVER,
        "NEWS2: pulse ≥ 131 scores 3",
    ),
    *_hr(85, 205, 0, 0.25, "baby under 3 months"),
    *_hr(100, 190, 0.25, 2, "child under 2"),
    *_hr(60, 140, 2, 10, "child of 2–9"),
    *_hr(60, 100, 10, ADULT, "child of 10–17"),
    # Temperature. Febrile infants under 3 months need the clinician at 38.0 °C (AAP 2021).
    ClinicalRule(
        "high_fever",
        "temperature_c",
        ">=",
        39.5,
        Severity.CRITICAL,
        "temperature 39.5 °C or above: high fever — tell the clinician now",
        0.25,
        NEVER,
        "NEWS2 scores ≥ 39.1 °C; 39.5 °C is this practice's alert line",
    ),
    ClinicalRule(
        "fever",
        "temperature_c",
        ">=",
        38.0,
        Severity.WARNING,
        "temperature 38.0 °C or above: fever",
        0.25,
        NEVER,
        "fever definition ≥ 38.0 °C (IDSA)",
    ),
    ClinicalRule(
        "febrile_infant",
        "temperature_c",
        ">=",
        38.0,
        Severity.CRITICAL,
        "fever in a baby under 3 months — tell the clinician now",
        0,
        0.25,
        "AAP 2021 clinical practice guideline, febrile infants 8–60 days",
    ),
    ClinicalRule(
        "hypothermia",
        "temperature_c",
        "<",
        35.0,
        Severity.CRITICAL,
        "temperature below 35.0 °C: hypothermia — retake and tell the clinician now",
        0,
        NEVER,
        "hypothermia definition < 35 °C core temperature",
    ),
    # Respiratory rate (entered by hand).
    ClinicalRule(
        "bradypnoea",
        "respiratory_rate_per_min",
        "<",
        9,
        Severity.CRITICAL,
        "breathing 8/min or slower — recount and tell the clinician now",
        ADULT,
        NEVER,
        NEWS2,
    ),
    ClinicalRule(
        "tachypnoea",
        "respiratory_rate_per_min",
        ">=",
        25,
        Severity.CRITICAL,
        "breathing 25/min or faster — recount and tell the clinician now",
        ADULT,
        NEVER,
        NEWS2,
    ),
    *_rr(30, 53, 0, 1, "baby under 1"),
    *_rr(22, 37, 1, 3, "child of 1–2"),
    *_rr(20, 28, 3, 6, "child of 3–5"),
    *_rr(18, 25, 6, 12, "child of 6–11"),
    *_rr(12, 20, 12, ADULT, "child of 12–17"),
    # Pain.
    ClinicalRule(
        "severe_pain",
        "pain_score",
        ">=",
        7,
        Severity.INFO,
        "severe pain (7 or more out of 10)",
        0,
        NEVER,
        "NRS: 7–10 is severe pain (WHO / AHRQ)",
    ),
)


# --------------------------------------------------------------------------------------------
# 3. Device quality: what the device says about its own measurement
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityRule:
    code: str
    message: str
    rejects: bool = False  # the device itself says the values are not a measurement


DEVICE_QUALITY: dict[Flag, QualityRule] = {
    Flag.BODY_MOVEMENT: QualityRule(
        "retake_body_movement", "patient moved during the measurement — retake?"
    ),
    Flag.CUFF_TOO_LOOSE: QualityRule("retake_cuff_loose", "cuff may be loose — retake?"),
    Flag.IRREGULAR_PULSE: QualityRule(
        "irregular_pulse", "irregular pulse detected — retake and tell the clinician"
    ),
    Flag.PULSE_RATE_ABOVE_RANGE: QualityRule(
        "retake_pulse_out_of_range", "cuff says the pulse was above its range — retake?"
    ),
    Flag.PULSE_RATE_BELOW_RANGE: QualityRule(
        "retake_pulse_out_of_range", "cuff says the pulse was below its range — retake?"
    ),
    Flag.IMPROPER_POSITION: QualityRule(
        "retake_position", "cuff not at heart level or arm not resting — retake?"
    ),
    Flag.MEASUREMENT_ONGOING: QualityRule(
        "retake_not_final", "not a final value yet — wait for the final reading"
    ),
    Flag.EARLY_ESTIMATE: QualityRule(
        "retake_not_final", "an early estimate, not a final value — wait or retake"
    ),
    Flag.SIGNAL_ANALYSIS_ONGOING: QualityRule(
        "retake_not_final", "device still analysing the signal — wait"
    ),
    Flag.IN_MOTION: QualityRule(
        "retake_scale_moving", "scale not settled (patient moving) — stand still and retake"
    ),
    Flag.QUESTIONABLE: QualityRule(
        "retake_questionable", "device is unsure of this value — retake?"
    ),
    Flag.QUESTIONABLE_PULSE: QualityRule("retake_questionable", "pulse is doubtful — retake?"),
    Flag.LOW_PERFUSION: QualityRule(
        "retake_low_perfusion",
        "weak pulse at the sensor (cold hand?) — warm the hand or try another finger",
    ),
    Flag.MARGINAL_PERFUSION: QualityRule(
        "retake_low_perfusion", "weak pulse at the sensor — try another finger"
    ),
    Flag.POOR_SIGNAL: QualityRule(
        "retake_poor_signal", "poor signal — keep the finger still and retake"
    ),
    Flag.INADEQUATE_SIGNAL: QualityRule(
        "retake_poor_signal", "poor signal — keep the finger still and retake"
    ),
    Flag.ERRATIC_SIGNAL: QualityRule("retake_poor_signal", "erratic signal — retake"),
    Flag.NON_PULSATILE_SIGNAL: QualityRule("retake_poor_signal", "no pulse at the sensor — retake"),
    Flag.SIGNAL_PROCESSING_IRREGULARITY: QualityRule(
        "retake_poor_signal", "signal irregular — retake"
    ),
    Flag.ARTIFACT: QualityRule("retake_poor_signal", "movement or noise in the signal — retake"),
    Flag.OUT_OF_TRACK: QualityRule(
        "retake_poor_signal", "oximeter lost the pulse — reposition the sensor and retake"
    ),
    Flag.LOW_SIGNAL_IQ: QualityRule("retake_poor_signal", "low signal quality — retake"),
    Flag.PULSE_SEARCH: QualityRule("retake_not_final", "oximeter still searching for a pulse"),
    Flag.INTERFERENCE: QualityRule(
        "retake_poor_signal", "interference (light or electrical) — shield the sensor"
    ),
    Flag.AMBIENT_LIGHT: QualityRule(
        "retake_poor_signal", "too much light on the sensor — shield it"
    ),
    Flag.SENSOR_DISPLACED: QualityRule(
        "retake_sensor", "sensor has slipped — reposition and retake"
    ),
    Flag.SENSOR_ALARM: QualityRule("retake_sensor", "sensor alarm — check the sensor and retake"),
    Flag.OUTSIDE_DEVICE_RANGE: QualityRule(
        "outside_device_range",
        "outside the range this device can measure — use another device",
        rejects=True,
    ),
    Flag.IMPLAUSIBLE: QualityRule("implausible", "value is not possible — retake", rejects=True),
    Flag.INVALID: QualityRule(
        "device_invalid", "device marked this measurement invalid — retake", rejects=True
    ),
    Flag.MEASUREMENT_UNSUCCESSFUL: QualityRule(
        "device_unsuccessful", "measurement did not succeed — retake", rejects=True
    ),
    Flag.MEASUREMENT_UNAVAILABLE: QualityRule(
        "device_unavailable", "device says no measurement is available", rejects=True
    ),
    Flag.EQUIPMENT_MALFUNCTION: QualityRule(
        "device_malfunction", "device reports a fault — call biomed", rejects=True
    ),
    Flag.SENSOR_MALFUNCTION: QualityRule(
        "device_malfunction", "sensor reports a fault — change the sensor", rejects=True
    ),
    Flag.SENSOR_DISCONNECTED: QualityRule("sensor_off", "sensor is not connected", rejects=True),
    Flag.SENSOR_UNCONNECTED_TO_USER: QualityRule(
        "sensor_off", "sensor is not on the patient", rejects=True
    ),
    Flag.UNKNOWN_SENSOR: QualityRule(
        "device_malfunction", "sensor not recognised by the device", rejects=True
    ),
    Flag.SENSOR_LIFE_EXPIRED: QualityRule(
        "device_malfunction", "sensor life expired — replace it", rejects=True
    ),
    Flag.CALIBRATION_ONGOING: QualityRule(
        "device_calibrating", "device is calibrating — wait", rejects=True
    ),
    Flag.DEMO_DATA: QualityRule(
        "device_demo", "device is in demo mode — not a patient measurement", rejects=True
    ),
    Flag.TESTING_DATA: QualityRule(
        "device_test", "device is in test mode — not a patient measurement", rejects=True
    ),
    Flag.OVER_RANGE: QualityRule("scale_over_range", "over the scale's capacity", rejects=True),
    Flag.UNDER_RANGE: QualityRule(
        "scale_under_range", "under the scale's range — zero the scale and retake", rejects=True
    ),
    Flag.ZERO_ERROR: QualityRule(
        "scale_zero_error", "scale could not zero — clear it and retake", rejects=True
    ),
    Flag.TARE_ERROR: QualityRule(
        "scale_tare_error", "scale tare failed — clear it and retake", rejects=True
    ),
}


# --------------------------------------------------------------------------------------------
# The verdict
# --------------------------------------------------------------------------------------------


class ClinicalFlag(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    severity: Severity
    message: str

    @property
    def retake(self) -> bool:
        """Whether the station suggests taking it again: every warning and critical flag."""
        return self.severity != Severity.INFO


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["accepted", "rejected"]
    reasons: tuple[str, ...] = ()
    flags: tuple[ClinicalFlag, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def critical(self) -> bool:
        """Needs the MA's explicit acknowledgement and raises an alert."""
        return any(f.severity == Severity.CRITICAL for f in self.flags)

    @property
    def retake_suggested(self) -> bool:
        return any(f.retake for f in self.flags)


class DeviceRanges(NamedTuple):
    """A bound device's manufacturer-stated measuring ranges, from its firmware profile."""

    profile: str  # the firmware profile id, named in the refusal
    ranges: Mapping[str, tuple[float, float]]  # field -> (low, high)


def validate(
    reading: AnyReading,
    *,
    age_years: float | None = None,
    device_ranges: Mapping[str, tuple[float, float]] | DeviceRanges | None = None,
) -> Verdict:
    """Run the three checks. `age_years` None means adult limits (the MA is told to enter age).

    `device_ranges` are the manufacturer's stated measurement ranges (from the firmware
    profile), field -> (low, high), or a `DeviceRanges` naming the profile; a value outside
    them is not a measurement.
    """
    reasons: list[str] = []
    for name in REQUIRED_FIELDS[reading.kind]:
        if getattr(reading, name) is None:
            reasons.append(f"no {FIELD_LABELS[name]} value: the device marked it not available")
    reasons.extend(plausibility_problems(reading))
    profile = device_ranges.profile if isinstance(device_ranges, DeviceRanges) else None
    ranges = device_ranges.ranges if isinstance(device_ranges, DeviceRanges) else device_ranges
    whose = f"this device's measuring range ({profile})" if profile else "this device's range"
    for name, (low, high) in (ranges or {}).items():
        value = getattr(reading, name, None)
        if value is not None and not low <= value <= high:
            limit = PLAUSIBLE_LIMITS.get(name)
            unit = limit.text_unit if limit else ""
            reasons.append(
                f"{FIELD_LABELS.get(name, name)} {value:g} {unit} is outside {whose}: "
                f"expected {low:g}–{high:g} {unit}".replace("  ", " ")
            )

    flags: list[ClinicalFlag] = []
    seen_codes: set[str] = set()
    for flag in reading.flags:
        rule = DEVICE_QUALITY.get(flag)
        if rule is None:
            continue
        if rule.rejects:
            if flag != Flag.IMPLAUSIBLE or not reasons:
                reasons.append(rule.message)
            continue
        if rule.code not in seen_codes:
            seen_codes.add(rule.code)
            flags.append(
                ClinicalFlag(code=rule.code, severity=Severity.WARNING, message=rule.message)
            )

    if reasons:
        return Verdict(status="rejected", reasons=tuple(reasons), flags=tuple(flags))

    age = ADULT if age_years is None else age_years
    fired_fields: set[str] = set()
    if reading.kind != Kind.CUFF_PRESSURE:
        # Rules are ordered most severe first per field: one flag per field (39.8 °C is a
        # high fever, not also a fever), one per code (SYS and DIA crisis are one crisis).
        for clinical in CLINICAL_RULES:
            value = getattr(reading, clinical.field, None)
            if value is None or not clinical.applies_to(age) or not clinical.fires(value, age):
                continue
            if clinical.code in seen_codes or clinical.field in fired_fields:
                continue
            seen_codes.add(clinical.code)
            fired_fields.add(clinical.field)
            flags.append(
                ClinicalFlag(
                    code=clinical.code,
                    severity=clinical.severity,
                    message=clinical.message,
                )
            )
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    flags.sort(key=lambda f: order[f.severity])
    return Verdict(status="accepted", flags=tuple(flags))
