"""Every plausibility and clinical limit, written out here with its source, tested at both sides.

The numbers in this file are NOT read from `station.validation` (or any code table): they are
copied from the sources cited on each row, so a reader can check each one against its source
and a changed limit in the code (e.g. weight 650 -> 6500 kg) turns a test red.

Sources used (abbreviations in the rows):
- README: this repository's README, "How a reading travels" → Validation (SpO2 > 100 %
  impossible, temperature outside 25–45 °C impossible, weight ≤ 0 impossible; systolic ≥ 180 or
  diastolic ≥ 120, SpO2 < 90 %, temperature ≥ 39.5 °C or < 35 °C, pulse < 40 or > 130 flagged).
- DESIGN: /work/shared/design.md "Patient safety rules" (systolic ≥ 180 or diastolic ≥ 120,
  SpO2 < 90 % flagged, prompt a retake and raise an alert: severity critical).
- AHA2017: Whelton et al., 2017 ACC/AHA High Blood Pressure guideline, §11.2 hypertensive
  crisis (SBP > 180 and/or DBP > 120; the station flags from 180 / 120 per DESIGN); AAP 2017
  (Flynn et al., Pediatrics 140(3)) Table 3: from age 13 the adult BP categories apply.
- PALS: AHA PALS Provider Manual 2020, "Normal heart rates" (awake: newborn–3 months 85–205,
  3 months–2 years 100–190, 2–10 years 60–140, > 10 years 60–100), "Normal respiratory rates"
  (infant < 1 y 30–53, toddler 1–2 y 22–37, preschooler 3–5 y 20–28, school-age 6–11 y 18–25,
  adolescent 12–15 y 12–20), "Definition of hypotension by systolic BP and age" (term
  neonates 0–28 days < 60, infants 1–12 months < 70, children 1–10 years < 70 + 2 × age in
  years, children > 10 years < 90 mmHg).
- NEWS2: Royal College of Physicians, National Early Warning Score 2 (2017) chart 1:
  respiration ≤ 8 or ≥ 25 scores 3; pulse ≤ 40 scores 3, ≥ 131 scores 3.
- AAP2021: Pantell et al., AAP clinical practice guideline, febrile infants 8–60 days (2021):
  temperature ≥ 38.0 °C in an infant is a fever needing the clinician.
- IDSA: fever ≥ 38.0 °C (IDSA guideline, fever in older adults, Clin Infect Dis 2009).
- HYPOTHERMIA: core temperature < 35 °C (AHA 2005 guidelines part 10.4, hypothermia).
- NRS: numeric rating scale 0–10, 7–10 severe pain (WHO / AHRQ pain scales).
- The remaining physical limits cite the record or instrument on their row.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from station.models import (
    AnyReading,
    BloodPressure,
    BodyHeight,
    BodyWeight,
    CuffPressure,
    HeadCircumference,
    Method,
    PainSeverity,
    PulseOximetry,
    RespiratoryRate,
    Temperature,
)
from station.units import Unit
from station.validation import plausibility_problems, validate
from station.vitals import FIELDS

# --------------------------------------------------------------------------------------------
# Readings built by hand, normal adult values, one field moved at a time
# --------------------------------------------------------------------------------------------

_COMMON = {"codec": "manual", "codec_version": "1", "method": Method.MANUAL}


def bp(
    systolic: float = 120.0,
    diastolic: float = 80.0,
    mean: float | None = None,
    pulse: float | None = None,
) -> BloodPressure:
    return BloodPressure(
        systolic_mmhg=systolic,
        diastolic_mmhg=diastolic,
        mean_arterial_mmhg=mean,
        pulse_rate_bpm=pulse,
        unit_as_sent=Unit.MMHG,
        **_COMMON,
    )  # type: ignore[arg-type]


def ox(spo2: float = 97.0, pulse: float | None = 70.0, pi: float | None = None) -> PulseOximetry:
    return PulseOximetry(
        spo2_percent=spo2,
        pulse_rate_bpm=pulse,
        perfusion_index_percent=pi,
        unit_as_sent=Unit.PERCENT,
        **_COMMON,
    )  # type: ignore[arg-type]


def temp(celsius: float) -> Temperature:
    return Temperature(temperature_c=celsius, unit_as_sent=Unit.CELSIUS, **_COMMON)  # type: ignore[arg-type]


def weight(kg: float = 70.0, height: float | None = None, bmi: float | None = None) -> BodyWeight:
    return BodyWeight(
        weight_kg=kg, height_cm=height, bmi_kg_m2=bmi, unit_as_sent=Unit.KG, **_COMMON
    )  # type: ignore[arg-type]


def height(cm: float) -> BodyHeight:
    return BodyHeight(height_cm=cm, unit_as_sent=Unit.CM, **_COMMON)  # type: ignore[arg-type]


def rr(per_min: float) -> RespiratoryRate:
    return RespiratoryRate(respiratory_rate_per_min=per_min, unit_as_sent=Unit.PER_MIN, **_COMMON)  # type: ignore[arg-type]


def pain(score: float) -> PainSeverity:
    return PainSeverity(pain_score=score, unit_as_sent=Unit.SCORE, **_COMMON)  # type: ignore[arg-type]


def head(cm: float) -> HeadCircumference:
    return HeadCircumference(head_circumference_cm=cm, unit_as_sent=Unit.CM, **_COMMON)  # type: ignore[arg-type]


def cuff(mmhg: float) -> CuffPressure:
    return CuffPressure(cuff_pressure_mmhg=mmhg, unit_as_sent=Unit.MMHG, **_COMMON)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# 1. Plausibility: the physically possible range of each field
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plausible:
    """`low` is the smallest possible value (or, `low_open`, the largest impossible one)."""

    field: str
    low: float
    high: float
    low_open: bool
    source: str


PLAUSIBLE = [
    Plausible(
        "systolic_mmhg",
        30,
        300,
        False,
        "IEC 80601-2-30: NIBP cuffs measure 0–300 mmHg; below 30 no pulse is detectable",
    ),
    Plausible(
        "diastolic_mmhg",
        10,
        250,
        False,
        "NIBP measuring ranges (SunTech Advantage manual: DIA 15–200; widened to 10–250)",
    ),
    Plausible(
        "mean_arterial_mmhg",
        15,
        280,
        False,
        "MAP lies between the plausible diastolic and systolic",
    ),
    Plausible(
        "cuff_pressure_mmhg",
        0,
        320,
        False,
        "IEC 80601-2-30 201.12.1.102: cuff pressure limited to 300 mmHg + safety margin",
    ),
    Plausible(
        "pulse_rate_bpm",
        20,
        300,
        False,
        "widest device ranges: Nonin 3230 spec 18–321, Masimo Rad-8 25–240 /min",
    ),
    Plausible(
        "spo2_percent",
        0,
        100,
        True,
        "README: SpO2 > 100 % impossible; a saturation of 0 is no saturation",
    ),
    Plausible(
        "perfusion_index_percent",
        0,
        20,
        False,
        "Masimo Rad-8 operator's manual: PI display range 0.02–20 %",
    ),
    Plausible("temperature_c", 25, 45, False, "README: temperature outside 25–45 °C impossible"),
    Plausible(
        "weight_kg",
        0,
        650,
        True,
        "README: weight ≤ 0 impossible; heaviest recorded human ≈ 635 kg (Guinness)",
    ),
    Plausible(
        "height_cm",
        20,
        275,
        False,
        "smallest newborns ≈ 20 cm; tallest recorded human 272 cm (Guinness)",
    ),
    Plausible("bmi_kg_m2", 5, 250, False, "from the weight and height limits above"),
    Plausible(
        "respiratory_rate_per_min",
        1,
        120,
        False,
        "PALS: newborns breathe up to ≈ 60/min; counts above 120 are miscounts",
    ),
    Plausible("pain_score", 0, 10, False, "NRS: the numeric rating scale runs 0 to 10"),
    Plausible("head_circumference_cm", 18, 65, False,
              "Fenton 2013: ≈ 20 cm at 22 weeks (preterm); adult heads ≈ 52–62 cm"),
]

EPSILON = 0.01


def _reading_with(field: str, value: float) -> list[AnyReading]:
    """Every reading kind that carries `field`, with `value` in it and the rest normal."""
    match field:
        case "systolic_mmhg":
            # Diastolic kept below so the systolic > diastolic order check stays quiet.
            return [bp(systolic=value, diastolic=10)]
        case "diastolic_mmhg":
            return [bp(systolic=300, diastolic=value)]
        case "mean_arterial_mmhg":
            return [bp(systolic=300, diastolic=10, mean=value)]
        case "cuff_pressure_mmhg":
            return [cuff(value)]
        case "pulse_rate_bpm":
            return [ox(pulse=value), bp(pulse=value)]
        case "spo2_percent":
            return [ox(spo2=value)]
        case "perfusion_index_percent":
            return [ox(pi=value)]
        case "temperature_c":
            return [temp(value)]
        case "weight_kg":
            return [weight(kg=value)]
        case "height_cm":
            return [height(value), weight(height=value)]
        case "bmi_kg_m2":
            return [weight(bmi=value)]
        case "respiratory_rate_per_min":
            return [rr(value)]
        case "pain_score":
            return [pain(value)]
        case "head_circumference_cm":
            return [head(value)]
    raise AssertionError(f"no reading carries {field}")


def test_every_value_field_has_a_plausibility_row() -> None:
    # The field list is the design's canonical reading (design.md) + the manual kinds; a new
    # registry field without a row here fails (only the names are read from the code).
    assert {row.field for row in PLAUSIBLE} == {f.field for f in FIELDS}
    assert {row.field for row in PLAUSIBLE} == {
        "head_circumference_cm",
        "systolic_mmhg",
        "diastolic_mmhg",
        "mean_arterial_mmhg",
        "cuff_pressure_mmhg",
        "pulse_rate_bpm",
        "spo2_percent",
        "perfusion_index_percent",
        "temperature_c",
        "weight_kg",
        "height_cm",
        "bmi_kg_m2",
        "respiratory_rate_per_min",
        "pain_score",
    }


@pytest.mark.parametrize("row", PLAUSIBLE, ids=lambda row: row.field)
def test_plausibility_limit_at_both_sides(row: Plausible) -> None:
    step = 1.0 if row.field == "pain_score" else EPSILON  # pain is a whole number
    inside = [row.low + step if row.low_open else row.low, row.high]
    outside = [row.low if row.low_open else row.low - step, row.high + step]
    for value in inside:
        for reading in _reading_with(row.field, value):
            assert plausibility_problems(reading) == [], (row.field, value, row.source)
    for value in outside:
        for reading in _reading_with(row.field, value):
            problems = plausibility_problems(reading)
            assert len(problems) == 1, (row.field, value, problems)
            # The reason names the value and the expected range.
            assert f"{value:g}" in problems[0] and f"{row.high:g}" in problems[0], problems
            verdict = validate(reading)
            assert verdict.status == "rejected" and problems[0] in verdict.reasons


# --------------------------------------------------------------------------------------------
# 2. Clinical flags: possible but alarming values, by age
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """At `fires` the flag `code` is raised with `severity`; at `quiet` it is not."""

    what: str
    build: str  # which reading: bp_sys, bp_dia, spo2, pulse, temp, rr, pain
    fires: float
    quiet: float
    age_years: float | None  # None: no age entered, adult limits
    code: str
    severity: str
    source: str


def _clinical_reading(build: str, value: float) -> AnyReading:
    match build:
        case "bp_sys":
            return bp(systolic=value, diastolic=40)
        case "bp_dia":
            return bp(systolic=value + 40, diastolic=value)
        case "spo2":
            return ox(spo2=value)
        case "pulse":
            return ox(pulse=value)
        case "temp":
            return temp(value)
        case "rr":
            return rr(value)
        case "pain":
            return pain(value)
        case "head":
            return head(value)
    raise AssertionError(build)


DAY = 1 / 365.25

ADULT_EDGES = [
    Edge(
        "SBP crisis",
        "bp_sys",
        180,
        179.9,
        None,
        "hypertensive_crisis",
        "critical",
        "DESIGN, README, AHA2017",
    ),
    Edge(
        "SBP crisis, 40 y",
        "bp_sys",
        180,
        179.9,
        40,
        "hypertensive_crisis",
        "critical",
        "DESIGN, AHA2017",
    ),
    Edge(
        "SBP crisis from 13 y",
        "bp_sys",
        180,
        179.9,
        13,
        "hypertensive_crisis",
        "critical",
        "AAP 2017: adult categories from 13",
    ),
    Edge(
        "DBP crisis",
        "bp_dia",
        120,
        119.9,
        None,
        "hypertensive_crisis",
        "critical",
        "DESIGN, README, AHA2017",
    ),
    Edge(
        "DBP crisis from 13 y",
        "bp_dia",
        120,
        119.9,
        13,
        "hypertensive_crisis",
        "critical",
        "AAP 2017: adult categories from 13",
    ),
    Edge(
        "SBP low, adult",
        "bp_sys",
        89.9,
        90,
        None,
        "hypotension",
        "warning",
        "AHA: hypotension SBP < 90 mmHg in adults",
    ),
    Edge("SpO2 low, adult", "spo2", 89.9, 90, None, "hypoxaemia", "critical", "DESIGN, README"),
    Edge("SpO2 low, 4 y", "spo2", 89.9, 90, 4, "hypoxaemia", "critical", "DESIGN (every age)"),
    Edge("SpO2 low, newborn", "spo2", 89.9, 90, 0, "hypoxaemia", "critical", "DESIGN"),
    Edge("pulse low, adult", "pulse", 39.9, 40, None, "bradycardia", "critical", "README"),
    Edge(
        "pulse high, adult",
        "pulse",
        130.1,
        130,
        None,
        "tachycardia",
        "critical",
        "README; NEWS2 ≥ 131 scores 3",
    ),
    Edge("high fever", "temp", 39.5, 39.49, None, "high_fever", "critical", "README"),
    Edge("high fever, 3 months", "temp", 39.5, 39.49, 0.25, "high_fever", "critical", "README"),
    Edge("fever", "temp", 38.0, 37.99, None, "fever", "warning", "IDSA"),
    Edge("fever, 3 months", "temp", 38.0, 37.99, 0.25, "fever", "warning", "IDSA, AAP2021"),
    Edge("febrile newborn", "temp", 38.0, 37.99, 0, "febrile_infant", "critical", "AAP2021"),
    Edge(
        "febrile infant, 0.24 y", "temp", 38.0, 37.99, 0.24, "febrile_infant", "critical", "AAP2021"
    ),
    Edge("febrile infant, high", "temp", 39.6, 37.99, 0.1, "febrile_infant", "critical", "AAP2021"),
    Edge("hypothermia, adult", "temp", 34.99, 35.0, None, "hypothermia", "critical", "README"),
    Edge("hypothermia, newborn", "temp", 34.99, 35.0, 0, "hypothermia", "critical", "HYPOTHERMIA"),
    Edge("breathing slow, adult", "rr", 8, 9, None, "bradypnoea", "critical", "NEWS2 ≤ 8"),
    Edge("breathing fast, adult", "rr", 25, 24, None, "tachypnoea", "critical", "NEWS2 ≥ 25"),
    Edge("severe pain", "pain", 7, 6, None, "severe_pain", "info", "NRS 7–10 severe"),
    Edge("severe pain, child", "pain", 7, 6, 8, "severe_pain", "info", "NRS 7–10 severe"),
]


# PALS bands: (from age, to age (exclusive), lowest normal, highest normal).
PALS_HEART_RATE = [
    (0.0, 0.25, 85, 205),  # newborn to 3 months
    (0.25, 2.0, 100, 190),  # 3 months to 2 years
    (2.0, 10.0, 60, 140),  # 2 to 10 years
    (10.0, 18.0, 60, 100),  # over 10 years (adult limits from 18: README)
]
PALS_RESPIRATORY_RATE = [
    (0.0, 1.0, 30, 53),  # infant
    (1.0, 3.0, 22, 37),  # toddler
    (3.0, 6.0, 20, 28),  # preschooler
    (6.0, 12.0, 18, 25),  # school-age
    (12.0, 18.0, 12, 20),  # adolescent
]
# (from age, to age, the lowest normal systolic, as a function of age)
PALS_HYPOTENSION = [
    (0.0, 28 * DAY, lambda age: 60.0),  # term neonates 0–28 days
    (28 * DAY, 1.0, lambda age: 70.0),  # infants 1–12 months
    (1.0, 10.0, lambda age: 70.0 + 2 * int(age)),  # 70 + 2 × age in years
    (10.0, 18.0, lambda age: 90.0),  # over 10 years
]


def _band_ages(start: float, end: float) -> list[float]:
    """The first day of a band, its middle and its last day: a moved band edge is seen."""
    return [start, (start + end) / 2, end - DAY]


def _pals_edges() -> list[Edge]:
    edges: list[Edge] = []
    for start, end, low, high in PALS_HEART_RATE:
        for age in _band_ages(start, end):
            edges.append(
                Edge(
                    f"pulse low {age:.3f} y",
                    "pulse",
                    low - 0.1,
                    low,
                    age,
                    "bradycardia",
                    "warning",
                    "PALS normal heart rates",
                )
            )
            edges.append(
                Edge(
                    f"pulse high {age:.3f} y",
                    "pulse",
                    high + 0.1,
                    high,
                    age,
                    "tachycardia",
                    "warning",
                    "PALS normal heart rates",
                )
            )
    for start, end, low, high in PALS_RESPIRATORY_RATE:
        for age in _band_ages(start, end):
            edges.append(
                Edge(
                    f"rr low {age:.3f} y",
                    "rr",
                    low - 1,
                    low,
                    age,
                    "bradypnoea",
                    "warning",
                    "PALS normal respiratory rates",
                )
            )
            edges.append(
                Edge(
                    f"rr high {age:.3f} y",
                    "rr",
                    high + 1,
                    high,
                    age,
                    "tachypnoea",
                    "warning",
                    "PALS normal respiratory rates",
                )
            )
    for start, end, minimum in PALS_HYPOTENSION:
        for age in _band_ages(start, end):
            limit = minimum(age)
            edges.append(
                Edge(
                    f"SBP low {age:.3f} y",
                    "bp_sys",
                    limit - 0.1,
                    limit,
                    age,
                    "hypotension",
                    "critical",
                    "PALS hypotension by age",
                )
            )
    return edges


CLINICAL_EDGES = ADULT_EDGES + _pals_edges()


@pytest.mark.parametrize("edge", CLINICAL_EDGES, ids=lambda edge: edge.what)
def test_clinical_flag_at_both_sides_of_its_limit(edge: Edge) -> None:
    fired = validate(_clinical_reading(edge.build, edge.fires), age_years=edge.age_years)
    assert fired.status == "accepted", fired
    assert (edge.code, edge.severity) in [(f.code, f.severity.value) for f in fired.flags], (
        edge,
        fired,
    )
    quiet = validate(_clinical_reading(edge.build, edge.quiet), age_years=edge.age_years)
    assert quiet.status == "accepted", quiet
    assert edge.code not in [f.code for f in quiet.flags], (edge, quiet)


# Ages where a rule stops applying: the same value raises nothing there.
AGE_BOUNDS = [
    ("no adult crisis line before 13 (AAP 2017)", "bp_sys", 185, 12.9, "hypertensive_crisis"),
    ("no adult DBP crisis line before 13 (AAP 2017)", "bp_dia", 125, 12.9, "hypertensive_crisis"),
    (
        "3-month-old: fever, not the febrile-infant rule (AAP2021: 8–60 days)",
        "temp",
        38.2,
        0.25,
        "febrile_infant",
    ),
    (
        "infant under 3 months: the febrile-infant rule, not high fever",
        "temp",
        39.6,
        0.1,
        "high_fever",
    ),
    (
        "adult: 45/min breathing is NEWS2-critical, never the infant band",
        "rr",
        45,
        30,
        "never-a-warning",
    ),
]


@pytest.mark.parametrize(
    ("what", "build", "value", "age", "absent"), AGE_BOUNDS, ids=[row[0] for row in AGE_BOUNDS]
)
def test_a_rule_does_not_apply_outside_its_ages(
    what: str, build: str, value: float, age: float, absent: str
) -> None:
    verdict = validate(_clinical_reading(build, value), age_years=age)
    assert absent not in [f.code for f in verdict.flags], (what, verdict)
    if build == "rr":
        assert [(f.code, f.severity.value) for f in verdict.flags] == [("tachypnoea", "critical")]


def test_a_child_gets_paediatric_not_adult_pulse_limits() -> None:
    # PALS 10–18 y: above 100 is fast (warning); README adult line 130 is critical.
    verdict = validate(ox(pulse=120), age_years=15)
    assert [(f.code, f.severity.value) for f in verdict.flags] == [("tachycardia", "warning")]
    assert validate(ox(pulse=120), age_years=18).flags == ()
