"""Blood Pressure service: Measurement 0x2A35, Intermediate Cuff Pressure 0x2A36, Feature 0x2A49."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict

from station.devices.codecs.gatt._frame import (
    FrameReader,
    bits_to_flags,
    finish,
    flags_to_bits,
    reserved_bits_check,
)
from station.devices.codecs.ieee11073 import (
    SFLOAT_NAN,
    UnknownTime,
    decode_sfloat,
    encode_date_time,
    sfloat_bytes,
)
from station.devices.codecs.quirks import (
    NO_QUIRKS,
    CodecQuirks,
    QuirkName,
    QuirkSupport,
    applied,
)
from station.models import BloodPressure, CuffPressure, Flag
from station.units import Unit, kpa_to_mmhg

MEASUREMENT_CODEC: Final = "ble:2a35"
INTERMEDIATE_CODEC: Final = "ble:2a36"
FEATURE_CODEC: Final = "ble:2a49"
VERSION: Final = "1.0"

FLAG_KPA: Final = 0x01
FLAG_TIMESTAMP: Final = 0x02
FLAG_PULSE_RATE: Final = 0x04
FLAG_USER_ID: Final = 0x08
FLAG_STATUS: Final = 0x10
KNOWN_FLAGS: Final = 0x1F

USER_UNKNOWN: Final = 0xFF  # "unknown user" per the Blood Pressure Service

# Measurement Status bits; b3–4 are a 2-bit field handled separately.
STATUS_BITS: Final[dict[int, Flag]] = {
    0: Flag.BODY_MOVEMENT,
    1: Flag.CUFF_TOO_LOOSE,
    2: Flag.IRREGULAR_PULSE,
    5: Flag.IMPROPER_POSITION,
}
PULSE_RANGE_SHIFT: Final = 3
PULSE_RANGE: Final[dict[int, Flag]] = {
    1: Flag.PULSE_RATE_ABOVE_RANGE,
    2: Flag.PULSE_RATE_BELOW_RANGE,
}  # 0 = within range, 3 = reserved (no meaning, so no flag)


# What a profile may declare for 0x2A35 / 0x2A36 (see station.devices.codecs.quirks).
QUIRK_SUPPORT: Final = QuirkSupport(
    reserved_flag_mask=0xFF & ~KNOWN_FLAGS,
    big_endian=frozenset(
        {"systolic", "diastolic", "mean_arterial", "pulse_rate", "measurement_status"}
    ),
    present_without_flag=frozenset({"timestamp", "pulse_rate", "user_id", "measurement_status"}),
    zero_is_unavailable=frozenset({"mean_arterial", "pulse_rate"}),
)
_FLAG_OF: Final = {
    "timestamp": FLAG_TIMESTAMP,
    "pulse_rate": FLAG_PULSE_RATE,
    "user_id": FLAG_USER_ID,
    "measurement_status": FLAG_STATUS,
}


class _Fields:
    """The wire fields common to 0x2A35 and 0x2A36, before unit conversion.

    Strict unless a profile names quirks; every quirk that changed how this frame was read
    is listed in `applied` (a quirk the frame did not need is not).
    """

    def __init__(self, raw: bytes, codec: str, quirks: CodecQuirks = NO_QUIRKS) -> None:
        reader = FrameReader(raw, codec)
        self.applied: list[str] = []
        self.flags = reader.u8("flags byte")
        tolerated = self.flags & quirks.tolerated_flags & ~KNOWN_FLAGS
        if tolerated:
            self.applied.append(applied(QuirkName.RESERVED_FLAG_BITS, f"0x{tolerated:02x}"))
        reserved_bits_check(reader, self.flags, KNOWN_FLAGS | tolerated, "flags")
        big_endian = quirks.fields(QuirkName.BIG_ENDIAN)
        unflagged = quirks.fields(QuirkName.PRESENT_WITHOUT_FLAG)
        zero_is_nan = quirks.fields(QuirkName.ZERO_IS_UNAVAILABLE)

        def present(name: str, why: str) -> str | None:
            """Why the field is there (for a shortfall's message), or None when it is not."""
            if self.flags & _FLAG_OF[name]:
                return why
            if name in unflagged:
                self.applied.append(applied(QuirkName.PRESENT_WITHOUT_FLAG, name))
                return f"{name} (quirk present_without_flag)"
            return None

        def word(name: str, chunk: bytes) -> int:
            if name in big_endian:
                self.applied.append(applied(QuirkName.BIG_ENDIAN, name))
                return int.from_bytes(chunk, "big")
            return int.from_bytes(chunk, "little")

        def sfloat(name: str, chunk: bytes) -> float | None:
            value = word(name, chunk)
            if value == 0 and name in zero_is_nan:
                self.applied.append(applied(QuirkName.ZERO_IS_UNAVAILABLE, name))
                return None
            return decode_sfloat(value)

        compound = reader.take(6, "systolic, diastolic and mean arterial pressure (always present)")
        self.values = [
            sfloat(name, compound[i : i + 2])
            for i, name in ((0, "systolic"), (2, "diastolic"), (4, "mean_arterial"))
        ]
        self.kpa = bool(self.flags & FLAG_KPA)
        self.measured_at: datetime | None = None
        if why := present("timestamp", "timestamp flag set"):
            self.measured_at = reader.date_time(why)
        self.pulse_rate: float | None = None
        if why := present("pulse_rate", "pulse rate flag set"):
            self.pulse_rate = sfloat("pulse_rate", reader.take(2, why))
        self.user_id: int | None = None
        if why := present("user_id", "user id flag set"):
            user = reader.u8(why)
            self.user_id = None if user == USER_UNKNOWN else user
        self.status: tuple[Flag, ...] = ()
        if why := present("measurement_status", "measurement status flag set"):
            self.status = status_flags(word("measurement_status", reader.take(2, why)))
        reader.finish(f"flags 0x{self.flags:02x}" + (" under quirks" if self.applied else ""))

    def pressure(self, index: int) -> float | None:
        value = self.values[index]
        if value is None or not self.kpa:
            return value
        return kpa_to_mmhg(value)

    @property
    def unit(self) -> Unit:
        return Unit.KPA if self.kpa else Unit.MMHG


def status_flags(status: int) -> tuple[Flag, ...]:
    """Measurement Status word to flags; reserved bits carry no meaning and are ignored."""
    flags = list(bits_to_flags(status, STATUS_BITS))
    pulse_range = PULSE_RANGE.get(status >> PULSE_RANGE_SHIFT & 0b11)
    if pulse_range is not None:
        flags.append(pulse_range)
    return tuple(flags)


def decode_measurement(raw: bytes, quirks: CodecQuirks = NO_QUIRKS) -> list[BloodPressure]:
    """One 0x2A35 value to one BloodPressure reading in mmHg (under a profile's quirks)."""
    fields = _Fields(raw, MEASUREMENT_CODEC, quirks)
    reading = BloodPressure(
        systolic_mmhg=fields.pressure(0),
        diastolic_mmhg=fields.pressure(1),
        mean_arterial_mmhg=fields.pressure(2),
        pulse_rate_bpm=fields.pulse_rate,
        measured_at=fields.measured_at,
        unit_as_sent=fields.unit,
        flags=fields.status,
        user_id=fields.user_id,
        quirks=tuple(fields.applied),
        codec=MEASUREMENT_CODEC,
        codec_version=VERSION,
        raw_hex=raw.hex(),
    )
    return [finish(reading)]


def decode_intermediate(raw: bytes, quirks: CodecQuirks = NO_QUIRKS) -> list[CuffPressure]:
    """One 0x2A36 value: the systolic field is the live cuff pressure; the other two are unused.

    A pulse rate in an intermediate frame is a running estimate, not a vital sign: not kept.
    """
    fields = _Fields(raw, INTERMEDIATE_CODEC, quirks)
    reading = CuffPressure(
        cuff_pressure_mmhg=fields.pressure(0),
        measured_at=fields.measured_at,
        unit_as_sent=fields.unit,
        flags=fields.status,
        user_id=fields.user_id,
        quirks=tuple(fields.applied),
        codec=INTERMEDIATE_CODEC,
        codec_version=VERSION,
        raw_hex=raw.hex(),
    )
    return [finish(reading)]


def _encode(
    values: tuple[float | None, float | None, float | None],
    *,
    kpa: bool,
    timestamp: datetime | UnknownTime | None,
    pulse_rate_bpm: float | None,
    user_id: int | None,
    status: Iterable[Flag] | None,
    send_pulse_rate: bool,
) -> bytes:
    flags = FLAG_KPA if kpa else 0
    tail = b""
    if timestamp is not None:
        flags |= FLAG_TIMESTAMP
        tail += encode_date_time(timestamp)
    if send_pulse_rate:
        flags |= FLAG_PULSE_RATE
        tail += sfloat_bytes(pulse_rate_bpm)
    if user_id is not None:
        if not 0 <= user_id <= 0xFF:
            raise ValueError(f"user id {user_id}: expected 0–254, or 255 for unknown")
        flags |= FLAG_USER_ID
        tail += bytes((user_id,))
    if status is not None:
        flags |= FLAG_STATUS
        tail += encode_status(status).to_bytes(2, "little")
    return bytes((flags,)) + b"".join(sfloat_bytes(v) for v in values) + tail


def encode_status(status: Iterable[Flag]) -> int:
    """Flags to a Measurement Status word (the inverse of `status_flags`)."""
    wanted = set(status)
    word = 0
    for code, flag in PULSE_RANGE.items():
        if flag in wanted:
            word |= code << PULSE_RANGE_SHIFT
            wanted.discard(flag)
    return word | flags_to_bits(wanted, STATUS_BITS, "blood pressure measurement status")


def encode_measurement(
    systolic: float | None,
    diastolic: float | None,
    mean_arterial: float | None,
    *,
    kpa: bool = False,
    timestamp: datetime | UnknownTime | None = None,
    pulse_rate_bpm: float | None = None,
    user_id: int | None = None,
    status: Iterable[Flag] | None = None,
) -> bytes:
    """A 0x2A35 value, for simulators. Pressures are in the unit sent (mmHg, or kPa if `kpa`).

    None for a pressure sends NaN; optional fields are included when given.
    """
    return _encode(
        (systolic, diastolic, mean_arterial),
        kpa=kpa,
        timestamp=timestamp,
        pulse_rate_bpm=pulse_rate_bpm,
        user_id=user_id,
        status=status,
        send_pulse_rate=pulse_rate_bpm is not None,
    )


def encode_intermediate(
    cuff_pressure: float | None,
    *,
    kpa: bool = False,
    timestamp: datetime | UnknownTime | None = None,
    user_id: int | None = None,
    status: Iterable[Flag] | None = None,
) -> bytes:
    """A 0x2A36 value; the unused diastolic and MAP fields are sent as NaN, as BLS requires."""
    frame = _encode(
        (cuff_pressure, None, None),
        kpa=kpa,
        timestamp=timestamp,
        pulse_rate_bpm=None,
        user_id=user_id,
        status=status,
        send_pulse_rate=False,
    )
    assert int.from_bytes(frame[3:5], "little") == SFLOAT_NAN
    return frame


# --------------------------------------------------------------------------------------------
# Blood Pressure Feature 0x2A49
# --------------------------------------------------------------------------------------------


class BloodPressureFeature(BaseModel):
    """What a cuff can detect (read once at connect); shows which status flags can ever appear."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codec: str = FEATURE_CODEC
    codec_version: str = VERSION
    raw_features: int
    body_movement_detection: bool
    cuff_fit_detection: bool
    irregular_pulse_detection: bool
    pulse_rate_range_detection: bool
    measurement_position_detection: bool
    multiple_bonds: bool
    raw_hex: str


def decode_feature(raw: bytes) -> BloodPressureFeature:
    reader = FrameReader(raw, FEATURE_CODEC)
    value = reader.u16("feature bits (uint16)")
    reader.finish("the feature field")
    return BloodPressureFeature(
        raw_features=value,
        body_movement_detection=bool(value & 0x01),
        cuff_fit_detection=bool(value & 0x02),
        irregular_pulse_detection=bool(value & 0x04),
        pulse_rate_range_detection=bool(value & 0x08),
        measurement_position_detection=bool(value & 0x10),
        multiple_bonds=bool(value & 0x20),
        raw_hex=raw.hex(),
    )


def encode_feature(
    *,
    body_movement_detection: bool = False,
    cuff_fit_detection: bool = False,
    irregular_pulse_detection: bool = False,
    pulse_rate_range_detection: bool = False,
    measurement_position_detection: bool = False,
    multiple_bonds: bool = False,
) -> bytes:
    bits = (
        body_movement_detection,
        cuff_fit_detection,
        irregular_pulse_detection,
        pulse_rate_range_detection,
        measurement_position_detection,
        multiple_bonds,
    )
    return sum(int(on) << i for i, on in enumerate(bits)).to_bytes(2, "little")
