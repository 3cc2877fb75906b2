"""Pulse Oximeter service: Spot-check 0x2A5E, Continuous 0x2A5F and PLX Features 0x2A60."""

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
    UnknownTime,
    decode_sfloat,
    encode_date_time,
    sfloat_bytes,
)
from station.models import Flag, Mode, PulseOximetry
from station.units import Unit

SPOT_CHECK_CODEC: Final = "ble:2a5e"
CONTINUOUS_CODEC: Final = "ble:2a5f"
FEATURES_CODEC: Final = "ble:2a60"
VERSION: Final = "1.0"

# Spot-check flags
SPOT_TIMESTAMP: Final = 0x01
SPOT_MEASUREMENT_STATUS: Final = 0x02
SPOT_DEVICE_STATUS: Final = 0x04
SPOT_PAI: Final = 0x08
SPOT_CLOCK_NOT_SET: Final = 0x10
SPOT_KNOWN_FLAGS: Final = 0x1F
# Continuous flags
CONT_FAST: Final = 0x01
CONT_SLOW: Final = 0x02
CONT_MEASUREMENT_STATUS: Final = 0x04
CONT_DEVICE_STATUS: Final = 0x08
CONT_PAI: Final = 0x10
CONT_KNOWN_FLAGS: Final = 0x1F

# Measurement Status (uint16); bits 0–4 are reserved.
MEASUREMENT_STATUS_BITS: Final[dict[int, Flag]] = {
    5: Flag.MEASUREMENT_ONGOING,
    6: Flag.EARLY_ESTIMATE,
    7: Flag.VALIDATED,
    8: Flag.FULLY_QUALIFIED,
    9: Flag.FROM_STORAGE,
    10: Flag.DEMO_DATA,
    11: Flag.TESTING_DATA,
    12: Flag.CALIBRATION_ONGOING,
    13: Flag.MEASUREMENT_UNAVAILABLE,
    14: Flag.QUESTIONABLE,
    15: Flag.INVALID,
}
# Device and Sensor Status (uint24); bits 16–23 are reserved.
DEVICE_STATUS_BITS: Final[dict[int, Flag]] = {
    0: Flag.EXTENDED_DISPLAY_UPDATE,
    1: Flag.EQUIPMENT_MALFUNCTION,
    2: Flag.SIGNAL_PROCESSING_IRREGULARITY,
    3: Flag.INADEQUATE_SIGNAL,
    4: Flag.POOR_SIGNAL,
    5: Flag.LOW_PERFUSION,
    6: Flag.ERRATIC_SIGNAL,
    7: Flag.NON_PULSATILE_SIGNAL,
    8: Flag.QUESTIONABLE_PULSE,
    9: Flag.SIGNAL_ANALYSIS_ONGOING,
    10: Flag.INTERFERENCE,
    11: Flag.SENSOR_UNCONNECTED_TO_USER,
    12: Flag.UNKNOWN_SENSOR,
    13: Flag.SENSOR_DISPLACED,
    14: Flag.SENSOR_MALFUNCTION,
    15: Flag.SENSOR_DISCONNECTED,
}


def _mode(flags: Iterable[Flag]) -> Mode:
    # A device that says its data is demo or test data is not measuring a patient.
    present = set(flags)
    if Flag.TESTING_DATA in present:
        return Mode.TEST
    if Flag.DEMO_DATA in present:
        return Mode.DEMO
    return Mode.REAL


def _reading(
    raw: bytes,
    codec: str,
    spo2: float | None,
    pulse_rate: float | None,
    *,
    pai: float | None = None,
    flags: tuple[Flag, ...] = (),
    measured_at: datetime | None = None,
) -> PulseOximetry:
    return finish(
        PulseOximetry(
            spo2_percent=spo2,
            pulse_rate_bpm=pulse_rate,
            perfusion_index_percent=pai,
            measured_at=measured_at,
            unit_as_sent=Unit.PERCENT,
            flags=flags,
            mode=_mode(flags),
            codec=codec,
            codec_version=VERSION,
            raw_hex=raw.hex(),
        )
    )


