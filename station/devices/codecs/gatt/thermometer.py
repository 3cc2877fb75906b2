"""Health Thermometer service: Temperature Measurement 0x2A1C and Temperature Type 0x2A1D."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict

from station.devices.codecs.gatt._frame import FrameReader, finish, reserved_bits_check
from station.devices.codecs.ieee11073 import UnknownTime, encode_date_time, float_bytes
from station.models import Temperature, TemperatureSite
from station.units import Unit, fahrenheit_to_celsius

MEASUREMENT_CODEC: Final = "ble:2a1c"
TYPE_CODEC: Final = "ble:2a1d"
VERSION: Final = "1.0"

FLAG_FAHRENHEIT: Final = 0x01
FLAG_TIMESTAMP: Final = 0x02
FLAG_TYPE: Final = 0x04
KNOWN_FLAGS: Final = 0x07

# Temperature Type codes 1..9, in the order of the TemperatureSite enum.
SITE_BY_CODE: Final[dict[int, TemperatureSite]] = {
    code: site for code, site in enumerate(TemperatureSite, start=1)
}
CODE_BY_SITE: Final[dict[TemperatureSite, int]] = {s: c for c, s in SITE_BY_CODE.items()}


def _site(reader: FrameReader, code: int) -> TemperatureSite:
    try:
        return SITE_BY_CODE[code]
    except KeyError:
        raise reader.fail(
            f"temperature type {code} is reserved", expected="1–9 (armpit … tympanum)"
        ) from None


def decode_measurement(raw: bytes) -> list[Temperature]:
    """One 0x2A1C value to one Temperature reading in °C."""
    reader = FrameReader(raw, MEASUREMENT_CODEC)
    flags = reader.u8("flags byte")
    reserved_bits_check(reader, flags, KNOWN_FLAGS, "flags")
    value = reader.float32("temperature (FLOAT, always present)")
    measured_at: datetime | None = None
    if flags & FLAG_TIMESTAMP:
        measured_at = reader.date_time("timestamp flag set")
    site: TemperatureSite | None = None
    if flags & FLAG_TYPE:
        site = _site(reader, reader.u8("temperature type flag set"))
    reader.finish(f"flags 0x{flags:02x}")
    fahrenheit = bool(flags & FLAG_FAHRENHEIT)
    if value is not None and fahrenheit:
        value = fahrenheit_to_celsius(value)
    reading = Temperature(
        temperature_c=value,
        site=site,
        measured_at=measured_at,
        unit_as_sent=Unit.FAHRENHEIT if fahrenheit else Unit.CELSIUS,
        codec=MEASUREMENT_CODEC,
        codec_version=VERSION,
        raw_hex=raw.hex(),
    )
    return [finish(reading)]


def encode_measurement(
    temperature: float | None,
    *,
    fahrenheit: bool = False,
    timestamp: datetime | UnknownTime | None = None,
    site: TemperatureSite | None = None,
) -> bytes:
    """A 0x2A1C value, for simulators; the temperature is in the unit sent (°C, or °F)."""
    flags = FLAG_FAHRENHEIT if fahrenheit else 0
    tail = b""
    if timestamp is not None:
        flags |= FLAG_TIMESTAMP
        tail += encode_date_time(timestamp)
    if site is not None:
        flags |= FLAG_TYPE
        tail += bytes((CODE_BY_SITE[site],))
    return bytes((flags,)) + float_bytes(temperature) + tail


class TemperatureType(BaseModel):
    """Where the thermometer measures (read once; applies to readings without a type field)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codec: str = TYPE_CODEC
    codec_version: str = VERSION
    site: TemperatureSite
    raw_hex: str


def decode_type(raw: bytes) -> TemperatureType:
    reader = FrameReader(raw, TYPE_CODEC)
    site = _site(reader, reader.u8("temperature type (uint8)"))
    reader.finish("the temperature type field")
    return TemperatureType(site=site, raw_hex=raw.hex())


def encode_type(site: TemperatureSite) -> bytes:
    return bytes((CODE_BY_SITE[site],))
