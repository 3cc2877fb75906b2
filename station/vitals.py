"""The one table of vital signs: a row per measured field and a row per kind of reading.

Everything the station knows about a vital lives here once — its canonical unit and how it is
shown, its label (a gettext msgid), its plausibility limits with their source, its LOINC code
and UCUM unit, whether it can be typed and with which keypad. Models' checks, validation,
manual entry, the tiles and review, the FHIR Bundle and the JSON Schemas read it. Adding a
vital is a field row, a kind row, its reading model and its clinical rules.

Pure data: no I/O, nothing here changes at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from station.errors import StationError
from station.locale import N_
from station.models import Kind
from station.units import Unit


class Keypad(StrEnum):
    """Which on-screen pad a typed value takes."""

    INTEGER = "integer"  # digits only
    DECIMAL = "decimal"  # digits and one decimal point


class Converts(StrEnum):
    """Which display setting (`[display]` in station.toml) converts a field for the screen."""

    TEMPERATURE = "temperature_unit"  # °C or °F
    WEIGHT = "weight_unit"  # kg or lb
    LENGTH = "height_unit"  # cm or in


@dataclass(frozen=True)
class VitalField:
    """One measured value, in its canonical unit (the unit is in the field's name)."""

    field: str
    label: str  # gettext msgid, lower case, as it reads inside a sentence
    unit: Unit  # canonical unit (UCUM code)
    symbol: str  # how the canonical unit is shown on screen
    decimals: int  # shown rounded to this many decimals; the model never rounds
    low: float  # plausibility: below is physically impossible
    high: float
    source: str  # where the limits come from
    loinc: str | None = None  # the LOINC code it is sent under (None: not sent on its own)
    loinc_display: str = ""
    converts: Converts | None = None
    keypad: Keypad = Keypad.INTEGER
    low_exclusive: bool = False  # `low` itself is impossible too
    us_core_profile: str = ""  # the US Core profile its own Observation claims ("": none)

    def contains(self, value: float) -> bool:
        above_low = value > self.low if self.low_exclusive else value >= self.low
        return above_low and value <= self.high

    @property
    def text_unit(self) -> str:
        """The unit inside a sentence ("120 mmHg"); a score has none ("pain score 7")."""
        return "" if self.unit is Unit.SCORE else self.symbol

    def expected(self) -> str:
        if self.low_exclusive:
            return f"more than {self.low:g} and at most {self.high:g} {self.text_unit}".rstrip()
        return f"{self.low:g}–{self.high:g} {self.text_unit}".rstrip()


F = VitalField
FIELDS: tuple[VitalField, ...] = (
    F("systolic_mmhg", N_("systolic"), Unit.MMHG, "mmHg", 0, 30, 300,
      "oscillometric NIBP devices measure cuff pressure over 0–300 mmHg (IEC 80601-2-30 "
      "devices); below 30 no pulse is detectable", "8480-6", "Systolic blood pressure"),
    F("diastolic_mmhg", N_("diastolic"), Unit.MMHG, "mmHg", 0, 10, 250,
      "NIBP measurement ranges (e.g. SunTech Advantage: DIA 15–200, Omron 40–130)",
      "8462-4", "Diastolic blood pressure"),
    F("mean_arterial_mmhg", N_("mean arterial pressure"), Unit.MMHG, "mmHg", 0, 15, 280,
      "between the plausible DIA and SYS", "8478-0", "Mean blood pressure"),
    F("cuff_pressure_mmhg", N_("cuff pressure"), Unit.MMHG, "mmHg", 0, 0, 320,
      "cuffs are limited to 300 mmHg (+ overpressure safety margin)"),
    F("pulse_rate_bpm", N_("pulse"), Unit.PER_MIN, "/min", 0, 20, 300,
      "widest device ranges: Nonin 18–321, Masimo 25–240, NIBP 30–240", "8867-4", "Heart rate",
      us_core_profile="us-core-heart-rate"),
    F("spo2_percent", N_("SpO2"), Unit.PERCENT, "%", 0, 0, 100,
      "a saturation is a fraction of 100 %", "59408-5", "Oxygen saturation by pulse oximetry",
      low_exclusive=True, us_core_profile="us-core-pulse-oximetry"),
    F("perfusion_index_percent", N_("perfusion index"), Unit.PERCENT, "%", 1, 0, 20,
      "Masimo PI display range 0.02–20 %"),
    F("temperature_c", N_("temperature"), Unit.CELSIUS, "°C", 1, 25, 45,
      "outside 25–45 °C no patient is walking into a clinic; clinical thermometers measure "
      "about 25–44 °C", "8310-5", "Body temperature", Converts.TEMPERATURE, Keypad.DECIMAL,
      us_core_profile="us-core-body-temperature"),
    F("weight_kg", N_("weight"), Unit.KG, "kg", 1, 0, 650,
      "heaviest recorded human ≈ 635 kg; a weight of 0 means nobody is on the scale",
      "29463-7", "Body weight", Converts.WEIGHT, Keypad.DECIMAL, low_exclusive=True,
      us_core_profile="us-core-body-weight"),
    F("height_cm", N_("height"), Unit.CM, "cm", 1, 20, 275,
      "smallest newborns ≈ 20 cm; tallest recorded 272 cm", "8302-2", "Body height",
      Converts.LENGTH, Keypad.DECIMAL, us_core_profile="us-core-body-height"),
    F("bmi_kg_m2", N_("BMI"), Unit.KG_M2, "kg/m²", 1, 5, 250,
      "derived from the weight and height limits", "39156-5", "Body mass index (BMI) [Ratio]",
      us_core_profile="us-core-bmi"),
    F("respiratory_rate_per_min", N_("respiratory rate"), Unit.PER_MIN, "/min", 0, 1, 120,
      "newborns breathe up to ≈ 60/min; counts above 120 are miscounts", "9279-1",
      "Respiratory rate", us_core_profile="us-core-respiratory-rate"),
    F("pain_score", N_("pain score"), Unit.SCORE, "/10", 0, 0, 10,
      "the numeric rating scale runs 0 to 10", "72514-3",
      "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
    F("head_circumference_cm", N_("head circumference"), Unit.CM, "cm", 1, 18, 65,
      "a 22-week preterm newborn's head measures about 20 cm (Fenton 2013 preterm growth "
      "chart); adult heads about 52–62 cm", "9843-4", "Head Occipital-frontal circumference",
      Converts.LENGTH, Keypad.DECIMAL, us_core_profile="us-core-head-circumference"),
)
del F


@dataclass(frozen=True)
class VitalKind:
    """One kind of reading: which fields it carries and how the station shows and sends it."""

    kind: Kind
    title: str  # the tile's title (gettext msgid)
    tile: str | None  # the tile's key on the vitals screen (None: no tile of its own)
    required: tuple[str, ...]  # a reading of this kind is of no use without these
    typed: tuple[str, ...] = ()  # fields the MA can type, in keypad order (empty: device only)
    optional_typed: tuple[str, ...] = ()  # typed fields that may be left empty
    # Sent as one panel Observation with the fields as components: (LOINC, display, profile).
    panel: tuple[str, str, str] | None = None
    ages_years: tuple[float, float] | None = None  # shown only for [min, max) years of age
    ages_source: str = ""


K = VitalKind
KINDS: tuple[VitalKind, ...] = (
    K(Kind.BLOOD_PRESSURE, N_("Blood pressure"), "bp", ("systolic_mmhg", "diastolic_mmhg"),
      ("systolic_mmhg", "diastolic_mmhg", "pulse_rate_bpm"), ("pulse_rate_bpm",),
      ("85354-9", "Blood pressure panel", "us-core-blood-pressure")),
    K(Kind.CUFF_PRESSURE, N_("Cuff pressure"), None, ("cuff_pressure_mmhg",)),
    K(Kind.PULSE_OXIMETRY, N_("SpO2"), "spo2", ("spo2_percent",),
      ("spo2_percent", "pulse_rate_bpm"), ("pulse_rate_bpm",)),
    K(Kind.TEMPERATURE, N_("Temperature"), "temp", ("temperature_c",), ("temperature_c",),
      ()),
    K(Kind.BODY_WEIGHT, N_("Weight"), "weight", ("weight_kg",), ("weight_kg",)),
    K(Kind.BODY_HEIGHT, N_("Height"), "height", ("height_cm",), ("height_cm",)),
    K(Kind.RESPIRATORY_RATE, N_("Resp. rate"), "rr", ("respiratory_rate_per_min",),
      ("respiratory_rate_per_min",)),
    K(Kind.PAIN_SEVERITY, N_("Pain 0–10"), "pain", ("pain_score",), ("pain_score",)),
    K(Kind.HEAD_CIRCUMFERENCE, N_("Head circ."), "head", ("head_circumference_cm",),
      ("head_circumference_cm",), ages_years=(0, 3),
      ages_source="CDC growth charts: head circumference-for-age, birth to 36 months"),
)
del K


class UnknownVitalError(StationError, LookupError):
    """A field or kind the table does not have: an error, never a fallback to another."""


_FIELDS = {f.field: f for f in FIELDS}
_KINDS = {k.kind: k for k in KINDS}


def vital_field(name: str) -> VitalField:
    try:
        return _FIELDS[name]
    except KeyError:
        raise UnknownVitalError(
            f"no vital field {name!r}; known: {', '.join(sorted(_FIELDS))}"
        ) from None


def vital_kind(kind: Kind) -> VitalKind:
    try:
        return _KINDS[kind]
    except KeyError:
        raise UnknownVitalError(
            f"no vital kind {kind.value!r}; known: {', '.join(sorted(_KINDS))}"
        ) from None


def typed_kinds() -> tuple[VitalKind, ...]:
    """The kinds an MA can enter by hand, in table order."""
    return tuple(k for k in KINDS if k.typed)


def tiles() -> tuple[VitalKind, ...]:
    """The kinds with a tile of their own on the vitals screen, in table order."""
    return tuple(k for k in KINDS if k.tile is not None)


def shown_for_age(row: VitalKind, age_years: float) -> bool:
    """A kind measured only at some ages (head circumference: under 3) has no tile otherwise."""
    return row.ages_years is None or row.ages_years[0] <= age_years < row.ages_years[1]


# The unit a reading of each kind is in when typed in canonical units (its first value's).
CANONICAL_UNIT: dict[Kind, Unit] = {k.kind: vital_field(k.required[0]).unit for k in KINDS}