def decode_spot_check(raw: bytes) -> list[PulseOximetry]:
    """One 0x2A5E value to one PulseOximetry reading."""
    reader = FrameReader(raw, SPOT_CHECK_CODEC)
    flags = reader.u8("flags byte")
    reserved_bits_check(reader, flags, SPOT_KNOWN_FLAGS, "flags")
    spo2 = reader.sfloat("SpO2 (always present)")
    pulse_rate = reader.sfloat("pulse rate (always present)")
    measured_at: datetime | None = None
    if flags & SPOT_TIMESTAMP:
        measured_at = reader.date_time("timestamp flag set")
    status: list[Flag] = []
    if flags & SPOT_MEASUREMENT_STATUS:
        status += bits_to_flags(reader.u16("measurement status flag set"), MEASUREMENT_STATUS_BITS)
    if flags & SPOT_DEVICE_STATUS:
        status += bits_to_flags(reader.u24("device and sensor status flag set"), DEVICE_STATUS_BITS)
    pai = reader.sfloat("pulse amplitude index flag set") if flags & SPOT_PAI else None
    reader.finish(f"flags 0x{flags:02x}")
    if flags & SPOT_CLOCK_NOT_SET:
        status.append(Flag.CLOCK_NOT_SET)
    reading = _reading(
        raw,
        SPOT_CHECK_CODEC,
        spo2,
        pulse_rate,
        pai=pai,
        flags=tuple(status),
        measured_at=measured_at,
    )
    return [reading]


def decode_continuous(raw: bytes) -> list[PulseOximetry]:
    """One 0x2A5F value: the normal SpO2/PR pair, then the fast and slow pairs if present.

    The fast and slow pairs are the same measurement averaged differently: flagged
    fast_response / slow_response so nobody takes them for separate measurements. The
    status words describe the sensor and apply to every pair; the PAI goes with the normal one.
    """
    reader = FrameReader(raw, CONTINUOUS_CODEC)
    flags = reader.u8("flags byte")
    reserved_bits_check(reader, flags, CONT_KNOWN_FLAGS, "flags")
    normal = reader.take(4, "SpO2 and pulse rate, normal (always present)")
    pairs: list[tuple[bytes, Flag | None]] = [(normal, None)]
    if flags & CONT_FAST:
        pairs.append((reader.take(4, "SpO2PR-fast flag set"), Flag.FAST_RESPONSE))
    if flags & CONT_SLOW:
        pairs.append((reader.take(4, "SpO2PR-slow flag set"), Flag.SLOW_RESPONSE))
    status: list[Flag] = []
    if flags & CONT_MEASUREMENT_STATUS:
        status += bits_to_flags(reader.u16("measurement status flag set"), MEASUREMENT_STATUS_BITS)
    if flags & CONT_DEVICE_STATUS:
        status += bits_to_flags(reader.u24("device and sensor status flag set"), DEVICE_STATUS_BITS)
    pai = reader.sfloat("pulse amplitude index flag set") if flags & CONT_PAI else None
    reader.finish(f"flags 0x{flags:02x}")
    readings = []
    for pair, averaging in pairs:
        spo2 = decode_sfloat(int.from_bytes(pair[0:2], "little"))
        pulse_rate = decode_sfloat(int.from_bytes(pair[2:4], "little"))
        readings.append(
            _reading(
                raw,
                CONTINUOUS_CODEC,
                spo2,
                pulse_rate,
                pai=pai if averaging is None else None,
                flags=(*status, averaging) if averaging else tuple(status),
            )
        )
    return readings


def _status_tail(
    measurement_status: Iterable[Flag] | None, device_status: Iterable[Flag] | None
) -> bytes:
    tail = b""
    if measurement_status is not None:
        bits = flags_to_bits(measurement_status, MEASUREMENT_STATUS_BITS, "measurement status")
        tail += bits.to_bytes(2, "little")
    if device_status is not None:
        bits = flags_to_bits(device_status, DEVICE_STATUS_BITS, "device and sensor status")
        tail += bits.to_bytes(3, "little")
    return tail


def encode_spot_check(
    spo2: float | None,
    pulse_rate: float | None,
    *,
    timestamp: datetime | UnknownTime | None = None,
    measurement_status: Iterable[Flag] | None = None,
    device_status: Iterable[Flag] | None = None,
    pai: float | None = None,
    clock_not_set: bool = False,
) -> bytes:
    """A 0x2A5E value, for simulators; optional fields are included when given."""
    flags = (
        (SPOT_TIMESTAMP if timestamp is not None else 0)
        | (SPOT_MEASUREMENT_STATUS if measurement_status is not None else 0)
        | (SPOT_DEVICE_STATUS if device_status is not None else 0)
        | (SPOT_PAI if pai is not None else 0)
        | (SPOT_CLOCK_NOT_SET if clock_not_set else 0)
    )
    frame = bytes((flags,)) + sfloat_bytes(spo2) + sfloat_bytes(pulse_rate)
    if timestamp is not None:
        frame += encode_date_time(timestamp)
    frame += _status_tail(measurement_status, device_status)
    if pai is not None:
        frame += sfloat_bytes(pai)
    return frame


