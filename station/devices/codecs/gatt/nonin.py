"""Nonin 3230 proprietary oximetry characteristic (0AAD7EA0-…): one 10-byte big-endian frame."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from station.devices.codecs.gatt._frame import FrameReader, bits_to_flags, finish, flags_to_bits
from station.models import Flag, PulseOximetry
from station.units import Unit

CODEC: Final = "ble:nonin-3230"
VERSION: Final = "1.0"
SERVICE_UUID: Final = "46a970e0-0d5f-11e2-8b5e-0002a5d5c51b"
MEASUREMENT_UUID: Final = "0aad7ea0-0d60-11e2-8e3c-0002a5d5c51b"

FRAME_LENGTH: Final = 0x0A
# Nonin's "missing data" values (the same convention as its serial data formats).
SPO2_MISSING: Final = 127
PULSE_RATE_MISSING: Final = 511
PAI_MISSING: Final = 0x7FFF
PAI_COUNTS_PER_PERCENT: Final = 100  # 0.01 %

STATUS_BITS: Final[dict[int, Flag]] = {
    1: Flag.LOW_PERFUSION,  # "weak signal": pulse amplitude 0.3 % modulation or less
    2: Flag.VALIDATED,  # "SmartPoint": the reading passed Nonin's spot-check algorithm
    3: Flag.PULSE_SEARCH,  # searching for consecutive good pulses
    5: Flag.LOW_BATTERY,
}
SENSOR_CONNECTED_BIT: Final = 4  # 1 = finger correctly in place ("CorrectCheck")
# Bit 6 says the link is encrypted: a property of the connection, not of the reading.


def decode(raw: bytes) -> list[PulseOximetry]:
    reader = FrameReader(raw, CODEC)
    length = reader.uint(1, "length byte", byteorder="big")
    if length != FRAME_LENGTH:
        raise reader.fail(f"length byte 0x{length:02x}", expected="0x0a (a 10-byte frame)")
    status = reader.uint(1, "status byte (10-byte frame)", byteorder="big")
    reader.take(1, "battery voltage (10-byte frame)")  # device health, not a vital sign
    pai = reader.uint(2, "pulse amplitude index (10-byte frame)", byteorder="big")
    reader.take(2, "counter (10-byte frame)")
    spo2 = reader.uint(1, "SpO2 (10-byte frame)", byteorder="big")
    pulse_rate = reader.uint(2, "pulse rate (10-byte frame)", byteorder="big")
    reader.finish("the length byte 0x0a")
    flags = list(bits_to_flags(status, STATUS_BITS))
    if not status >> SENSOR_CONNECTED_BIT & 1:
        flags.append(Flag.SENSOR_UNCONNECTED_TO_USER)
    reading = PulseOximetry(
        spo2_percent=None if spo2 == SPO2_MISSING else float(spo2),
        pulse_rate_bpm=None if pulse_rate == PULSE_RATE_MISSING else float(pulse_rate),
        perfusion_index_percent=None if pai == PAI_MISSING else pai / PAI_COUNTS_PER_PERCENT,
        unit_as_sent=Unit.PERCENT,
        flags=tuple(flags),
        codec=CODEC,
        codec_version=VERSION,
        raw_hex=raw.hex(),
    )
    return [finish(reading)]


def encode(
    spo2: int | None,
    pulse_rate: int | None,
    *,
    pai_percent: float | None = None,
    counter: int = 0,
    battery_volts: float = 3.0,
    sensor_connected: bool = True,
    status: Iterable[Flag] = (),
) -> bytes:
    """A Nonin 3230 frame, for simulators; None sends Nonin's "missing" value."""
    bits = flags_to_bits(status, STATUS_BITS, "Nonin 3230 status")
    if sensor_connected:
        bits |= 1 << SENSOR_CONNECTED_BIT
    pai = PAI_MISSING if pai_percent is None else round(pai_percent * PAI_COUNTS_PER_PERCENT)
    return (
        bytes((FRAME_LENGTH, bits, round(battery_volts * 10)))
        + pai.to_bytes(2, "big")
        + (counter & 0xFFFF).to_bytes(2, "big")
        + bytes((SPO2_MISSING if spo2 is None else spo2,))
        + (PULSE_RATE_MISSING if pulse_rate is None else pulse_rate).to_bytes(2, "big")
    )
