"""The one table of point-of-care tests an MA runs in the room: a row per test (or dipstick pad).

Like station.vitals: each row says once what the test is called (a gettext msgid), its LOINC
code, the specimen, and what a result may be — a fixed set of answers (positive / negative /
invalid, or a dipstick pad's colour blocks) or a number with its UCUM unit, plausibility limits
and flags. `judge` turns what the MA tapped or typed into a `PocResult` with its flags, or
refuses it with what was expected. The FHIR builder (station.sync.fhir) and the schemas read
this table. Pure data and pure functions: no I/O, nothing here changes at run time.

Sources:
- LOINC codes: LOINC (loinc.org) long common names, as cited beside each row;
- presence answers: SNOMED CT 10828004 |Positive|, 260385009 |Negative| (qualifier values);
  an invalid test (no control line) is a result that is absent: FHIR R4 data-absent-reason
  `error`;
- dipstick colour blocks: the reagent-strip chart of a common 10-pad strip (Siemens
  Multistix 10 SG package insert, "Results" table); a strip with other blocks is typed as the
  nearest block;
- glucose: meter measuring ranges 10–600 mg/dL (Roche Accu-Chek Guide; narrower meters show
  LO/HI beyond theirs); ADA Standards of Care in Diabetes, section 6 "Glycemic Goals and
  Hypoglycemia": level 1 hypoglycaemia < 70 mg/dL, level 2 < 54 mg/dL; section 16
  (hyperglycaemic crises) uses glucose ≥ 250 mg/dL as the DKA threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from station.errors import StationError
from station.locale import N_
from station.validation import ClinicalFlag, Severity


class ResultKind(StrEnum):
    PRESENCE = "presence"  # positive / negative / invalid
    ORDINAL = "ordinal"  # a dipstick pad's colour blocks
    QUANTITY = "quantity"  # a number with a unit (glucose meter)


@dataclass(frozen=True)
class Step:
    """One answer a test can give: a colour block, positive, negative or invalid."""

    code: str  # what the screen and the contract carry ("neg", "trace", "1+", "6.5")
    label: str  # gettext msgid as printed on the chart
    abnormal: bool = False
    snomed: tuple[str, str] | None = None  # (code, display) where a qualifier value exists
    value: float | None = None  # the block's number for the pads FHIR sends as a quantity
    invalid: bool = False  # no result: the test failed (no control line)


NEGATIVE = ("260385009", "Negative")
POSITIVE = ("10828004", "Positive")
PRESENCE_STEPS = (
    Step("negative", N_("negative"), snomed=NEGATIVE),
    Step("positive", N_("positive"), abnormal=True, snomed=POSITIVE),
    Step("invalid", N_("invalid (no control line)"), invalid=True),
)


def _ordinal(*blocks: str) -> tuple[Step, ...]:
    """A pad's blocks: the first is negative, every other one is abnormal."""
    first, *rest = blocks
    return (Step(first, first, snomed=NEGATIVE), *(Step(b, b, abnormal=True) for b in rest))


def _numbers(*values: str, low: float, high: float) -> tuple[Step, ...]:
    return tuple(
        Step(v, v, value=float(v), abnormal=not low <= float(v) <= high) for v in values
    )


@dataclass(frozen=True)
class PocTest:
    key: str
    label: str  # gettext msgid
    loinc: str
    loinc_display: str
    kind: ResultKind
    specimen: str
    group: str = ""  # tests sharing one strip or cassette (urine_dipstick, influenza)
    steps: tuple[Step, ...] = ()
    ucum: str = ""  # QUANTITY: the unit; ORDINAL pads with numbers: their unit
    symbol: str = ""
    low: float = 0.0  # QUANTITY: plausibility (below: the meter cannot show it)
    high: float = 0.0
    source: str = ""

    def step(self, code: str) -> Step | None:
        return next((s for s in self.steps if s.code == code), None)


