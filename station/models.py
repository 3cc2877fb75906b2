"""The canonical reading: what every codec produces, in canonical units."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    field_validator,
    model_serializer,
)

from station.units import Unit


class Kind(StrEnum):
    BLOOD_PRESSURE = "blood_pressure"
    CUFF_PRESSURE = "cuff_pressure"  # live, during inflation; never a vital sign
    PULSE_OXIMETRY = "pulse_oximetry"
    TEMPERATURE = "temperature"
    BODY_WEIGHT = "body_weight"
    # Entered by hand on the station (no device measures these here)
    BODY_HEIGHT = "body_height"
    RESPIRATORY_RATE = "respiratory_rate"
    PAIN_SEVERITY = "pain_severity"
    HEAD_CIRCUMFERENCE = "head_circumference"


class Flag(StrEnum):
    """Closed vocabulary of what a device (or the station) says about one reading.

    Grouped by where they come from; a codec maps every status bit it knows to one of these
    and never invents a string.
    """

    # Blood-pressure measurement status (GATT 0x2A35 status bits; NIBP module status)
    BODY_MOVEMENT = "body_movement"
    CUFF_TOO_LOOSE = "cuff_too_loose"
    IRREGULAR_PULSE = "irregular_pulse"
    PULSE_RATE_ABOVE_RANGE = "pulse_rate_above_range"
    PULSE_RATE_BELOW_RANGE = "pulse_rate_below_range"
    IMPROPER_POSITION = "improper_position"
    # Where the reading came from
    FROM_STORAGE = "from_storage"
    CLOCK_NOT_SET = "clock_not_set"
    # Measurement state and validity (PLX measurement status, serial status bytes)
    MEASUREMENT_ONGOING = "measurement_ongoing"
    EARLY_ESTIMATE = "early_estimate"
    VALIDATED = "validated"
    FULLY_QUALIFIED = "fully_qualified"
    # PLX continuous (0x2A5F) sends extra SpO2/PR pairs averaged faster or slower than normal
    FAST_RESPONSE = "fast_response"
    SLOW_RESPONSE = "slow_response"
    DEMO_DATA = "demo_data"
    TESTING_DATA = "testing_data"
    CALIBRATION_ONGOING = "calibration_ongoing"
    MEASUREMENT_UNAVAILABLE = "measurement_unavailable"
    QUESTIONABLE = "questionable"
    INVALID = "invalid"
    MEASUREMENT_UNSUCCESSFUL = "measurement_unsuccessful"
    # Signal and sensor (PLX device and sensor status, Nonin/Masimo status)
    EXTENDED_DISPLAY_UPDATE = "extended_display_update"
    EQUIPMENT_MALFUNCTION = "equipment_malfunction"
    SIGNAL_PROCESSING_IRREGULARITY = "signal_processing_irregularity"
    INADEQUATE_SIGNAL = "inadequate_signal"
    POOR_SIGNAL = "poor_signal"
    LOW_PERFUSION = "low_perfusion"
    MARGINAL_PERFUSION = "marginal_perfusion"
    ERRATIC_SIGNAL = "erratic_signal"
    NON_PULSATILE_SIGNAL = "non_pulsatile_signal"
    QUESTIONABLE_PULSE = "questionable_pulse"
    SIGNAL_ANALYSIS_ONGOING = "signal_analysis_ongoing"
    INTERFERENCE = "interference"
    SENSOR_UNCONNECTED_TO_USER = "sensor_unconnected_to_user"
    UNKNOWN_SENSOR = "unknown_sensor"
    SENSOR_DISPLACED = "sensor_displaced"
    SENSOR_MALFUNCTION = "sensor_malfunction"
    SENSOR_DISCONNECTED = "sensor_disconnected"
    SENSOR_ALARM = "sensor_alarm"
    SENSOR_LIFE_EXPIRED = "sensor_life_expired"
    AMBIENT_LIGHT = "ambient_light"
    ARTIFACT = "artifact"
    OUT_OF_TRACK = "out_of_track"
    PULSE_SEARCH = "pulse_search"
    LOW_SIGNAL_IQ = "low_signal_iq"
    # Device alarms and power
    ALARM_ACTIVE = "alarm_active"
    ALARM_SILENCED = "alarm_silenced"
    SPO2_HIGH_ALARM = "spo2_high_alarm"
    SPO2_LOW_ALARM = "spo2_low_alarm"
    PULSE_HIGH_ALARM = "pulse_high_alarm"
    PULSE_LOW_ALARM = "pulse_low_alarm"
    LOW_BATTERY = "low_battery"
    CRITICAL_BATTERY = "critical_battery"
    # Scales
    IN_MOTION = "in_motion"
    OVER_RANGE = "over_range"
    UNDER_RANGE = "under_range"
    ZERO_ERROR = "zero_error"
    TARE_ERROR = "tare_error"
    NET_WEIGHT = "net_weight"
    # Set by the station, not the device
    OUTSIDE_DEVICE_RANGE = "outside_device_range"  # beyond the manufacturer's stated range
    IMPLAUSIBLE = "implausible"  # a value no human body produces (see station.validation)


class TemperatureSite(StrEnum):
    """Temperature Type characteristic (0x2A1D) values, 1..9 in this order."""

    ARMPIT = "armpit"
    BODY = "body"
    EAR = "ear"
    FINGER = "finger"
    GI_TRACT = "gi_tract"
    MOUTH = "mouth"
    RECTUM = "rectum"
    TOE = "toe"
    TYMPANUM = "tympanum"


class Method(StrEnum):
    DEVICE = "device"
    MANUAL = "manual"  # typed by the MA on the keypad


class Mode(StrEnum):
    """Whether a reading is of a real patient; simulated devices say `demo` (after sdc11073)."""

    REAL = "real"
    DEMO = "demo"
    TEST = "test"


class _ReadingBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # The device's own timestamp (its clock, local time, no zone), or None if it sent none.
    measured_at: datetime | None = None
    unit_as_sent: Unit
    flags: tuple[Flag, ...] = ()
    user_id: int | None = None
    codec: str
    codec_version: str
    # The exact bytes the reading came from, lower-case hex without separators.
    raw_hex: str = ""
    # The firmware-profile decoding quirks this reading was decoded under (e.g.
    # "big_endian:pulse_rate"; station.devices.codecs.quirks); empty when decoded strictly.
    quirks: tuple[str, ...] = ()
    method: Method = Method.DEVICE
    mode: Mode = Mode.REAL

    @field_validator("flags", mode="after")
    @classmethod
    def _sorted_unique(cls, flags: tuple[Flag, ...]) -> tuple[Flag, ...]:
        # Sorted and unique, so equal readings compare equal and print identically.
        return tuple(sorted(set(flags)))

    @field_validator("raw_hex", mode="after")
    @classmethod
    def _lower_hex(cls, raw_hex: str) -> str:
        cleaned = raw_hex.replace(" ", "").lower()
        if len(cleaned) % 2 or any(c not in "0123456789abcdef" for c in cleaned):
            raise ValueError("raw_hex must be hex digits, two per byte")
        return cleaned

    @model_serializer(mode="wrap")
    # No return annotation: one would replace the model's JSON schema with a plain object.
    def _quirks_only_when_used(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # A strictly decoded reading (nearly all) serialises exactly as before quirks existed.
        data = handler(self)
        if not self.quirks and isinstance(data, dict):
            data.pop("quirks", None)
        return data

    def has(self, flag: Flag) -> bool:
        return flag in self.flags


class BloodPressure(_ReadingBase):
    kind: Literal[Kind.BLOOD_PRESSURE] = Kind.BLOOD_PRESSURE
    systolic_mmhg: float | None
    diastolic_mmhg: float | None
    mean_arterial_mmhg: float | None = None
    pulse_rate_bpm: float | None = None


class CuffPressure(_ReadingBase):
    kind: Literal[Kind.CUFF_PRESSURE] = Kind.CUFF_PRESSURE
    cuff_pressure_mmhg: float | None


class PulseOximetry(_ReadingBase):
    kind: Literal[Kind.PULSE_OXIMETRY] = Kind.PULSE_OXIMETRY
    spo2_percent: float | None
    pulse_rate_bpm: float | None = None
    perfusion_index_percent: float | None = None


class Temperature(_ReadingBase):
    kind: Literal[Kind.TEMPERATURE] = Kind.TEMPERATURE
    temperature_c: float | None
    site: TemperatureSite | None = None


class BodyWeight(_ReadingBase):
    kind: Literal[Kind.BODY_WEIGHT] = Kind.BODY_WEIGHT
    weight_kg: float | None
    height_cm: float | None = None
    bmi_kg_m2: float | None = None


class BodyHeight(_ReadingBase):
    kind: Literal[Kind.BODY_HEIGHT] = Kind.BODY_HEIGHT
    height_cm: float | None


class RespiratoryRate(_ReadingBase):
    kind: Literal[Kind.RESPIRATORY_RATE] = Kind.RESPIRATORY_RATE
    respiratory_rate_per_min: float | None


class PainSeverity(_ReadingBase):
    """Patient-reported pain on the 0–10 numeric rating scale."""

    kind: Literal[Kind.PAIN_SEVERITY] = Kind.PAIN_SEVERITY
    pain_score: float | None


class HeadCircumference(_ReadingBase):
    """Occipital-frontal head circumference, measured with a tape (children under 3)."""

    kind: Literal[Kind.HEAD_CIRCUMFERENCE] = Kind.HEAD_CIRCUMFERENCE
    head_circumference_cm: float | None


AnyReading = (
    BloodPressure
    | CuffPressure
    | PulseOximetry
    | Temperature
    | BodyWeight
    | BodyHeight
    | RespiratoryRate
    | PainSeverity
    | HeadCircumference
)
Reading = Annotated[
    AnyReading,
    Field(discriminator="kind"),
]
READING_ADAPTER: TypeAdapter[Reading] = TypeAdapter(Reading)

READING_TYPES: dict[Kind, type[_ReadingBase]] = {
    Kind.BLOOD_PRESSURE: BloodPressure,
    Kind.CUFF_PRESSURE: CuffPressure,
    Kind.PULSE_OXIMETRY: PulseOximetry,
    Kind.TEMPERATURE: Temperature,
    Kind.BODY_WEIGHT: BodyWeight,
    Kind.BODY_HEIGHT: BodyHeight,
    Kind.RESPIRATORY_RATE: RespiratoryRate,
    Kind.PAIN_SEVERITY: PainSeverity,
    Kind.HEAD_CIRCUMFERENCE: HeadCircumference,
}

# The value fields of each kind, in display order: a model's float fields, each ending in its
# canonical unit (read from the models, so a new kind needs no entry here).
VALUE_FIELDS: dict[Kind, tuple[str, ...]] = {
    kind: tuple(n for n, f in model.model_fields.items() if f.annotation == (float | None))
    for kind, model in READING_TYPES.items()
}


def reading_to_json(reading: Reading) -> str:
    """One reading as the compact JSON line `station decode` prints and payloads carry."""
    return reading.model_dump_json()


def reading_from_json(text: str | bytes) -> Reading:
    return READING_ADAPTER.validate_json(text)
