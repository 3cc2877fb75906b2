"""Weight Scale service: Weight Measurement 0x2A9D and Weight Scale Feature 0x2A9E."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict

from station.devices.codecs.gatt._frame import FrameReader, finish, reserved_bits_check
from station.devices.codecs.ieee11073 import UnknownTime, encode_date_time
from station.models import BodyWeight, Flag
from station.units import Unit, inch_to_cm, lb_to_kg

MEASUREMENT_CODEC: Final = "ble:2a9d"
FEATURE_CODEC: Final = "ble:2a9e"
VERSION: Final = "1.0"

FLAG_IMPERIAL: Final = 0x01
FLAG_TIMESTAMP: Final = 0x02
FLAG_USER_ID: Final = 0x04
FLAG_BMI_HEIGHT: Final = 0x08
KNOWN_FLAGS: Final = 0x0F

WEIGHT_UNSUCCESSFUL: Final = 0xFFFF
USER_UNKNOWN: Final = 0xFF
# The weight field has a fixed step whatever the scale's display resolution (WSS 1.0 §3.2):
# counts per unit, so a division gives the exact decimal (14500 / 200 = 72.5).
WEIGHT_COUNTS_PER_KG: Final = 200  # 0.005 kg
WEIGHT_COUNTS_PER_LB: Final = 100  # 0.01 lb
HEIGHT_COUNTS_PER_CM: Final = 10  # 0.001 m
HEIGHT_COUNTS_PER_INCH: Final = 10  # 0.1 in
BMI_COUNTS_PER_KG_M2: Final = 10  # 0.1 kg/m²


def decode_measurement(raw: bytes) -> list[BodyWeight]:
    """One 0x2A9D value to one BodyWeight reading in kg (and cm, kg/m²)."""
    reader = FrameReader(raw, MEASUREMENT_CODEC)
    flags = reader.u8("flags byte")
    reserved_bits_check(reader, flags, KNOWN_FLAGS, "flags")
    imperial = bool(flags & FLAG_IMPERIAL)
    weight_counts = reader.u16("weight (uint16, always present)")
    measured_at: datetime | None = None
    if flags & FLAG_TIMESTAMP:
        measured_at = reader.date_time("timestamp flag set")
    user_id: int | None = None
    if flags & FLAG_USER_ID:
        user = reader.u8("user id flag set")
        user_id = None if user == USER_UNKNOWN else user
    bmi: float | None = None
    height_cm: float | None = None
    if flags & FLAG_BMI_HEIGHT:
        bmi = reader.u16("BMI and height flag set") / BMI_COUNTS_PER_KG_M2
        height_counts = reader.u16("BMI and height flag set")
        height_cm = (
            inch_to_cm(height_counts / HEIGHT_COUNTS_PER_INCH)
            if imperial
            else height_counts / HEIGHT_COUNTS_PER_CM
        )
    reader.finish(f"flags 0x{flags:02x}")

    weight_kg: float | None
    status: tuple[Flag, ...] = ()
    if weight_counts == WEIGHT_UNSUCCESSFUL:
        weight_kg, status = None, (Flag.MEASUREMENT_UNSUCCESSFUL,)
    elif imperial:
        weight_kg = lb_to_kg(weight_counts / WEIGHT_COUNTS_PER_LB)
    else:
        weight_kg = weight_counts / WEIGHT_COUNTS_PER_KG
    reading = BodyWeight(
        weight_kg=weight_kg,
        height_cm=height_cm,
        bmi_kg_m2=bmi,
        measured_at=measured_at,
        unit_as_sent=Unit.LB if imperial else Unit.KG,
        flags=status,
        user_id=user_id,
        codec=MEASUREMENT_CODEC,
        codec_version=VERSION,
        raw_hex=raw.hex(),
    )
    return [finish(reading)]


def _counts(value: float, per_unit: int, field: str) -> int:
    counts = round(value * per_unit)
    if not 0 <= counts < 0xFFFF:
        raise ValueError(f"{field} {value!r} cannot be sent: expected 0–{0xFFFE / per_unit:g}")
    return counts


def encode_measurement(
    weight: float | None,
    *,
    imperial: bool = False,
    timestamp: datetime | UnknownTime | None = None,
    user_id: int | None = None,
    bmi: float | None = None,
    height: float | None = None,
) -> bytes:
    """A 0x2A9D value, for simulators: weight in kg (or lb if `imperial`), None = unsuccessful.

    Height is in metres (or inches if `imperial`); BMI and height go together or not at all.
    """
    if (bmi is None) != (height is None):
        raise ValueError("bmi and height are sent together: give both or neither")
    flags = FLAG_IMPERIAL if imperial else 0
    per_unit = WEIGHT_COUNTS_PER_LB if imperial else WEIGHT_COUNTS_PER_KG
    counts = WEIGHT_UNSUCCESSFUL if weight is None else _counts(weight, per_unit, "weight")
    tail = b""
    if timestamp is not None:
        flags |= FLAG_TIMESTAMP
        tail += encode_date_time(timestamp)
    if user_id is not None:
        if not 0 <= user_id <= 0xFF:
            raise ValueError(f"user id {user_id}: expected 0–254, or 255 for unknown")
        flags |= FLAG_USER_ID
        tail += bytes((user_id,))
    if bmi is not None and height is not None:
        flags |= FLAG_BMI_HEIGHT
        height_per_unit = HEIGHT_COUNTS_PER_INCH if imperial else 1000
        tail += _counts(bmi, BMI_COUNTS_PER_KG_M2, "BMI").to_bytes(2, "little")
        tail += _counts(height, height_per_unit, "height").to_bytes(2, "little")
    return bytes((flags,)) + counts.to_bytes(2, "little") + tail


# --------------------------------------------------------------------------------------------
# Weight Scale Feature 0x2A9E
# --------------------------------------------------------------------------------------------

# Display resolution codes (bits 3–6 and 7–9): (SI step, imperial step). 0 = not specified.
WEIGHT_RESOLUTION: Final[dict[int, tuple[float, float]]] = {
    1: (0.5, 1.0),
    2: (0.2, 0.5),
    3: (0.1, 0.2),
    4: (0.05, 0.1),
    5: (0.02, 0.05),
    6: (0.01, 0.02),
    7: (0.005, 0.01),
}
HEIGHT_RESOLUTION: Final[dict[int, tuple[float, float]]] = {
    1: (0.01, 1.0),
    2: (0.005, 0.5),
    3: (0.001, 0.1),
}


class WeightScaleFeature(BaseModel):
    """What a scale supports; the resolutions are display precision only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codec: str = FEATURE_CODEC
    codec_version: str = VERSION
    raw_features: int
    timestamp_supported: bool
    multiple_users_supported: bool
    bmi_supported: bool
    weight_resolution_kg: float | None  # None: not specified
    weight_resolution_lb: float | None
    height_resolution_m: float | None
    height_resolution_in: float | None
    raw_hex: str


