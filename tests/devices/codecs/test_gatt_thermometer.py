"""Temperature Measurement 0x2A1C and Temperature Type 0x2A1D."""

from __future__ import annotations

from datetime import datetime

import pytest

from station.devices.codecs.gatt import thermometer as th
from station.errors import FrameError
from station.models import Flag, Temperature, TemperatureSite
from station.units import Unit, fahrenheit_to_celsius


def expected(raw: str, **fields: object) -> Temperature:
    values: dict[str, object] = {
        "unit_as_sent": Unit.CELSIUS,
        "codec": "ble:2a1c",
        "codec_version": "1.0",
        "raw_hex": raw.replace(" ", "").lower(),
    }
    values.update(fields)
    return Temperature.model_validate(values)


def decode(raw: str) -> list[Temperature]:
    return th.decode_measurement(bytes.fromhex(raw))


def test_reference_example_minimal() -> None:
    raw = "00 6C01 00FF"
    assert decode(raw) == [expected(raw, temperature_c=36.4)]


def test_reference_example_with_timestamp() -> None:
    raw = "02 7201 00FF DA07 0C 12 0F 00 00"
    assert decode(raw) == [
        expected(raw, temperature_c=37.0, measured_at=datetime(2010, 12, 18, 15, 0, 0))
    ]


def test_maximal_frame_fahrenheit_with_timestamp_and_site() -> None:
    raw = "07 DA03 00FF E907 0B 17 0A 05 00 03"  # 98.6 °F at 2025-11-23 10:05:00, ear
    assert decode(raw) == [
        expected(
            raw,
            unit_as_sent=Unit.FAHRENHEIT,
            temperature_c=fahrenheit_to_celsius(98.6),
            measured_at=datetime(2025, 11, 23, 10, 5, 0),
            site=TemperatureSite.EAR,
        )
    ]
    assert decode(raw)[0].temperature_c == pytest.approx(37.0)


@pytest.mark.parametrize(
    ("code", "site"), [(i + 1, site) for i, site in enumerate(TemperatureSite)]
)
def test_every_site(code: int, site: TemperatureSite) -> None:
    raw = f"04 6C01 00FF {code:02x}"
    assert decode(raw) == [expected(raw, temperature_c=36.4, site=site)]


@pytest.mark.parametrize("word", ["FFFF7F00", "00008000", "FEFF7F00", "02008000", "01008000"])
def test_special_values_are_null(word: str) -> None:
    raw = f"00 {word}"
    assert decode(raw) == [expected(raw, temperature_c=None)]


def test_implausible_temperature_is_flagged_not_altered() -> None:
    raw = "00 7C01 00FF"  # 38.0 °C: a fever, possible, not flagged here
    assert decode(raw)[0].flags == ()
    raw = "00 F401 00FF"  # 500e-1 = 50.0 °C
    assert decode(raw) == [expected(raw, temperature_c=50.0, flags=(Flag.IMPLAUSIBLE,))]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "flags byte: need 1 bytes, got 0"),
        ("00 6C01 00", "temperature (FLOAT, always present): need 5 bytes, got 4"),
        ("02 7201 00FF DA07 0C", "timestamp flag set: need 12 bytes, got 8"),
        ("04 6C01 00FF", "temperature type flag set: need 6 bytes, got 5"),
        ("04 6C01 00FF 0A", "temperature type 10 is reserved"),
        ("04 6C01 00FF 00", "temperature type 0 is reserved"),
        ("08 6C01 00FF", "flags 0x08 has reserved bits 0x08 set"),
        ("F0 6C01 00FF", "flags 0xf0 has reserved bits 0xf0 set"),
        ("00 6C01 00FF 00", "1 byte(s) left over: flags 0x00 give 5 bytes, got 6"),
    ],
)
def test_malformed_frames(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode(raw)
    assert caught.value.problem == problem
    assert caught.value.codec == "ble:2a1c"


def test_encoder_round_trip_and_bytes() -> None:
    frame = th.encode_measurement(
        98.6, fahrenheit=True, timestamp=datetime(2025, 11, 23, 10, 5, 0), site=TemperatureSite.EAR
    )
    assert frame == bytes.fromhex("07 DA03 00FF E907 0B 17 0A 05 00 03")
    assert th.encode_measurement(36.4) == bytes.fromhex("00 6C01 00FF")
    assert th.encode_measurement(None) == bytes.fromhex("00 FFFF7F00")


def test_temperature_type_codec() -> None:
    assert th.decode_type(bytes.fromhex("06")) == th.TemperatureType(
        site=TemperatureSite.MOUTH, raw_hex="06"
    )
    assert th.encode_type(TemperatureSite.TYMPANUM) == b"\x09"
    with pytest.raises(FrameError) as caught:
        th.decode_type(b"\x0a")
    assert caught.value.problem == "temperature type 10 is reserved"
    assert caught.value.expected == "1–9 (armpit … tympanum)"
    with pytest.raises(FrameError) as caught:
        th.decode_type(b"")
    assert caught.value.problem == "temperature type (uint8): need 1 bytes, got 0"
    with pytest.raises(FrameError) as caught:
        th.decode_type(b"\x01\x01")
    assert caught.value.problem == (
        "1 byte(s) left over: the temperature type field give 1 bytes, got 2"
    )