def encode_continuous(
    spo2: float | None,
    pulse_rate: float | None,
    *,
    fast: tuple[float | None, float | None] | None = None,
    slow: tuple[float | None, float | None] | None = None,
    measurement_status: Iterable[Flag] | None = None,
    device_status: Iterable[Flag] | None = None,
    pai: float | None = None,
) -> bytes:
    """A 0x2A5F value, for simulators; `fast`/`slow` are (SpO2, PR) pairs."""
    flags = (
        (CONT_FAST if fast is not None else 0)
        | (CONT_SLOW if slow is not None else 0)
        | (CONT_MEASUREMENT_STATUS if measurement_status is not None else 0)
        | (CONT_DEVICE_STATUS if device_status is not None else 0)
        | (CONT_PAI if pai is not None else 0)
    )
    frame = bytes((flags,)) + sfloat_bytes(spo2) + sfloat_bytes(pulse_rate)
    for pair in (fast, slow):
        if pair is not None:
            frame += sfloat_bytes(pair[0]) + sfloat_bytes(pair[1])
    frame += _status_tail(measurement_status, device_status)
    if pai is not None:
        frame += sfloat_bytes(pai)
    return frame


# --------------------------------------------------------------------------------------------
# PLX Features 0x2A60
# --------------------------------------------------------------------------------------------

FEATURE_MEASUREMENT_STATUS: Final = 0x0001
FEATURE_DEVICE_STATUS: Final = 0x0002


class PlxFeatures(BaseModel):
    """What an oximeter supports, and which status flags it can ever report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codec: str = FEATURES_CODEC
    codec_version: str = VERSION
    raw_features: int
    measurement_status_supported: bool
    device_status_supported: bool
    spot_check_storage_supported: bool
    spot_check_timestamp_supported: bool
    fast_response_supported: bool
    slow_response_supported: bool
    pai_supported: bool
    multiple_bonds_supported: bool
    raw_measurement_status_support: int | None
    supported_measurement_status: tuple[Flag, ...]
    raw_device_status_support: int | None
    supported_device_status: tuple[Flag, ...]
    raw_hex: str


def decode_features(raw: bytes) -> PlxFeatures:
    reader = FrameReader(raw, FEATURES_CODEC)
    value = reader.u16("supported features (uint16)")
    measurement_support: int | None = None
    device_support: int | None = None
    if value & FEATURE_MEASUREMENT_STATUS:
        measurement_support = reader.u16("measurement status support bit set")
    if value & FEATURE_DEVICE_STATUS:
        device_support = reader.u24("device and sensor status support bit set")
    reader.finish(f"features 0x{value:04x}")
    return PlxFeatures(
        raw_features=value,
        measurement_status_supported=bool(value & 0x01),
        device_status_supported=bool(value & 0x02),
        spot_check_storage_supported=bool(value & 0x04),
        spot_check_timestamp_supported=bool(value & 0x08),
        fast_response_supported=bool(value & 0x10),
        slow_response_supported=bool(value & 0x20),
        pai_supported=bool(value & 0x40),
        multiple_bonds_supported=bool(value & 0x80),
        raw_measurement_status_support=measurement_support,
        supported_measurement_status=bits_to_flags(
            measurement_support or 0, MEASUREMENT_STATUS_BITS
        ),
        raw_device_status_support=device_support,
        supported_device_status=bits_to_flags(device_support or 0, DEVICE_STATUS_BITS),
        raw_hex=raw.hex(),
    )


def encode_features(
    features: int,
    *,
    measurement_status_support: Iterable[Flag] | None = None,
    device_status_support: Iterable[Flag] | None = None,
) -> bytes:
    """A 0x2A60 value; bits 0 and 1 of `features` are set from the support lists given."""
    features &= ~(FEATURE_MEASUREMENT_STATUS | FEATURE_DEVICE_STATUS)
    if measurement_status_support is not None:
        features |= FEATURE_MEASUREMENT_STATUS
    if device_status_support is not None:
        features |= FEATURE_DEVICE_STATUS
    return features.to_bytes(2, "little") + _status_tail(
        measurement_status_support, device_status_support
    )