T = PocTest
TESTS: tuple[PocTest, ...] = (
    T("strep_a", N_("Rapid strep A"), "78012-2",
      "Streptococcus pyogenes Ag [Presence] in Throat by Rapid immunoassay",
      ResultKind.PRESENCE, N_("throat swab"), steps=PRESENCE_STEPS),
    T("influenza_a", N_("Influenza A"), "80382-5",
      "Influenza virus A Ag [Presence] in Upper respiratory specimen by Rapid immunoassay",
      ResultKind.PRESENCE, N_("nasal swab"), "influenza", PRESENCE_STEPS),
    T("influenza_b", N_("Influenza B"), "80383-3",
      "Influenza virus B Ag [Presence] in Upper respiratory specimen by Rapid immunoassay",
      ResultKind.PRESENCE, N_("nasal swab"), "influenza", PRESENCE_STEPS),
    T("covid_antigen", N_("COVID-19 antigen"), "94558-4",
      "SARS-CoV-2 (COVID-19) Ag [Presence] in Respiratory system specimen by Rapid immunoassay",
      ResultKind.PRESENCE, N_("nasal swab"), steps=PRESENCE_STEPS),
    T("urine_hcg", N_("Urine pregnancy (hCG)"), "2106-3",
      "Choriogonadotropin (pregnancy test) [Presence] in Urine",
      ResultKind.PRESENCE, N_("urine"), steps=PRESENCE_STEPS),
    T("glucose_capillary", N_("Fingerstick glucose"), "41653-7",
      "Glucose [Mass/volume] in Capillary blood by Glucometer",
      ResultKind.QUANTITY, N_("capillary blood"), ucum="mg/dL", symbol="mg/dL", low=10, high=600,
      source="meter measuring range 10–600 mg/dL (Accu-Chek Guide); LO/HI beyond it"),
    # Urine dipstick: one Observation per pad (LOINC "by Test strip" codes).
    T("urine_glucose", N_("Urine glucose"), "25428-4",
      "Glucose [Presence] in Urine by Test strip", ResultKind.ORDINAL, N_("urine"),
      "urine_dipstick", _ordinal(N_("negative"), "100 mg/dL", "250 mg/dL", "500 mg/dL",
                                 "1000 mg/dL", N_("2000 mg/dL or more"))),
    T("urine_bilirubin", N_("Urine bilirubin"), "5770-3",
      "Bilirubin.total [Presence] in Urine by Test strip", ResultKind.ORDINAL, N_("urine"),
      "urine_dipstick", _ordinal(N_("negative"), N_("small (+)"), N_("moderate (++)"),
                                 N_("large (+++)"))),
    T("urine_ketones", N_("Urine ketones"), "2514-8",
      "Ketones [Presence] in Urine by Test strip", ResultKind.ORDINAL, N_("urine"),
      "urine_dipstick", _ordinal(N_("negative"), N_("trace (5 mg/dL)"), N_("small (15 mg/dL)"),
                                 N_("moderate (40 mg/dL)"), N_("large (80 mg/dL)"),
                                 N_("large (160 mg/dL)"))),
    T("urine_specific_gravity", N_("Urine specific gravity"), "5811-5",
      "Specific gravity of Urine by Test strip", ResultKind.ORDINAL, N_("urine"),
      "urine_dipstick", _numbers("1.000", "1.005", "1.010", "1.015", "1.020", "1.025",
                                 "1.030", low=1.005, high=1.030), ucum="1", symbol=""),
    T("urine_blood", N_("Urine blood"), "5794-3",
      "Hemoglobin [Presence] in Urine by Test strip", ResultKind.ORDINAL, N_("urine"),
      "urine_dipstick", _ordinal(N_("negative"), N_("trace"), N_("small (+)"), N_("moderate (++)"),
                                 N_("large (+++)"))),
    T("urine_ph", N_("Urine pH"), "5803-2", "pH of Urine by Test strip", ResultKind.ORDINAL,
      N_("urine"), "urine_dipstick", _numbers("5.0", "6.0", "6.5", "7.0", "7.5", "8.0", "8.5",
                                          low=5.0, high=8.0), ucum="[pH]", symbol="pH"),
    T("urine_protein", N_("Urine protein"), "20454-5",
      "Protein [Presence] in Urine by Test strip", ResultKind.ORDINAL, N_("urine"),
      "urine_dipstick", _ordinal(N_("negative"), N_("trace"), "30 mg/dL (+)", "100 mg/dL (++)",
                                 "300 mg/dL (+++)", N_("2000 mg/dL or more (++++)"))),
    T("urine_urobilinogen", N_("Urine urobilinogen"), "5818-0",
      "Urobilinogen [Presence] in Urine by Test strip", ResultKind.ORDINAL, N_("urine"),
      "urine_dipstick", (Step("0.2 mg/dL", "0.2 mg/dL", snomed=NEGATIVE),
                         Step("1 mg/dL", "1 mg/dL", snomed=NEGATIVE),
                         *(Step(v, v, abnormal=True) for v in ("2 mg/dL", "4 mg/dL",
                                                               "8 mg/dL")))),
    T("urine_nitrite", N_("Urine nitrite"), "5802-4",
      "Nitrite [Presence] in Urine by Test strip", ResultKind.ORDINAL, N_("urine"),
      "urine_dipstick", (Step("negative", N_("negative"), snomed=NEGATIVE),
                         Step("positive", N_("positive"), abnormal=True, snomed=POSITIVE))),
    T("urine_leukocytes", N_("Urine leukocytes"), "5799-2",
      "Leukocyte esterase [Presence] in Urine by Test strip", ResultKind.ORDINAL, N_("urine"),
      "urine_dipstick", _ordinal(N_("negative"), N_("trace"), N_("small (+)"), N_("moderate (++)"),
                                 N_("large (+++)"))),
)
del T