def decode_feature(raw: bytes) -> WeightScaleFeature:
    reader = FrameReader(raw, FEATURE_CODEC)
    value = reader.u32("feature bits (uint32)")
    reader.finish("the feature field")
    weight_code = value >> 3 & 0x0F
    height_code = value >> 7 & 0x07
    if weight_code and weight_code not in WEIGHT_RESOLUTION:
        raise reader.fail(
            f"weight resolution code {weight_code} is reserved", expected="0–7 in bits 3–6"
        )
    if height_code and height_code not in HEIGHT_RESOLUTION:
        raise reader.fail(
            f"height resolution code {height_code} is reserved", expected="0–3 in bits 7–9"
        )
    weight_kg, weight_lb = WEIGHT_RESOLUTION.get(weight_code, (None, None))
    height_m, height_in = HEIGHT_RESOLUTION.get(height_code, (None, None))
    return WeightScaleFeature(
        raw_features=value,
        timestamp_supported=bool(value & 0x01),
        multiple_users_supported=bool(value & 0x02),
        bmi_supported=bool(value & 0x04),
        weight_resolution_kg=weight_kg,
        weight_resolution_lb=weight_lb,
        height_resolution_m=height_m,
        height_resolution_in=height_in,
        raw_hex=raw.hex(),
    )


def encode_feature(
    *,
    timestamp_supported: bool = False,
    multiple_users_supported: bool = False,
    bmi_supported: bool = False,
    weight_resolution_code: int = 0,
    height_resolution_code: int = 0,
) -> bytes:
    if weight_resolution_code and weight_resolution_code not in WEIGHT_RESOLUTION:
        raise ValueError(f"weight resolution code {weight_resolution_code}: expected 0–7")
    if height_resolution_code and height_resolution_code not in HEIGHT_RESOLUTION:
        raise ValueError(f"height resolution code {height_resolution_code}: expected 0–3")
    value = (
        int(timestamp_supported)
        | int(multiple_users_supported) << 1
        | int(bmi_supported) << 2
        | weight_resolution_code << 3
        | height_resolution_code << 7
    )
    return value.to_bytes(4, "little")
