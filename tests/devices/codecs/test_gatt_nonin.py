"""Nonin 3230 proprietary oximetry frame: 10 bytes, big-endian."""

from __future__ import annotations

import pytest

from station.devices.codecs.gatt import nonin
from station.errors import FrameError
from station.models import Flag, PulseOximetry
from station.units import Unit


def expected(raw: str, **fields: object) -> PulseOximetry:
    values: dict[str, object] = {
        "unit_as_sent": Unit.PERCENT,
        "codec": "ble:nonin-3230",
        "codec_version": "1.0",
        "raw_hex": raw.replace(" ", "").lower(),
    }
    values.update(fields)
    return PulseOximetry.model_validate(values)


def decode(raw: str) -> list[PulseOximetry]:
    return nonin.decode(bytes.fromhex(raw))


def test_good_reading_sensor_on_finger() -> None:
    # len, status 0x14 (SmartPoint + sensor connected), 2.9 V, PAI 3.15 %, counter 7, 98 %, 64
    raw = "0A 14 1D 013B 0007 62 0040"
    assert decode(raw) == [
        expected(
            raw,
            spo2_percent=98.0,
            pulse_rate_bpm=64.0,
            perfusion_index_percent=3.15,
            flags=(Flag.VALIDATED,),
        )
    ]


def test_every_status_bit() -> None:
    # 0x3E: weak signal, SmartPoint, searching, sensor connected, low battery
    raw = "0A 3E 1D 013B 0007 62 0040"
    assert decode(raw) == [
        expected(
            raw,
            spo2_percent=98.0,
            pulse_rate_bpm=64.0,
            perfusion_index_percent=3.15,
            flags=(Flag.LOW_PERFUSION, Flag.VALIDATED, Flag.PULSE_SEARCH, Flag.LOW_BATTERY),
        )
    ]


def test_no_finger_and_missing_values() -> None:
    # status 0x48: searching, encrypted; sensor NOT connected; SpO2 127, PR 511, PAI missing
    raw = "0A 48 1D 7FFF 0001 7F 01FF"
    assert decode(raw) == [
        expected(
            raw,
            spo2_percent=None,
            pulse_rate_bpm=None,
            perfusion_index_percent=None,
            flags=(Flag.PULSE_SEARCH, Flag.SENSOR_UNCONNECTED_TO_USER),
        )
    ]


def test_impossible_pulse_is_flagged() -> None:
    raw = "0A 10 1D 0064 0001 62 01F4"  # PR 500
    assert decode(raw) == [
        expected(
            raw,
            spo2_percent=98.0,
            pulse_rate_bpm=500.0,
            perfusion_index_percent=1.0,
            flags=(Flag.IMPLAUSIBLE,),
        )
    ]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "length byte: need 1 bytes, got 0"),
        ("0B 14 1D 013B 0007 62 0040", "length byte 0x0b"),
        ("0A 14 1D 013B 0007 62 00", "pulse rate (10-byte frame): need 10 bytes, got 9"),
        (
            "0A 14 1D 013B 0007 62 0040 00",
            "1 byte(s) left over: the length byte 0x0a give 10 bytes, got 11",
        ),
    ],
)
def test_malformed(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode(raw)
    assert caught.value.problem == problem
    assert caught.value.codec == "ble:nonin-3230"


def test_encoder() -> None:
    frame = nonin.encode(
        98, 64, pai_percent=3.15, counter=7, battery_volts=2.9, status=[Flag.VALIDATED]
    )
    assert frame == bytes.fromhex("0A 14 1D 013B 0007 62 0040")
    assert nonin.encode(
        None, None, sensor_connected=False, counter=1, battery_volts=2.9, status=[Flag.PULSE_SEARCH]
    ) == bytes.fromhex("0A 08 1D 7FFF 0001 7F 01FF")