# Glucose flags (mg/dL): (code, compare, threshold, severity, message).
GLUCOSE_RULES: tuple[tuple[str, str, float, Severity, str], ...] = (
    ("hypoglycaemia_level_2", "<", 54, Severity.CRITICAL,
     N_("glucose below 54 mg/dL: level 2 hypoglycaemia, tell the clinician now")),
    ("hypoglycaemia_level_1", "<", 70, Severity.WARNING,
     N_("glucose below 70 mg/dL: level 1 hypoglycaemia")),
    ("hyperglycaemia", ">=", 250, Severity.WARNING,
     N_("glucose 250 mg/dL or more: tell the clinician (ketones?)")),
)
KIT_LOT_MAX_CHARS = 40


class UnknownPocTestError(StationError, LookupError):
    """A test the table does not have."""


class PocResultError(StationError, ValueError):
    """A result the test cannot give: says what was wrong and what was expected."""


_TESTS = {t.key: t for t in TESTS}


def poc_test(key: str) -> PocTest:
    try:
        return _TESTS[key]
    except KeyError:
        raise UnknownPocTestError(
            f"no point-of-care test {key!r}; known: {', '.join(sorted(_TESTS))}"
        ) from None


def groups() -> dict[str, tuple[PocTest, ...]]:
    """Tests by what the MA runs at once ("" : a test of its own), in table order."""
    out: dict[str, list[PocTest]] = {}
    for t in TESTS:
        out.setdefault(t.group or t.key, []).append(t)
    return {k: tuple(v) for k, v in out.items()}


class PocResult(BaseModel):
    """One point-of-care result as recorded: typed by the MA (always manual)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    test: str  # a key of TESTS
    loinc: str
    result: str = ""  # the step's code (PRESENCE / ORDINAL)
    value: float | None = None  # QUANTITY, in `unit`
    unit: str = ""
    kit_lot: str = Field("", max_length=KIT_LOT_MAX_CHARS)
    abnormal: bool = False
    invalid: bool = False  # the test failed: no result to report
    flags: tuple[ClinicalFlag, ...] = ()

    @property
    def critical(self) -> bool:
        return any(f.severity == Severity.CRITICAL for f in self.flags)


def _glucose_flags(value: float) -> tuple[ClinicalFlag, ...]:
    for code, compare, threshold, severity, message in GLUCOSE_RULES:
        fires = value < threshold if compare == "<" else value >= threshold
        if fires:  # the first (most severe) rule that fires is the one said
            return (ClinicalFlag(code=code, severity=severity, message=message),)
    return ()


def judge(key: str, result: str | float, kit_lot: str = "") -> PocResult:
    """What the MA entered for one test, checked against the table; raises PocResultError
    (saying what was expected) for a result this test cannot give."""
    test = poc_test(key)
    lot = kit_lot.strip()
    if len(lot) > KIT_LOT_MAX_CHARS:
        raise PocResultError(
            N_("{label} is {count} characters: at most {most}").format(
                label=N_("kit lot"), count=len(lot), most=KIT_LOT_MAX_CHARS
            )
        )
    if test.kind is ResultKind.QUANTITY:
        if isinstance(result, str):
            try:
                value = float(result.strip())
            except ValueError:
                raise PocResultError(
                    N_("{test}: “{typed}” is not a number; expected {low}–{high} {unit}").format(
                        test=test.label, typed=result, low=f"{test.low:g}",
                        high=f"{test.high:g}", unit=test.symbol,
                    )
                ) from None
        else:
            value = float(result)
        if not test.low <= value <= test.high:
            raise PocResultError(
                N_(
                    "{test}: {value} {unit} is outside what a meter can show; expected "
                    "{low}–{high} {unit} (a meter's LO/HI is no number: send the patient for "
                    "a laboratory glucose)"
                ).format(
                    test=test.label, value=f"{value:g}", unit=test.symbol,
                    low=f"{test.low:g}", high=f"{test.high:g}",
                )
            )
        flags = _glucose_flags(value)
        return PocResult(test=test.key, loinc=test.loinc, value=value, unit=test.ucum,
                         kit_lot=lot, abnormal=bool(flags), flags=flags)
    step = test.step(str(result))
    if step is None:
        raise PocResultError(
            f"{test.key}: {result!r} is not a result of this test; expected one of "
            f"{', '.join(s.code for s in test.steps)}"
        )
    return PocResult(test=test.key, loinc=test.loinc, result=step.code, kit_lot=lot,
                     abnormal=step.abnormal, invalid=step.invalid,
                     unit=test.ucum if step.value is not None else "")
